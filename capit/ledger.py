"""The ledger: an append-only, fsync'd record of every key capit minted and revoked.

``ledger.jsonl`` in the capit home holds one JSON object a line -- never a key itself:

* ``{"event": "minted", "platform", "hash", "name", "cap", "unit", "period", "expires_at",
  "consumer", "time", "status": "active"}`` -- written before the key is shown or installed;
* ``{"event": "revoked", "platform", "hash", "time", "reason"}`` -- the key was deleted;
* ``{"event": "delivered", "platform", "hash", "consumer", "location", "record", "time"}``
  -- a consumer wrote the key into a file: ``record`` says which values it set where
  (for the key itself only a fingerprint), so it can be taken out again;
* ``{"event": "removed", "platform", "hash", "consumer", "time", "reason"}`` -- what that
  delivery wrote was taken out again (rolled back, or ``capit uninstall``).

Reading folds the events: a minted key's status becomes ``revoked`` once it is deleted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from capit.fsutil import append_durable, ensure_home, home_lock, read_private
from capit.paths import LEDGER
from capit.platforms import IssuedKey

VERSION = 1


def _now() -> str:
    from capit.stores.vaultfile import now_text

    return now_text()


def _append(home: Path, entry: dict[str, Any]) -> None:
    ensure_home(home)
    line = json.dumps({"v": VERSION, **entry}, sort_keys=True, separators=(",", ":")) + "\n"
    with home_lock(home):
        append_durable(home / LEDGER, line.encode())


def record_minted(home: Path, key: IssuedKey, consumer: str | None) -> None:
    _append(home, {
        "event": "minted",
        "time": _now(),
        "platform": key.platform,
        "hash": key.hash,
        "name": key.name,
        "cap": str(key.amount),
        "unit": key.unit,
        "period": key.period,
        "expires_at": key.expires_at,
        "consumer": consumer,
        "status": "active",
    })


def record_revoked(home: Path, platform: str, key_hash: str, reason: str) -> None:
    _append(home, {"event": "revoked", "time": _now(), "platform": platform, "hash": key_hash,
                   "reason": reason})


def record_delivered(home: Path, key: IssuedKey, consumer: str, location: str | None,
                     record: dict[str, Any]) -> None:
    _append(home, {"event": "delivered", "time": _now(), "platform": key.platform,
                   "hash": key.hash, "consumer": consumer, "location": location,
                   "record": record})


def record_removed(home: Path, platform: str, key_hash: str, consumer: str,
                   reason: str) -> None:
    _append(home, {"event": "removed", "time": _now(), "platform": platform, "hash": key_hash,
                   "consumer": consumer, "reason": reason})


def _events(home: Path) -> list[dict[str, Any]]:
    raw = read_private(home / LEDGER, what="ledger", max_bytes=256 << 20)
    if raw is None:
        return []
    out = []
    for line in raw.decode("utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def deliveries(home: Path, consumer: str | None = None) -> list[dict[str, Any]]:
    """Deliveries whose values are still in place (not removed), oldest first."""
    open_: dict[tuple[str, str, str], dict[str, Any]] = {}
    for entry in _events(home):
        ident = (str(entry.get("platform")), str(entry.get("hash")), str(entry.get("consumer")))
        if entry.get("event") == "delivered":
            open_[ident] = entry
        elif entry.get("event") == "removed":
            open_.pop(ident, None)
    return [d for d in open_.values() if consumer is None or d.get("consumer") == consumer]


def read(home: Path) -> list[dict[str, Any]]:
    """Minted keys with their current status, oldest first; unreadable lines are skipped."""
    minted: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in _events(home):
        ident = (str(entry.get("platform")), str(entry.get("hash")))
        if entry.get("event") == "minted":
            minted[ident] = dict(entry)
        elif entry.get("event") == "revoked" and ident in minted:
            minted[ident]["status"] = "revoked"
            minted[ident]["revoked_at"] = entry.get("time")
        elif entry.get("event") == "delivered" and ident in minted:
            minted[ident]["location"] = entry.get("location")
    return list(minted.values())

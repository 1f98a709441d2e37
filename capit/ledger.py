"""The ledger: an append-only, fsync'd record of every key capit minted and revoked.

``ledger.jsonl`` in the capit home holds one JSON object a line -- never a key itself:

* ``{"event": "minted", "platform", "hash", "name", "cap", "unit", "period", "expires_at",
  "consumer", "time", "status": "active"}`` -- written before the key is shown or installed;
* ``{"event": "revoked", "platform", "hash", "time", "reason"}`` -- the key was deleted.

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


def read(home: Path) -> list[dict[str, Any]]:
    """Minted keys with their current status, oldest first; unreadable lines are skipped."""
    raw = read_private(home / LEDGER, what="ledger", max_bytes=256 << 20)
    if raw is None:
        return []
    minted: dict[tuple[str, str], dict[str, Any]] = {}
    for line in raw.decode("utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        ident = (str(entry.get("platform")), str(entry.get("hash")))
        if entry.get("event") == "minted":
            minted[ident] = dict(entry)
        elif entry.get("event") == "revoked" and ident in minted:
            minted[ident]["status"] = "revoked"
            minted[ident]["revoked_at"] = entry.get("time")
    return list(minted.values())

"""Where master keys live, and which store holds each platform's key (``master-lookup``).

``master-lookup`` is capit 0.1.0's JSON map ``{platform: {"store": name, "added_at": ...}}``;
it lets capit find a platform's key without opening anything and keeps working when the
default store changes.  Stores: ``vault`` (the sealed default), ``dotenv`` (capit 0.1.0's
plaintext ``secrets.txt``: read and migrate only) and ``ephemeral`` (``-i``: asked for,
used once, kept nowhere).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from capit import ui
from capit.errors import CapitError, ExitCode
from capit.fsutil import atomic_write, ensure_home, home_lock, read_private
from capit.paths import MASTER_LOOKUP
from capit.platforms import MasterKey


class Store:
    """Base of master-key stores."""

    name: str = ""
    title: str = ""
    description: str = ""

    def get(self, platform: str) -> MasterKey | None:
        raise NotImplementedError

    def put(self, master: MasterKey) -> None:
        raise NotImplementedError

    def remove(self, platform: str) -> bool:
        raise NotImplementedError


def read_lookup(home: Path) -> dict[str, dict[str, Any]]:
    path = home / MASTER_LOOKUP
    raw = read_private(path, what="master-lookup")
    if raw is None:
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CapitError(f"{path} is not valid JSON; fix or remove it", ExitCode.STATE) from None
    if not isinstance(data, dict):
        raise CapitError(f"{path} is not a JSON object; fix or remove it", ExitCode.STATE)
    return {str(k): v for k, v in data.items() if isinstance(v, dict)}


def write_lookup(home: Path, lookup: dict[str, dict[str, Any]]) -> None:
    ensure_home(home)
    data = (json.dumps(lookup, indent=2, sort_keys=True) + "\n").encode()
    atomic_write(home / MASTER_LOOKUP, data, what="master-lookup")


def update_lookup(home: Path, platform: str, store: str | None) -> None:
    """Set (or with ``store=None`` drop) one platform's entry, under the home lock."""
    from capit.stores.vaultfile import now_text

    with home_lock(home):
        lookup = read_lookup(home)
        if store is None:
            if lookup.pop(platform, None) is None:
                return
        else:
            lookup[platform] = {"store": store, "added_at": now_text()}
        write_lookup(home, lookup)


class MasterKeys:
    """The master keys of one capit home, whichever store holds them."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._vault: Any = None
        self._legacy: Any = None

    @property
    def vault(self) -> Any:
        if self._vault is None:
            from capit.stores.vault import VaultStore

            self._vault = VaultStore(self.home)
        return self._vault

    @property
    def legacy(self) -> Any:
        if self._legacy is None:
            from capit.stores.dotenv import LegacyDotenv

            self._legacy = LegacyDotenv(self.home)
        return self._legacy

    def entries(self) -> list[dict[str, Any]]:
        """Every stored master key: platform, store, added_at, plaintext flag."""
        lookup = read_lookup(self.home)
        rows: dict[str, dict[str, Any]] = {}
        for platform, entry in lookup.items():
            store = str(entry.get("store", "?"))
            rows[platform] = {"platform": platform, "store": store,
                              "added_at": entry.get("added_at"), "plaintext": store == "dotenv"}
        for platform in self.legacy.platforms():
            if platform not in rows or rows[platform]["store"] == "dotenv":
                rows[platform] = {"platform": platform, "store": "dotenv",
                                  "added_at": rows.get(platform, {}).get("added_at"),
                                  "plaintext": True}
        return [rows[k] for k in sorted(rows)]

    def store_of(self, platform: str) -> str | None:
        entry = read_lookup(self.home).get(platform)
        if entry is not None:
            return str(entry.get("store"))
        if platform in self.legacy.platforms():
            return "dotenv"
        return None

    def get(self, platform: str) -> MasterKey:
        store = self.store_of(platform)
        if store is None:
            raise CapitError(
                f"no master key stored for {platform}: add one with 'capit keys add {platform}', "
                "or pass -i to enter it once",
                ExitCode.NOT_FOUND,
            )
        if store == "dotenv":
            master = self.legacy.get(platform)
            if master is not None:
                ui.warn(
                    f"the {platform} master key is stored in plaintext by capit 0.1.0 "
                    f"({self.legacy.path}); move it into the vault with: capit keys migrate"
                )
                return master
        elif store == "vault":
            master = self.vault.get(platform)
            if master is not None:
                return master
        else:
            raise CapitError(
                f"master-lookup says the {platform} key is in store {store!r}, which this capit "
                "does not have",
                ExitCode.STATE,
            )
        raise CapitError(
            f"master-lookup names the {store} store for {platform} but it holds no key; "
            f"add one with: capit keys add {platform}",
            ExitCode.NOT_FOUND,
        )

    def add(self, master: MasterKey) -> None:
        master.store = "vault"
        self.vault.put(master)
        update_lookup(self.home, master.platform, "vault")

    def remove(self, platform: str) -> str:
        """Remove a platform's key from the store holding it; return that store's name."""
        store = self.store_of(platform)
        if store is None:
            raise CapitError(f"no master key stored for {platform}", ExitCode.NOT_FOUND)
        if store == "vault":
            if self.vault.exists():
                self.vault.remove(platform)
        elif store == "dotenv":
            self.legacy.remove(platform)
        update_lookup(self.home, platform, None)
        return store

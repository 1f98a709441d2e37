"""``capit keys``: master keys kept by capit, and the child keys on a platform."""

from __future__ import annotations

from typing import Any

import click

from capit.cli._common import emit_json, home, json_option, verbose_option, yes_option


@click.group("keys")
@verbose_option
def keys() -> None:
    """Master keys (stored by capit) and the keys minted on each platform.

    \b
      capit keys list                       master keys and where they are stored
      capit keys list -r openrouter         keys on OpenRouter with cap and usage
      capit keys add openrouter             store a management key in the vault
      capit keys delete openrouter 4ab1e7   revoke a key by hash prefix or name
      capit keys remove openrouter          forget the stored management key
      capit keys migrate                    move capit 0.1.0's plaintext keys into the vault
    """


def _master(platform: Any, ephemeral: bool) -> Any:
    if ephemeral:
        from capit.stores.ephemeral import read_master

        return read_master(platform, note=" (used once, not stored)")
    from capit.stores import MasterKeys

    return MasterKeys(home()).get(platform.name)


@keys.command("list")
@click.option("-r", "--remote", "remote", metavar="PLATFORM",
              help="List the keys that exist on PLATFORM instead of the stored master keys.")
@click.option("-i", "--interactive", "ephemeral", is_flag=True,
              help="With -r: ask for the master key now and store it nowhere.")
@json_option
@verbose_option
def list_keys(remote: str | None, ephemeral: bool, as_json: bool) -> None:
    """List stored master keys, or with -r PLATFORM the keys on that platform."""
    from capit import ui

    if remote:
        _list_remote(remote, ephemeral, as_json)
        return
    from capit.stores import MasterKeys

    rows = MasterKeys(home()).entries()
    if as_json:
        emit_json("keys.master", [
            {"platform": r["platform"], "store": r["store"], "plaintext": r["plaintext"],
             "added_at": r["added_at"]} for r in rows
        ])
    elif not rows:
        ui.info("No master keys stored. Add one with: capit keys add openrouter")
    else:
        width = max(len(r["platform"]) for r in rows)
        for r in rows:
            store = "dotenv (plaintext)" if r["plaintext"] else r["store"]
            ui.result(f"{r['platform']:<{width}} | {store}")
    if any(r["plaintext"] for r in rows):
        ui.warn("some master keys are stored in plaintext by capit 0.1.0; move them into the "
                "vault with: capit keys migrate")


def _list_remote(platform_name: str, ephemeral: bool, as_json: bool) -> None:
    from capit import ui
    from capit.platforms import require_platform

    plat = require_platform(platform_name)
    found = plat.list_keys(_master(plat, ephemeral))
    if as_json:
        def plain(value: Any) -> str | None:  # "0.0000005", never str(Decimal)'s "5E-7"
            return None if value is None else format(value, "f")

        emit_json("keys.remote", {"platform": plat.name, "keys": [
            {"hash": k.hash, "name": k.name, "limit": plain(k.limit),
             "period": k.period, "usage": plain(k.usage), "remaining": plain(k.remaining),
             "created_at": k.created_at, "expires_at": k.expires_at, "status": k.status}
            for k in found
        ]})
        return
    if not found:
        ui.info(f"No keys on {plat.name}.")
        return
    rows = []
    for k in found:  # cap and usage in the key's unit (dollars, credits), then extras
        rows.append((f"{k.hash[:16]}...", k.name, k.cap_text(), k.usage_text(),
                     (k.created_at or "")[:10], f"[{k.status}]", k.details))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        ui.result("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@keys.command("add")
@click.argument("platform")
@yes_option
@verbose_option
def add(platform: str, assume_yes: bool) -> None:
    """Check a master key with PLATFORM and keep it in the vault.

    The key is read from a hidden prompt, or from standard input when it is piped
    (then the vault passphrase follows on the next line, unless CAPIT_PASSPHRASE_FILE,
    _FD or _COMMAND supplies it). The first key added creates the vault.
    """
    from capit import ui
    from capit.platforms import require_platform
    from capit.stores import MasterKeys
    from capit.stores.ephemeral import read_master

    plat = require_platform(platform)
    masters = MasterKeys(home())
    current = masters.store_of(plat.name)
    if current is not None:
        ui.confirm(f"Replace the {plat.name} master key stored in {current}?",
                   assume_yes=assume_yes)
    master = read_master(plat)
    what = plat.validate_master(master)
    ui.info(f"{plat.title} accepted it: {what}.")
    masters.add(master)
    if current == "dotenv":
        masters.legacy.remove(plat.name)
    ui.info(f"Stored the {plat.name} {plat.master_label} in the vault ({masters.vault.path}).")


@keys.command("remove")
@click.argument("platform")
@yes_option
@verbose_option
def remove(platform: str, assume_yes: bool) -> None:
    """Forget the stored master key of PLATFORM (keys minted with it keep working)."""
    from capit import ui
    from capit.errors import CapitError, ExitCode
    from capit.stores import MasterKeys

    masters = MasterKeys(home())
    store = masters.store_of(platform)
    if store is None:
        raise CapitError(f"no master key stored for {platform}", ExitCode.NOT_FOUND)
    ui.confirm(f"Remove the {platform} master key from {store}? Keys minted with it keep "
               "working.", assume_yes=assume_yes)
    masters.remove(platform)
    ui.info(f"Removed the {platform} master key from {store}.")


@keys.command("delete")
@click.argument("platform")
@click.argument("key")
@click.option("-i", "--interactive", "ephemeral", is_flag=True,
              help="Ask for the master key now and store it nowhere.")
@json_option
@verbose_option
def delete(platform: str, key: str, ephemeral: bool, as_json: bool) -> None:
    """Revoke the key on PLATFORM given by full hash, unique hash prefix, or exact name.

    A prefix that matches several keys lists them and deletes nothing.
    """
    from capit import ledger, ui
    from capit.errors import CapitError
    from capit.platforms import require_platform

    plat = require_platform(platform)
    master = _master(plat, ephemeral)
    target = plat.resolve_key(plat.list_keys(master), key)
    plat.delete_key(master, target.hash)
    try:
        ledger.record_revoked(home(), plat.name, target.hash, "deleted with capit keys delete")
    except CapitError as err:
        ui.warn(f"the key was deleted but the ledger could not record it: {err.message}")
    if as_json:
        emit_json("key.deleted", {"platform": plat.name, "hash": target.hash,
                                  "name": target.name})
    else:
        ui.result(f"Deleted {plat.name} key {target.name} ({target.hash[:16]}).")


@keys.command("migrate")
@verbose_option
def migrate() -> None:
    """Move capit 0.1.0's plaintext master keys (secrets.txt) into the vault.

    Afterwards the plaintext file is overwritten with random bytes and deleted.
    """
    from capit import ui
    from capit.stores import MasterKeys, read_lookup, update_lookup

    masters = MasterKeys(home())
    legacy = masters.legacy
    platforms = legacy.platforms()
    if not platforms:
        if legacy.exists():  # e.g. only the header left: not "no file", and not deleted
            ui.info(f"Nothing to migrate: {legacy.path} holds no keys; delete it when you no "
                    "longer need it.")
        else:
            ui.info(f"Nothing to migrate: there is no capit 0.1.0 secrets file at "
                    f"{legacy.path}.")
        return
    lookup = read_lookup(masters.home)
    vault = masters.vault.open_or_create()
    moved, kept = [], []
    for name in platforms:
        if lookup.get(name, {}).get("store") == "vault" and vault.get(name) is not None:
            kept.append(name)
            continue
        vault.set(legacy.get(name))
        moved.append(name)
    if moved:
        vault.save()
        for name in moved:
            update_lookup(masters.home, name, "vault")
    legacy.destroy()
    if moved:
        ui.info(f"Moved {', '.join(moved)} into the vault ({masters.vault.path}).")
    if kept:
        ui.info(f"The vault already held a key for {', '.join(kept)}; kept the vault's copy.")
    ui.info(f"Overwrote and deleted {legacy.path}.")

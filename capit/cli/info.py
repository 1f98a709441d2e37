"""``capit platforms``, ``capit stores``, ``capit consumers`` (the seed's --platforms ...)."""

from __future__ import annotations

import click

from capit.cli._common import emit_json, home, json_option, verbose_option


@click.command("platforms")
@json_option
@verbose_option
def platforms(as_json: bool) -> None:
    """List the platforms capit can mint keys on."""
    from capit import ui
    from capit.platforms import get_platform, platform_names
    from capit.stores import MasterKeys

    masters = MasterKeys(home())
    rows = []
    where = {}  # the API's location as text (LiteLLM: the proxy URL kept with the master key)
    for name in platform_names():
        plat = get_platform(name)
        if plat is None:
            continue
        rows.append({"name": plat.name, "title": plat.title, "cap": plat.cap_help,
                     "unit": plat.cap_unit, "base_url": plat.base_url(),
                     "master_key_store": masters.store_of(plat.name)})
        where[plat.name] = plat.describe_base_url()
    if as_json:
        emit_json("platforms", rows)
        return
    for r in rows:
        stored = f"master key in {r['master_key_store']}" if r["master_key_store"] else \
            "no master key stored"
        ui.result(f"{r['name']:<12} cap: {r['cap']}; {stored}; {where[r['name']]}")


@click.command("stores")
@json_option
@verbose_option
def stores(as_json: bool) -> None:
    """List where master keys can be kept, and what is in each (with the vault's slots and
    whether each slot's token is plugged in now)."""
    from capit import ui
    from capit.errors import CapitError
    from capit.stores import MasterKeys, read_lookup
    from capit.stores.slots import presence

    masters = MasterKeys(home())
    lookup = read_lookup(masters.home)
    vault_info: dict = {"name": "vault", "path": str(masters.vault.path),
                        "exists": masters.vault.exists(), "slots": [],
                        "platforms": sorted(p for p, e in lookup.items()
                                            if e.get("store") == "vault")}
    if vault_info["exists"]:
        try:
            vdoc = masters.vault.doc()
            present = presence(vdoc.slots)
            vault_info["slots"] = [{"id": s["id"], "type": s["type"], "label": s["label"],
                                    "present": present.get(s["id"])}
                                   for s in vdoc.slots]
        except CapitError as err:
            vault_info["error"] = err.message
    legacy = {"name": "dotenv", "path": str(masters.legacy.path),
              "exists": masters.legacy.exists(), "platforms": masters.legacy.platforms()}
    rows = [vault_info, legacy, {"name": "ephemeral", "platforms": []}]
    if as_json:
        emit_json("stores", rows)
        return
    if vault_info["exists"]:
        slots = ", ".join(
            f"{s['id']}:{s['type']}" + ("" if s["present"] is None else
                                        " [plugged in]" if s["present"] else " [not present]")
            for s in vault_info["slots"])
        state = vault_info.get("error") or f"slots {slots}"
        kept = ", ".join(vault_info["platforms"]) or "no master keys"
        ui.result(f"vault      {vault_info['path']} ({state}; {kept})  [default]")
    else:
        ui.result(f"vault      {vault_info['path']} (not created yet; 'capit vault init' or the "
                  "first 'capit keys add')  [default]")
    if legacy["exists"]:
        ui.result(f"dotenv     {legacy['path']} (capit 0.1.0 plaintext: "
                  f"{', '.join(legacy['platforms']) or 'empty'}; run 'capit keys migrate')")
    else:
        ui.result("dotenv     capit 0.1.0's plaintext secrets.txt (read and migrate only; none "
                  "here)")
    ui.result("ephemeral  -i: the master key is asked for, used once, and stored nowhere")


@click.command("consumers")
@json_option
@verbose_option
def consumers(as_json: bool) -> None:
    """List the agents and tools capit can hand keys to (--agent NAME)."""
    from capit import ui
    from capit.consumers import consumer_names, get_consumer

    rows = []
    for name in consumer_names():
        cons = get_consumer(name)
        if cons is None:
            continue
        rows.append({"name": cons.name, "title": cons.title, "description": cons.description,
                     "detected": cons.detected(), "where": cons.where()})
    if as_json:
        emit_json("consumers", rows)
        return
    for r in rows:
        seen = "" if r["detected"] is None else ("  [installed]" if r["detected"] else
                                                  "  [not found]")
        ui.result(f"{r['name']:<10} {r['title'] or r['name']}: {r['where']}{seen}")

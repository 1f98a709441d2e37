"""``capit uninstall --agent X`` (alias ``capit revoke --agent X``): take an agent's keys back.

Revokes, on the provider, every key the ledger shows as minted for the agent and still
active, then removes what capit wrote into the agent's files -- only values that are
still what capit wrote -- restoring the person's own earlier value where there was one.
"""

from __future__ import annotations

from typing import Any

import click

from capit.cli._common import home, verbose_option, yes_option


@click.command("uninstall")
@click.option("-a", "--agent", "agents", metavar="AGENT", multiple=True, required=True,
              help="The agent whose keys to revoke and remove (repeatable).")
@click.option("-i", "--interactive", "ephemeral", is_flag=True,
              help="Ask for the master key now (to revoke the keys) and store it nowhere.")
@yes_option
@verbose_option
def uninstall(agents: tuple[str, ...], ephemeral: bool, assume_yes: bool) -> None:
    """Revoke AGENT's keys and take them out of its configuration.

    \b
      capit uninstall --agent claude        revoke claude's keys, restore its settings.json
      capit revoke --agent codex -y         the same, without asking

    Every key the ledger shows as minted for the agent (and not yet revoked) is deleted on
    its platform. Values capit wrote into the agent's files are removed, and a value you
    had there before capit is put back; a value you changed since is left alone. The
    changes are shown (keys masked) and confirmed first, unless -y is given.
    """
    from capit import ledger, ui
    from capit.configedit.changes import apply_all, show
    from capit.consumers import UninstallPlan
    from capit.errors import CapitError, ExitCode

    cap_home = home()
    minted = ledger.read(cap_home)
    consumers = [_consumer(a, minted) for a in dict.fromkeys(agents)]
    work: list[tuple[Any, list[dict[str, Any]], list[dict[str, Any]], UninstallPlan]] = []
    for consumer in consumers:
        keys = [e for e in minted
                if e.get("consumer") == consumer.name and e.get("status") == "active"]
        deliveries = ledger.deliveries(cap_home, consumer.name)
        records = [d["record"] for d in deliveries if isinstance(d.get("record"), dict)]
        plan = consumer.plan_uninstall(records) if records or keys else UninstallPlan()
        work.append((consumer, keys, deliveries, plan))
    if not any(keys or deliveries for _, keys, deliveries, _ in work):
        names = ", ".join(c.name for c in consumers)
        raise CapitError(f"capit has no active keys or installed values recorded for {names}; "
                         "see: capit keys list -r PLATFORM", ExitCode.NOT_FOUND)

    for consumer, keys, _, plan in work:
        for k in keys:
            ui.info(f"{consumer.name}: revoke {k['platform']} key {k['name']} "
                    f"({k['hash'][:16]})")
        if plan.changes and not assume_yes:
            show(plan.changes)
    ui.confirm("Revoke these keys and remove them from the agents' files?",
               assume_yes=assume_yes)

    failures: list[CapitError] = []
    masters: dict[str, Any] = {}
    for consumer, keys, _, _ in work:
        for k in keys:
            err = _revoke(cap_home, consumer.name, k, masters, ephemeral)
            if err is not None:
                failures.append(err)
    for consumer, keys, deliveries, plan in work:
        try:
            apply_all(plan.changes)
        except CapitError as err:
            failures.append(CapitError(f"{consumer.name}: {err.message}", err.code))
            continue
        for d in deliveries:
            try:
                ledger.record_removed(cap_home, str(d.get("platform")), str(d.get("hash")),
                                      consumer.name, "capit uninstall")
            except CapitError as err:
                ui.warn(f"the ledger could not record the removal: {err.message}")
        for note in plan.notes:
            ui.warn(note)
        where = ", ".join(plan.locations)
        done = f"{len(keys)} key(s) revoked" if keys else "no active keys"
        ui.result(f"{consumer.name}: {done}" + (f"; removed from {where}" if where else ""))
    if failures:
        first = failures[0]
        again = " ".join(f"--agent {c.name}" for c in consumers)
        raise CapitError(f"{first.message}; run capit uninstall {again} again", first.code)


def _consumer(name: str, minted: list[dict[str, Any]]) -> Any:
    """The agent's consumer; a bare one if it is gone but the ledger has keys for it."""
    from capit.consumers import Consumer, require_consumer
    from capit.errors import CapitError, ExitCode

    try:
        return require_consumer(name)
    except CapitError as err:
        if err.code != ExitCode.USAGE or not any(e.get("consumer") == name for e in minted):
            raise
    consumer = Consumer()
    consumer.name = consumer.title = name
    return consumer


def _revoke(cap_home: Any, agent: str, entry: dict[str, Any], masters: dict[str, Any],
            ephemeral: bool) -> Any:
    """Delete one key on its platform; None, or the error to report at the end."""
    from capit import ledger, ui
    from capit.errors import CapitError, ExitCode
    from capit.platforms import require_platform

    plat = require_platform(str(entry["platform"]))
    if plat.name not in masters:
        if ephemeral:
            from capit.stores.ephemeral import read_master

            masters[plat.name] = read_master(plat, note=" (used once, not stored)")
        else:
            from capit.stores import MasterKeys

            masters[plat.name] = MasterKeys(cap_home).get(plat.name)
    reason = f"capit uninstall --agent {agent}"
    try:
        plat.delete_key(masters[plat.name], str(entry["hash"]))
    except CapitError as err:
        if err.code != ExitCode.NOT_FOUND:
            return err
        reason += " (it was already gone on the platform)"
    try:
        ledger.record_revoked(cap_home, plat.name, str(entry["hash"]), reason)
    except CapitError as err:
        ui.warn(f"the key was revoked but the ledger could not record it: {err.message}")
    ui.info(f"Revoked {plat.name} key {entry['name']} ({str(entry['hash'])[:16]}).")
    return None

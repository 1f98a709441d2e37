"""``capit vault``: create the vault and manage the slots that open it."""

from __future__ import annotations

import click

from capit.cli._common import emit_json, home, json_option, verbose_option, yes_option

MAX_LABEL = 64


def _shown(text: str) -> str:
    """A slot's label or type for the terminal: the file is not authenticated before it is
    unlocked, so control characters (newlines, escape sequences) are shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@click.group("vault")
@verbose_option
def vault() -> None:
    """The encrypted vault that keeps master keys, and its unlock slots.

    \b
      capit vault init                   create it (passphrase + a recovery key)
      capit vault slots                  what can open it
      capit vault enroll passphrase      add another passphrase (e.g. to change it)
      capit vault enroll recovery        add a new recovery key
      capit vault remove SLOT            remove a slot (never the last)
    """


@vault.command("init")
@click.option("--passphrase", "use_passphrase", is_flag=True, default=True,
              help="Protect the vault with a passphrase (the default).")
@verbose_option
def init(use_passphrase: bool) -> None:
    """Create the vault with a passphrase slot; a recovery key is shown once."""
    from capit import ui
    from capit.errors import CapitError, ExitCode
    from capit.stores.vault import VaultStore

    store = VaultStore(home())
    if store.exists():
        raise CapitError(f"a vault already exists at {store.path}; see: capit vault slots",
                         ExitCode.STATE)
    store.create()
    ui.info(f"Vault created at {store.path}.")


@vault.command("slots")
@json_option
@verbose_option
def slots(as_json: bool) -> None:
    """List the vault's unlock slots (no unlocking needed)."""
    from capit import ui
    from capit.stores.slots import slot_type
    from capit.stores.vault import VaultStore

    store = VaultStore(home())
    vdoc = store.doc()
    if vdoc is None:
        from capit.errors import CapitError, ExitCode

        raise CapitError(f"no vault at {store.path}; create one with: capit vault init",
                         ExitCode.NOT_FOUND)
    rows = []
    for slot in vdoc.slots:
        kind = slot_type(slot["type"])
        rows.append({
            "id": slot["id"], "type": slot["type"], "label": slot["label"],
            "created_at": slot["created_at"],
            "detail": kind.describe(slot) if kind else "unknown slot type (newer capit?)",
            "present": kind.present(slot) if kind else None,
        })
    if as_json:
        emit_json("vault.slots", {"path": str(store.path), "vault_id": vdoc.vault_id,
                                  "slots": rows})
        return
    ui.info(f"Vault {store.path}")
    for r in rows:
        present = "" if r["present"] is None else (
            "  [plugged in]" if r["present"] else "  [not present]")
        ui.result(f"  slot {r['id']}: {_shown(r['type']):<12} {_shown(r['label']):<16} "
                  f"{r['detail']}  "
                  f"(added {r['created_at'][:10]}){present}")


@vault.command("enroll")
@click.argument("method", type=click.Choice(["passphrase", "recovery"]))
@click.option("--label", help="A label for the new slot.")
@verbose_option
def enroll(method: str, label: str | None) -> None:
    """Add an unlock slot: another passphrase, or a new recovery key.

    The vault is opened first with an existing slot. A new passphrase comes from a
    hidden prompt (twice), stdin, or CAPIT_NEW_PASSPHRASE_FILE/_FD/_COMMAND.
    """
    from capit import ui
    from capit.secret import Secret
    from capit.secretinput import read_passphrase
    from capit.stores.slots import MIN_PASSPHRASE, PassphraseSlot, RecoverySlot
    from capit.stores.vault import VaultStore, show_recovery_key

    if label is not None and (not label.strip() or len(label) > MAX_LABEL
                              or not label.isprintable()):
        from capit.errors import usage

        raise usage(f"--label must be 1 to {MAX_LABEL} printable characters")
    store = VaultStore(home())
    opened = store.open()
    if method == "passphrase":
        secret = read_passphrase("New passphrase", new=True, confirm=True,
                                 min_length=MIN_PASSPHRASE)
        fields, ikm = PassphraseSlot().enroll(secret)
        slot = opened.add_slot("passphrase", label or "passphrase", fields, ikm)
        ui.info(f"Added passphrase slot {slot['id']}.")
    else:
        text, raw = RecoverySlot.generate()
        Secret(text)
        slot = opened.add_slot("recovery", label or "recovery key", {}, raw)
        ui.info(f"Added recovery slot {slot['id']}.")
        show_recovery_key(text)


@vault.command("remove")
@click.argument("slot")
@yes_option
@verbose_option
def remove(slot: str, assume_yes: bool) -> None:
    """Remove unlock slot SLOT (see: capit vault slots). The last slot cannot go."""
    from capit import ui
    from capit.errors import CapitError, ExitCode
    from capit.stores.vault import VaultStore

    store = VaultStore(home())
    vdoc = store.doc()
    if vdoc is None:
        raise CapitError(f"no vault at {store.path}", ExitCode.NOT_FOUND)
    target = vdoc.slot(slot)
    if target is None:
        raise CapitError(f"the vault has no slot {slot!r}; see: capit vault slots",
                         ExitCode.NOT_FOUND)
    if len(vdoc.slots) == 1:
        raise CapitError("refusing to remove the vault's last slot: it would lock the vault "
                         "for good", ExitCode.USAGE)
    ui.confirm(f"Remove slot {slot} ({_shown(target['type'])}, {_shown(target['label'])})? "
               "It will no longer open the vault.", assume_yes=assume_yes)
    store.open().remove_slot(slot)
    ui.info(f"Removed slot {slot}.")

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
      capit vault init --yubikey         ... opened by a YubiKey touch (+ a recovery key)
      capit vault init --fido2           ... opened by a FIDO2 security key touch
      capit vault slots                  what can open it, and which tokens are plugged in
      capit vault enroll yubikey         add a YubiKey (e.g. a backup token)
      capit vault enroll fido2           add a FIDO2 security key
      capit vault enroll passphrase      add another passphrase (e.g. to change it)
      capit vault enroll recovery        add a new recovery key
      capit vault remove SLOT            remove a slot (never the last)
    """


def _check_label(label: str | None) -> None:
    if label is not None and (not label.strip() or len(label) > MAX_LABEL
                              or not label.isprintable()):
        from capit.errors import usage

        raise usage(f"--label must be 1 to {MAX_LABEL} printable characters")


def _yubikey_slot(slot: int, serial: int | None, do_program: bool, touch: bool,
                  assume_yes: bool) -> tuple[dict, bytes, str]:
    """Find the YubiKey, program it if asked (after confirming), and enroll: fields, ikm,
    default label."""
    from capit import ui
    from capit.errors import usage
    from capit.stores import yubikey

    if touch and not do_program:
        raise usage("--touch only applies with --program (a programmed slot keeps its own "
                    "touch setting)")
    key = yubikey.choose(serial)
    if do_program:
        ui.confirm(f"Program slot {slot} of {key.name} with a new random HMAC-SHA1 secret? "
                   "This overwrites whatever the slot holds now, for good",
                   assume_yes=assume_yes)
        yubikey.program(key, slot, touch)
        ui.info(f"Programmed {key.name} slot {slot} for HMAC-SHA1 challenge-response"
                f"{' (touch required)' if touch else ''}.")
    fields, ikm = yubikey.enroll(key, slot, programmed_touch=touch if do_program else None)
    return fields, ikm, f"yubikey {key.serial}"


def _fido2_slot(use_pin: bool | None, enrolled: list[dict] | None = None
                ) -> tuple[dict, bytes, str]:
    from capit.stores import fido2slot

    device = fido2slot.choose(enrolled)
    try:
        fields, ikm = fido2slot.enroll(device, use_pin)
    finally:
        fido2slot._close(device)
    return fields, ikm, "security key"


def _yubikey_options(f):  # noqa: ANN001,ANN202 - a click decorator
    f = click.option("--touch", is_flag=True,
                     help="With --program: require a touch for every answer.")(f)
    f = click.option("--program", "do_program", is_flag=True,
                     help="YubiKey: first write a new random HMAC-SHA1 secret into the slot "
                          "(overwrites it for good; asks unless -y).")(f)
    f = click.option("--serial", type=click.IntRange(0, 0xFFFFFFFF), metavar="N",
                     help="YubiKey: the serial of the key to use (when several are plugged "
                          "in).")(f)
    f = click.option("--slot", "otp_slot", type=click.IntRange(1, 2), default=2,
                     show_default=True, help="YubiKey: the OTP slot holding the HMAC-SHA1 "
                                             "secret.")(f)
    return f


def _pin_option(f):  # noqa: ANN001,ANN202 - a click decorator
    return click.option("--pin/--no-pin", "use_pin", default=None,
                        help="FIDO2: use the key's PIN (user verification) every time "
                             "[default: when the key has a PIN].")(f)


@vault.command("init")
@click.option("--passphrase", "method", flag_value="passphrase", default=True,
              help="Protect the vault with a passphrase (the default).")
@click.option("--yubikey", "method", flag_value="yubikey",
              help="Open the vault with a YubiKey's HMAC-SHA1 challenge-response.")
@click.option("--fido2", "method", flag_value="fido2",
              help="Open the vault with a FIDO2 security key (hmac-secret).")
@_yubikey_options
@_pin_option
@yes_option
@verbose_option
def init(method: str, otp_slot: int, serial: int | None, do_program: bool, touch: bool,
         use_pin: bool | None, assume_yes: bool) -> None:
    """Create the vault; a recovery key is always shown once.

    With --yubikey or --fido2 the first slot is that token (enroll a backup token with
    'capit vault enroll' afterwards); otherwise it is a passphrase.
    """
    from capit import ui
    from capit.errors import CapitError, ExitCode
    from capit.stores.vault import VaultStore, create_with, show_recovery_key

    store = VaultStore(home())
    if store.exists():
        raise CapitError(f"a vault already exists at {store.path}; see: capit vault slots",
                         ExitCode.STATE)
    if method == "passphrase":
        store.create()
    else:
        if method == "yubikey":
            fields, ikm, label = _yubikey_slot(otp_slot, serial, do_program, touch, assume_yes)
            type_name = "yubikey-hmac-sha1"
        else:
            fields, ikm, label = _fido2_slot(use_pin)
            type_name = "fido2"
        _, recovery = create_with(store.path, type_name, label, fields, ikm)
        show_recovery_key(recovery)
    ui.info(f"Vault created at {store.path}.")


@vault.command("slots")
@json_option
@verbose_option
def slots(as_json: bool) -> None:
    """List the vault's unlock slots (no unlocking needed)."""
    from capit import ui
    from capit.stores.slots import presence, slot_type
    from capit.stores.vault import VaultStore

    store = VaultStore(home())
    vdoc = store.doc()
    if vdoc is None:
        from capit.errors import CapitError, ExitCode

        raise CapitError(f"no vault at {store.path}; create one with: capit vault init",
                         ExitCode.NOT_FOUND)
    rows = []
    present = presence(vdoc.slots)
    for slot in vdoc.slots:
        kind = slot_type(slot["type"])
        rows.append({
            "id": slot["id"], "type": slot["type"], "label": slot["label"],
            "created_at": slot["created_at"],
            "detail": kind.describe(slot) if kind else "unknown slot type (newer capit?)",
            "present": present.get(slot["id"]),
        })
    if as_json:
        emit_json("vault.slots", {"path": str(store.path), "vault_id": vdoc.vault_id,
                                  "slots": rows})
        return
    ui.info(f"Vault {store.path}")
    for r in rows:
        present = "" if r["present"] is None else (
            "  [plugged in]" if r["present"] else "  [not present]")
        ui.result(f"  slot {r['id']}: {_shown(r['type']):<17} {_shown(r['label']):<16} "
                  f"{r['detail']}  "
                  f"(added {r['created_at'][:10]}){present}")


@vault.command("enroll")
@click.argument("method", type=click.Choice(["yubikey", "fido2", "passphrase", "recovery"]))
@click.option("--label", help="A label for the new slot.")
@_yubikey_options
@_pin_option
@yes_option
@verbose_option
def enroll(method: str, label: str | None, otp_slot: int, serial: int | None,
           do_program: bool, touch: bool, use_pin: bool | None, assume_yes: bool) -> None:
    """Add an unlock slot: a YubiKey, a FIDO2 security key, a passphrase or a recovery key.

    The vault is opened first with an existing slot (a touch of an enrolled token, or its
    passphrase or recovery key); the new token is then asked (a YubiKey once, a FIDO2 key
    twice: to create its credential and to derive). A new passphrase comes from a hidden
    prompt (twice), stdin, or CAPIT_NEW_PASSPHRASE_FILE/_FD/_COMMAND; a PIN from a hidden
    prompt, stdin, or CAPIT_PIN_FILE/_FD/_COMMAND.
    """
    from capit import ui
    from capit.secret import Secret
    from capit.secretinput import read_passphrase
    from capit.stores.slots import PassphraseSlot, RecoverySlot
    from capit.stores.vault import VaultStore, show_recovery_key

    _check_label(label)
    if method == "yubikey":
        from capit.stores import yubikey

        yubikey.require()  # before anything is asked for
    elif method == "fido2":
        from capit.stores import fido2slot

        fido2slot.require()
    store = VaultStore(home())
    opened = store.open()
    if method in ("yubikey", "fido2"):
        if method == "yubikey":
            fields, ikm, default = _yubikey_slot(otp_slot, serial, do_program, touch,
                                                 assume_yes)
            type_name = "yubikey-hmac-sha1"
        else:
            fields, ikm, default = _fido2_slot(
                use_pin, [s for s in opened.vdoc.slots if s["type"] == "fido2"])
            type_name = "fido2"
        slot = opened.add_slot(type_name, label or default, fields, ikm)
        ui.info(f"Added {type_name} slot {slot['id']}; it opens the vault from now on.")
    elif method == "passphrase":
        secret = read_passphrase("New passphrase", new=True, confirm=True)
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

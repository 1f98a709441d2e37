"""The sealed vault store: master keys encrypted at rest, opened once per command.

See capit/stores/vaultfile.py for the file format and capit/stores/slots.py for the
unlock methods.  All writes hold the home lock and check that the file on disk is still
the one that was opened, so two capit processes cannot lose each other's changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capit import ui
from capit.errors import CapitError, ExitCode
from capit.fsutil import atomic_write, ensure_home, home_lock, read_private
from capit.paths import VAULT
from capit.platforms import MasterKey
from capit.secret import Secret
from capit.secretinput import interactive, read_passphrase
from capit.stores import Store
from capit.stores import vaultfile as vf
from capit.stores.slots import (
    MIN_PASSPHRASE,
    PassphraseSlot,
    RecoverySlot,
    TokenHandle,
    TokenSlotType,
    new_slot,
    slot_type,
)

UNLOCK_ATTEMPTS = 3


class OpenVault:
    """An unlocked vault: the data key and decrypted payload, for one command."""

    def __init__(self, path: Path, vdoc: vf.VaultDoc, data_key: bytes,
                 payload: dict[str, Any], unlocked_with: str | None) -> None:
        self.path = path
        self.vdoc = vdoc
        self._data_key = data_key
        self.payload = payload
        self.unlocked_with = unlocked_with

    @property
    def masters(self) -> dict[str, Any]:
        return self.payload["masters"]

    def get(self, platform: str) -> MasterKey | None:
        entry = self.masters.get(platform)
        if not isinstance(entry, dict) or not isinstance(entry.get("secret"), str):
            return None
        meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
        return MasterKey(platform, Secret(entry["secret"]), dict(meta), store="vault")

    def set(self, master: MasterKey) -> None:
        self.masters[master.platform] = {
            "secret": master.secret.reveal(),
            "meta": dict(master.meta),
            "added_at": vf.now_text(),
        }

    def remove(self, platform: str) -> bool:
        return self.masters.pop(platform, None) is not None

    def add_slot(self, type_name: str, label: str, fields: dict[str, Any], ikm: bytes) -> dict:
        doc = vf.clone(self.vdoc.doc)
        if len(doc["slots"]) >= vf.MAX_SLOTS:
            raise CapitError(f"the vault already has {vf.MAX_SLOTS} slots", ExitCode.USAGE)
        if type_name == "passphrase" and sum(
                1 for s in doc["slots"] if s["type"] == "passphrase") >= vf.MAX_KDF_SLOTS:
            raise CapitError(f"the vault already has {vf.MAX_KDF_SLOTS} passphrase slots; "
                             "remove one first", ExitCode.USAGE)
        slot = new_slot(doc, type_name, label, fields)
        vf.wrap_slot(doc, slot, ikm, self._data_key)
        doc["slots"].append(slot)
        self._save_doc(doc)
        return slot

    def remove_slot(self, slot_id: str) -> dict:
        doc = vf.clone(self.vdoc.doc)
        slot = next((s for s in doc["slots"] if s["id"] == slot_id), None)
        if slot is None:
            raise CapitError(f"the vault has no slot {slot_id!r}; see: capit vault slots",
                             ExitCode.NOT_FOUND)
        if len(doc["slots"]) == 1:
            raise CapitError("refusing to remove the vault's last slot: it would lock the vault "
                             "for good", ExitCode.USAGE)
        usable = [s for s in doc["slots"] if s["id"] != slot_id and slot_type(s["type"])]
        if not usable:
            raise CapitError("refusing to remove the last slot this capit can open",
                             ExitCode.USAGE)
        doc["slots"].remove(slot)
        self._save_doc(doc)
        return slot

    def save(self) -> None:
        self._save_doc(vf.clone(self.vdoc.doc))

    def _save_doc(self, doc: dict[str, Any]) -> None:
        data = vf.encrypt_payload(doc, self._data_key, self.payload)
        home = self.path.parent
        with home_lock(home):
            current = read_private(self.path, what="vault")
            if current != self.vdoc.raw:
                raise CapitError(
                    f"{self.path} changed while capit was running (another capit process?); "
                    "nothing was written; run the command again",
                    ExitCode.STATE,
                )
            atomic_write(self.path, data, what="vault")
        self.vdoc = vf.VaultDoc(doc=doc, raw=data)


def load(path: Path) -> vf.VaultDoc | None:
    raw = read_private(path, what="vault")
    if raw is None:
        return None
    return vf.parse(raw, str(path))


def create(path: Path, passphrase: Secret) -> tuple[OpenVault, str]:
    """A new vault with a passphrase slot and a recovery slot; returns it and the recovery key."""
    fields, ikm = PassphraseSlot().enroll(passphrase)
    return create_with(path, "passphrase", "passphrase", fields, ikm)


def create_with(path: Path, type_name: str, label: str, fields: dict[str, Any],
                ikm: bytes) -> tuple[OpenVault, str]:
    """A new vault whose first slot is ``type_name`` (fields and ikm already made) plus a
    recovery slot; returns it and the recovery key (to be shown once)."""
    import secrets

    recovery_text, recovery_raw = RecoverySlot.generate()
    Secret(recovery_text)  # registered, so it is masked in logs and tracebacks
    data_key = secrets.token_bytes(vf.DATA_KEY_BYTES)
    doc = vf.new_doc()
    slot = new_slot(doc, type_name, label, fields)
    vf.wrap_slot(doc, slot, ikm, data_key)
    doc["slots"].append(slot)
    rslot = new_slot(doc, "recovery", "recovery key", {})
    vf.wrap_slot(doc, rslot, recovery_raw, data_key)
    doc["slots"].append(rslot)
    payload: dict[str, Any] = {"masters": {}}
    data = vf.encrypt_payload(doc, data_key, payload)
    ensure_home(path.parent)
    with home_lock(path.parent):
        if path.exists() or path.is_symlink():
            raise CapitError(f"a vault already exists at {path}; nothing was changed",
                             ExitCode.STATE)
        atomic_write(path, data, what="vault")
    vdoc = vf.VaultDoc(doc=doc, raw=data)
    return OpenVault(path, vdoc, data_key, payload, unlocked_with=slot["id"]), recovery_text


def _prompt_for(slots: list[dict[str, Any]]) -> str:
    types = {s["type"] for s in slots}
    if "passphrase" in types and "recovery" in types:
        return "Vault passphrase (or recovery key)"
    if "passphrase" in types:
        return "Vault passphrase"
    return "Recovery key"


def unlock(path: Path, vdoc: vf.VaultDoc) -> OpenVault:
    """Open the vault with whatever slot the user can satisfy.

    Enrolled tokens that are plugged in come first (found without a touch, then asked once:
    one touch); with none present, a passphrase or recovery slot is asked for; with neither,
    one line names the tokens that would open the vault.
    """
    known = [s for s in vdoc.slots if slot_type(s["type"]) is not None]
    tokens = [s for s in known if isinstance(slot_type(s["type"]), TokenSlotType)]
    knowledge = [s for s in known if slot_type(s["type"]).kind == "knowledge"]
    missing = None  # why no token opened it, when falling back to a typed secret
    if tokens:
        opened = _unlock_with_token(path, vdoc, tokens, fallback=bool(knowledge))
        if isinstance(opened, OpenVault):
            return opened
        missing = opened
    if not knowledge:
        kinds = ", ".join(sorted({s["type"] for s in vdoc.slots}))
        raise CapitError(
            f"the vault at {path} can only be opened by slots this capit cannot use ({kinds})",
            ExitCode.UNLOCK,
        )
    attempts = UNLOCK_ATTEMPTS if interactive() and not _env_passphrase() else 1
    prompt = _prompt_for(knowledge)
    for attempt in range(attempts):
        try:
            secret = read_passphrase(prompt)
        except CapitError as err:
            if missing is None or err.code != ExitCode.USAGE or interactive():
                raise
            # nothing piped in: say first that the token is missing
            raise CapitError(f"{missing}; or give the {prompt.lower()} on standard input",
                             ExitCode.UNLOCK) from None
        opened = try_secret(vdoc, knowledge, secret)
        if opened is not None:
            data_key, slot_id = opened
            payload = vf.decrypt_payload(vdoc, data_key, str(path))
            return OpenVault(path, vdoc, data_key, payload, unlocked_with=slot_id)
        if attempt + 1 < attempts:
            ui.info("Wrong passphrase or recovery key; try again.")
    raise CapitError("wrong passphrase or recovery key; the vault stays locked", ExitCode.UNLOCK)


def _unlock_with_token(path: Path, vdoc: vf.VaultDoc, tokens: list[dict[str, Any]],
                       fallback: bool) -> OpenVault | str:
    """Open with the first enrolled token that is plugged in (one touch); when no enrolled
    token is present and a knowledge slot can be asked for instead, the reason (a line)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for slot in tokens:
        by_type.setdefault(slot["type"], []).append(slot)
    found: list[TokenHandle] = []
    others: list[str] = []
    hints: list[str] = []
    try:
        for name, group in by_type.items():
            kind = slot_type(name)
            assert isinstance(kind, TokenSlotType)
            hint = kind.unavailable()
            if hint is not None:
                hints.append(hint)
                continue
            matched, unmatched = kind.locate(group)
            found.extend(matched)
            others.extend(unmatched)
        if not found:
            message = _no_token_message(path, tokens, others, hints)
            if fallback:
                if interactive():
                    ui.info(message[0].upper() + message[1:] + ".")
                return message
            raise CapitError(message, ExitCode.UNLOCK)
        order = {s["id"]: i for i, s in enumerate(vdoc.slots)}
        handle = min(found, key=lambda h: order[h.slot["id"]])
        kind = slot_type(handle.slot["type"])
        assert isinstance(kind, TokenSlotType)
        ikm = kind.ikm_from_token(handle)
    finally:
        for each in found:
            each.close()
    data_key = vf.unwrap_slot(vdoc.doc, handle.slot, ikm)
    if data_key is None:
        raise CapitError(
            f"{handle.name} answered, but its answer does not open slot {handle.slot['id']}: "
            "the slot was altered in the file, or the token was reset or reprogrammed; the "
            "vault stays locked",
            ExitCode.UNLOCK,
        )
    payload = vf.decrypt_payload(vdoc, data_key, str(path))
    return OpenVault(path, vdoc, data_key, payload, unlocked_with=handle.slot["id"])


def _no_token_message(path: Path, tokens: list[dict[str, Any]], others: list[str],
                      hints: list[str]) -> str:
    names = []
    for slot in tokens:
        kind = slot_type(slot["type"])
        assert isinstance(kind, TokenSlotType)
        name = kind.token_name(slot)
        if name not in names:
            names.append(name)
    wanted = " or ".join(names)
    if others:
        seen = ", ".join(dict.fromkeys(others))
        head = f"the token plugged in ({seen}) is not enrolled in the vault at {path}"
    else:
        head = f"no token that opens the vault at {path} is plugged in"
    tail = f"; {hints[0]}" if hints else ""
    return f"{head}; it opens with {wanted}{tail}"


def _env_passphrase() -> bool:
    import os

    return any(os.environ.get(f"CAPIT_PASSPHRASE_{s}") for s in ("FILE", "FD", "COMMAND"))


def try_secret(vdoc: vf.VaultDoc, slots: list[dict[str, Any]],
               secret: Secret) -> tuple[bytes, str] | None:
    """Try a typed secret against knowledge slots, cheapest first (recovery before Argon2)."""
    ordered = sorted(slots, key=lambda s: 0 if s["type"] == "recovery" else 1)
    for slot in ordered:
        ikm = slot_type(slot["type"]).ikm_from_secret(slot, secret)
        if ikm is None:
            continue
        data_key = vf.unwrap_slot(vdoc.doc, slot, ikm)
        if data_key is not None:
            return data_key, slot["id"]
    return None


class VaultStore(Store):
    name = "vault"
    title = "encrypted vault"
    description = ("master keys sealed with AES-256-GCM; opened by a YubiKey or FIDO2 key "
                   "touch, a passphrase or the recovery key")

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / VAULT
        self._open: OpenVault | None = None

    def exists(self) -> bool:
        return self.path.exists() or self.path.is_symlink()

    def doc(self) -> vf.VaultDoc | None:
        return load(self.path)

    def open(self) -> OpenVault:
        if self._open is None:
            vdoc = load(self.path)
            if vdoc is None:
                raise CapitError(
                    f"no vault at {self.path}; create one with: capit vault init",
                    ExitCode.NOT_FOUND,
                )
            self._open = unlock(self.path, vdoc)
        return self._open

    def open_or_create(self) -> OpenVault:
        if self._open is not None:
            return self._open
        if self.exists():
            return self.open()
        self._open = self.create()
        return self._open

    def create(self) -> OpenVault:
        ensure_home(self.home)
        if self.exists():
            raise CapitError(f"a vault already exists at {self.path}", ExitCode.STATE)
        ui.info(f"Creating the vault {self.path}: master keys are kept there encrypted.")
        ui.info("Choose a passphrase (at least 8 characters); capit cannot recover it for you.")
        passphrase = read_passphrase("New vault passphrase", confirm=True,
                                     min_length=MIN_PASSPHRASE)
        PassphraseSlot.check_strength(passphrase)
        opened, recovery = create(self.path, passphrase)
        show_recovery_key(recovery)
        self._open = opened
        return opened

    def get(self, platform: str) -> MasterKey | None:
        return self.open().get(platform)

    def put(self, master: MasterKey) -> None:
        vault = self.open_or_create()
        vault.set(master)
        vault.save()

    def remove(self, platform: str) -> bool:
        vault = self.open()
        if not vault.remove(platform):
            return False
        vault.save()
        return True


def show_recovery_key(text: str) -> None:
    ui.info("")
    ui.info("Recovery key (shown once; it opens the vault if the passphrase or token is lost).")
    ui.info("Write it down and keep it somewhere safe, away from this computer:")
    ui.result(f"    {text}")
    ui.info("")


"""Vault unlock slots: how each method turns what the user has into key material (ikm).

A slot type validates its own metadata (with bounds, so a hostile file cannot make capit
allocate gigabytes or spin for hours) and derives the ``ikm`` that
``capit.stores.vaultfile.derive_kek`` turns into the slot's key-encryption key.

* ``passphrase`` -- Argon2id (RFC 9106's second recommended option: m=64 MiB, t=3, p=4);
* ``recovery`` -- a 256-bit random key shown once at enrollment, typed back in base32;
* ``yubikey-hmac-sha1`` -- a YubiKey's HMAC-SHA1 answer to a stored challenge
  (capit/stores/yubikey.py);
* ``fido2`` -- a FIDO2 security key's hmac-secret output for a stored credential and salt
  (capit/stores/fido2slot.py).

Knowledge slots turn something typed into ``ikm``; token slots (``kind = "token"``) find
their device silently (:meth:`TokenSlotType.locate`) and then ask it once
(:meth:`TokenSlotType.ikm_from_token`), which is where the one touch happens.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import Any

from capit.errors import CapitError, ExitCode
from capit.secret import Secret
from capit.stores.vaultfile import VaultDamaged, b64d, b64e, now_text

# Argon2id parameters written for new passphrase slots (RFC 9106 section 4, option 2)
ARGON2_MEMORY_KIB = 64 * 1024
ARGON2_ITERATIONS = 3
ARGON2_LANES = 4
# accepted when reading: never weaker than what capit writes, never big enough to hurt
ARGON2_BOUNDS = {
    "memory_kib": (64 * 1024, 1024 * 1024),
    "iterations": (3, 16),
    "lanes": (1, 16),
}
MIN_PASSPHRASE = 8


class SlotType:
    type: str = ""
    title: str = ""
    kind: str = "knowledge"  # "knowledge": unlocked by something typed; "token": hardware

    def validate(self, slot: dict[str, Any]) -> None:
        """Raise VaultDamaged if the type-specific fields are malformed."""

    def describe(self, slot: dict[str, Any]) -> str:
        return self.title

    def present(self, slot: dict[str, Any]) -> bool | None:
        """Whether the token for this slot is plugged in now; None when not applicable."""
        return None

    def ikm_from_secret(self, slot: dict[str, Any], secret: Secret) -> bytes | None:
        """The key material for a typed secret; None if the input cannot belong to this slot."""
        return None


class TokenHandle:
    """A device found by :meth:`TokenSlotType.locate` that holds one slot's secret."""

    def __init__(self, slot: dict[str, Any], device: Any, name: str,
                 closer: Any = None) -> None:
        self.slot = slot
        self.device = device
        self.name = name
        self._closer = closer

    def close(self) -> None:
        close = self._closer or getattr(self.device, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001,S110 - a device that went away is closed enough
                pass


class TokenSlotType(SlotType):
    """A slot opened by a hardware token: found silently, then asked once (one touch)."""

    kind = "token"

    def unavailable(self) -> str | None:
        """None when the library this slot needs is importable, else how to install it."""
        return None

    def token_name(self, slot: dict[str, Any]) -> str:
        """How the person at the terminal recognises the token, e.g. 'YubiKey 12345678'."""
        return self.title

    def locate(self, slots: list[dict[str, Any]]) -> tuple[list[TokenHandle], list[str]]:
        """Without any touch: handles for the slots whose token is plugged in now, in the
        order of ``slots``, and the names of other tokens of this kind that are present."""
        return [], []

    def ikm_from_token(self, handle: TokenHandle) -> bytes:
        """Ask the token (one touch, PIN if the slot was enrolled with one) for the ikm;
        raise CapitError with a one-line message when it cannot answer."""
        raise NotImplementedError

    def present(self, slot: dict[str, Any]) -> bool | None:
        if self.unavailable() is not None:
            return None
        found, _ = self.locate([slot])
        for handle in found:
            handle.close()
        return bool(found)


def _fields(slot: dict[str, Any]) -> set[str]:
    return set(slot) - {"id", "type", "label", "created_at", "hkdf_salt", "wrapped_key"}


def argon2id(passphrase: bytes, salt: bytes, memory_kib: int, iterations: int,
             lanes: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    return Argon2id(salt=salt, length=32, iterations=iterations, lanes=lanes,
                    memory_cost=memory_kib).derive(passphrase)


class PassphraseSlot(SlotType):
    type = "passphrase"
    title = "passphrase"

    def validate(self, slot: dict[str, Any]) -> None:
        if _fields(slot) != {"kdf"}:
            raise VaultDamaged(f"passphrase slot {slot['id']} has unexpected fields")
        kdf = slot["kdf"]
        if not isinstance(kdf, dict) or set(kdf) != {"name", "salt", *ARGON2_BOUNDS}:
            raise VaultDamaged(f"passphrase slot {slot['id']} has malformed KDF parameters")
        if kdf["name"] != "argon2id":
            raise VaultDamaged(f"passphrase slot {slot['id']} uses an unknown KDF")
        b64d(kdf["salt"], "argon2 salt", min_size=16, max_size=64)
        for name, (low, high) in ARGON2_BOUNDS.items():
            value = kdf[name]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise VaultDamaged(
                    f"passphrase slot {slot['id']}: Argon2 {name} {value!r} is outside "
                    f"{low}..{high}"
                )
        if kdf["memory_kib"] < 8 * kdf["lanes"]:
            raise VaultDamaged(f"passphrase slot {slot['id']}: Argon2 memory too small for lanes")

    def describe(self, slot: dict[str, Any]) -> str:
        kdf = slot["kdf"]
        return f"Argon2id m={kdf['memory_kib'] // 1024} MiB t={kdf['iterations']} p={kdf['lanes']}"

    def ikm_from_secret(self, slot: dict[str, Any], secret: Secret) -> bytes | None:
        kdf = slot["kdf"]
        return argon2id(secret.reveal().encode("utf-8"), b64d(kdf["salt"], "argon2 salt"),
                        kdf["memory_kib"], kdf["iterations"], kdf["lanes"])

    @staticmethod
    def check_strength(secret: Secret) -> None:
        if len(secret.reveal()) < MIN_PASSPHRASE:
            raise CapitError(
                f"the passphrase must have at least {MIN_PASSPHRASE} characters; nothing was "
                "changed",
                ExitCode.USAGE,
            )

    def enroll(self, secret: Secret) -> tuple[dict[str, Any], bytes]:
        """New slot fields and the ikm for a passphrase."""
        self.check_strength(secret)
        salt = secrets.token_bytes(16)
        fields = {
            "kdf": {
                "name": "argon2id", "salt": b64e(salt), "memory_kib": ARGON2_MEMORY_KIB,
                "iterations": ARGON2_ITERATIONS, "lanes": ARGON2_LANES,
            }
        }
        ikm = argon2id(secret.reveal().encode("utf-8"), salt, ARGON2_MEMORY_KIB,
                       ARGON2_ITERATIONS, ARGON2_LANES)
        return fields, ikm


RECOVERY_BYTES = 32


class RecoverySlot(SlotType):
    type = "recovery"
    title = "recovery key"

    def validate(self, slot: dict[str, Any]) -> None:
        if _fields(slot):
            raise VaultDamaged(f"recovery slot {slot['id']} has unexpected fields")

    def describe(self, slot: dict[str, Any]) -> str:
        return "256-bit recovery key"

    @staticmethod
    def generate() -> tuple[str, bytes]:
        """A new recovery key: (text to show once, its 32 bytes)."""
        raw = secrets.token_bytes(RECOVERY_BYTES)
        text = base64.b32encode(raw).decode("ascii").rstrip("=").lower()
        return "-".join(text[i:i + 4] for i in range(0, len(text), 4)), raw

    @staticmethod
    def parse(text: str) -> bytes | None:
        compact = re.sub(r"[\s-]", "", text).upper()
        if len(compact) != 52 or not re.fullmatch(r"[A-Z2-7]+", compact):
            return None
        try:
            raw = base64.b32decode(compact + "====")
        except (binascii.Error, ValueError):
            return None
        return raw if len(raw) == RECOVERY_BYTES else None

    def ikm_from_secret(self, slot: dict[str, Any], secret: Secret) -> bytes | None:
        return self.parse(secret.reveal())


BUILTIN_SLOTS: dict[str, SlotType] = {
    "passphrase": PassphraseSlot(),
    "recovery": RecoverySlot(),
}
_HARDWARE_LOADED = False


def _load_hardware() -> None:
    """Register the hardware slot types (their modules import yubikit/fido2 lazily)."""
    global _HARDWARE_LOADED
    if _HARDWARE_LOADED:
        return
    from capit.stores.fido2slot import Fido2Slot
    from capit.stores.yubikey import YubiKeySlot

    BUILTIN_SLOTS.setdefault(YubiKeySlot.type, YubiKeySlot())
    BUILTIN_SLOTS.setdefault(Fido2Slot.type, Fido2Slot())
    _HARDWARE_LOADED = True


def slot_type(name: str) -> SlotType | None:
    _load_hardware()
    return BUILTIN_SLOTS.get(name)


def presence(slots: list[dict[str, Any]]) -> dict[str, bool | None]:
    """Slot id -> whether its token is plugged in now (None: not a token, or unknown).

    One silent discovery per slot type, no touch."""
    result: dict[str, bool | None] = {s["id"]: None for s in slots}
    by_type: dict[str, list[dict[str, Any]]] = {}
    for slot in slots:
        kind = slot_type(slot["type"])
        if isinstance(kind, TokenSlotType):
            by_type.setdefault(slot["type"], []).append(slot)
    for name, group in by_type.items():
        kind = slot_type(name)
        assert isinstance(kind, TokenSlotType)
        if kind.unavailable() is not None:
            continue
        found, _ = kind.locate(group)
        ids = {h.slot["id"] for h in found}
        for handle in found:
            handle.close()
        for slot in group:
            result[slot["id"]] = slot["id"] in ids
    return result


def validate_slot(slot: dict[str, Any]) -> None:
    kind = slot_type(slot["type"])
    if kind is not None:
        kind.validate(slot)
    # unknown types (from a newer capit) are kept intact and simply cannot be used here


def new_slot(doc: dict[str, Any], slot_type_name: str, label: str,
             fields: dict[str, Any]) -> dict[str, Any]:
    from capit.stores.vaultfile import next_slot_id

    slot = {
        "id": next_slot_id(doc),
        "type": slot_type_name,
        "label": label,
        "created_at": now_text(),
        "hkdf_salt": b64e(secrets.token_bytes(32)),
        **fields,
    }
    return slot

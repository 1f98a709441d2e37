"""The vault file format (version 1): envelope encryption with pluggable unlock slots.

Layout (all binary values base64, the whole file canonical JSON, see docs/vault-format.md)::

    {"format": "capit-vault", "version": 1, "vault_id": <32 hex>, "created_at": <RFC 3339>,
     "slots": [{"id", "type", "label", "created_at", <type fields>, "hkdf_salt",
                "wrapped_key": {"nonce", "ciphertext"}}, ...],
     "payload": {"nonce", "ciphertext"},
     "checksum": "sha256:<hex of the file without this field>"}

* A random 256-bit data key encrypts the payload (AES-256-GCM).  The payload's associated
  data is the canonical header -- format, version, vault id, creation time and every
  slot's metadata -- so editing any of it makes decryption fail.
* Each slot wraps the data key with its own key-encryption key
  ``KEK = HKDF-SHA256(ikm, salt=hkdf_salt, info="capit-vault/v1/kek/<type>/<vault id>/<slot id>")``
  where ``ikm`` is the slot's secret (Argon2id output, recovery key, device response).
  The wrap's associated data is the slot's own metadata plus the vault identity.
* The checksum only tells accidental damage apart from a wrong passphrase; integrity
  against deliberate edits comes from the AEAD tags.
* The file must be byte-for-byte in canonical form; anything else is reported as damaged.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from capit.errors import CapitError, ExitCode

FORMAT = "capit-vault"
VERSION = 1
DATA_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_SLOTS = 32
MAX_KDF_SLOTS = 8  # passphrase slots, each a full Argon2id run on a wrong guess
_SLOT_ID_RE = re.compile(r"^[1-9][0-9]{0,3}$")
_VAULT_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class VaultDamaged(CapitError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.VAULT)


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(value: Any, what: str, *, size: int | None = None, min_size: int = 0,
         max_size: int = 1 << 20) -> bytes:
    if not isinstance(value, str):
        raise VaultDamaged(f"vault field {what} is not a base64 string")
    try:
        data = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise VaultDamaged(f"vault field {what} is not valid base64") from None
    if b64e(data) != value:
        # set padding bits spell the same bytes differently: only one spelling is canonical
        raise VaultDamaged(f"vault field {what} is not canonical base64")
    if size is not None and len(data) != size:
        raise VaultDamaged(f"vault field {what} has the wrong length")
    if not min_size <= len(data) <= max_size:
        raise VaultDamaged(f"vault field {what} has an implausible length")
    return data


def canonical_json(obj: Any) -> bytes:
    """Compact canonical JSON: the associated data that binds headers to ciphertexts."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def file_bytes(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


def checksum(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return "sha256:" + hashlib.sha256(file_bytes(body)).hexdigest()


def slot_metadata(slot: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in slot.items() if k != "wrapped_key"}


def header_ad(doc: dict[str, Any]) -> bytes:
    return canonical_json({
        "format": doc["format"],
        "version": doc["version"],
        "vault_id": doc["vault_id"],
        "created_at": doc["created_at"],
        "slots": [slot_metadata(s) for s in doc["slots"]],
    })


def slot_ad(doc: dict[str, Any], slot: dict[str, Any]) -> bytes:
    return canonical_json({
        "format": doc["format"],
        "version": doc["version"],
        "vault_id": doc["vault_id"],
        "slot": slot_metadata(slot),
    })


def kek_info(vault_id: str, slot_type: str, slot_id: str) -> bytes:
    return f"capit-vault/v1/kek/{slot_type}/{vault_id}/{slot_id}".encode()


def derive_kek(ikm: bytes, salt: bytes, vault_id: str, slot_type: str, slot_id: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt,
        info=kek_info(vault_id, slot_type, slot_id),
    ).derive(ikm)


def seal(key: bytes, plaintext: bytes, ad: bytes, nonce: bytes | None = None) -> dict[str, str]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = nonce if nonce is not None else secrets.token_bytes(NONCE_BYTES)
    return {"nonce": b64e(nonce), "ciphertext": b64e(AESGCM(key).encrypt(nonce, plaintext, ad))}


def unseal(key: bytes, box: dict[str, Any], ad: bytes, what: str) -> bytes | None:
    """Decrypt; None when the tag does not verify (wrong key, or altered data)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = b64d(box.get("nonce"), f"{what}.nonce", size=NONCE_BYTES)
    ciphertext = b64d(box.get("ciphertext"), f"{what}.ciphertext", min_size=TAG_BYTES)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, ad)
    except InvalidTag:
        return None


def now_text() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class VaultDoc:
    """A parsed, structurally validated vault file (still locked)."""

    doc: dict[str, Any]
    raw: bytes

    @property
    def vault_id(self) -> str:
        return self.doc["vault_id"]

    @property
    def slots(self) -> list[dict[str, Any]]:
        return self.doc["slots"]

    def slot(self, slot_id: str) -> dict[str, Any] | None:
        return next((s for s in self.slots if s["id"] == slot_id), None)


def parse(raw: bytes, path: str = "vault") -> VaultDoc:
    """Parse and validate a vault file without any secret; raise VaultDamaged on any defect."""
    from capit.stores.slots import validate_slot

    if not raw.strip():
        raise VaultDamaged(f"{path} is empty; restore it from a backup")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise VaultDamaged(
            f"{path} is damaged (not valid JSON); restore it from a backup"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise VaultDamaged(f"{path} is not a capit vault")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise VaultDamaged(f"{path} has no valid format version")
    if version > VERSION:
        raise VaultDamaged(
            f"{path} uses vault format {version}, newer than this capit supports ({VERSION}); "
            "upgrade capit"
        )
    if version != VERSION:
        raise VaultDamaged(f"{path} uses unknown vault format version {version}")
    try:
        canonical = file_bytes(doc) == raw
    except (RecursionError, ValueError):  # nesting too deep to re-encode: not ours
        canonical = False
    if not canonical:
        raise VaultDamaged(f"{path} is damaged or was edited by hand; restore it from a backup")
    if doc.get("checksum") != checksum(doc):
        raise VaultDamaged(f"{path} is damaged (checksum mismatch); restore it from a backup")
    expected = {"format", "version", "vault_id", "created_at", "slots", "payload", "checksum"}
    if set(doc) != expected:
        raise VaultDamaged(f"{path} has unexpected fields")
    if not isinstance(doc["vault_id"], str) or not _VAULT_ID_RE.fullmatch(doc["vault_id"]):
        raise VaultDamaged(f"{path} has an invalid vault id")
    if not isinstance(doc["created_at"], str):
        raise VaultDamaged(f"{path} has an invalid creation time")
    slots = doc["slots"]
    if not isinstance(slots, list) or not slots:
        raise VaultDamaged(f"{path} has no unlock slots")
    if len(slots) > MAX_SLOTS:
        raise VaultDamaged(f"{path} has too many slots")
    if sum(1 for s in slots if isinstance(s, dict) and s.get("type") == "passphrase") > \
            MAX_KDF_SLOTS:
        raise VaultDamaged(f"{path} has more than {MAX_KDF_SLOTS} passphrase slots")
    seen: set[str] = set()
    for slot in slots:
        if not isinstance(slot, dict):
            raise VaultDamaged(f"{path} has a malformed slot")
        sid = slot.get("id")
        if not isinstance(sid, str) or not _SLOT_ID_RE.fullmatch(sid) or sid in seen:
            raise VaultDamaged(f"{path} has a slot with a missing, invalid or repeated id")
        seen.add(sid)
        for name in ("type", "label", "created_at"):
            if not isinstance(slot.get(name), str):
                raise VaultDamaged(f"{path}: slot {sid} has no valid {name}")
        b64d(slot.get("hkdf_salt"), f"slot {sid} hkdf_salt", min_size=16, max_size=64)
        wrapped = slot.get("wrapped_key")
        if not isinstance(wrapped, dict) or set(wrapped) != {"nonce", "ciphertext"}:
            raise VaultDamaged(f"{path}: slot {sid} has no valid wrapped key")
        b64d(wrapped["nonce"], f"slot {sid} nonce", size=NONCE_BYTES)
        b64d(wrapped["ciphertext"], f"slot {sid} wrapped key", size=DATA_KEY_BYTES + TAG_BYTES)
        validate_slot(slot)
    payload = doc["payload"]
    if not isinstance(payload, dict) or set(payload) != {"nonce", "ciphertext"}:
        raise VaultDamaged(f"{path} has no valid payload")
    b64d(payload["nonce"], "payload nonce", size=NONCE_BYTES)
    b64d(payload["ciphertext"], "payload ciphertext", min_size=TAG_BYTES, max_size=4 << 20)
    return VaultDoc(doc=doc, raw=raw)


def next_slot_id(doc: dict[str, Any]) -> str:
    used = {int(s["id"]) for s in doc["slots"]} if doc.get("slots") else set()
    return str(max(used, default=0) + 1)


def wrap_slot(doc: dict[str, Any], slot: dict[str, Any], ikm: bytes, data_key: bytes) -> None:
    """Fill ``slot['wrapped_key']`` (slot metadata must be final)."""
    salt = b64d(slot["hkdf_salt"], "hkdf_salt")
    kek = derive_kek(ikm, salt, doc["vault_id"], slot["type"], slot["id"])
    slot.pop("wrapped_key", None)
    slot["wrapped_key"] = seal(kek, data_key, slot_ad(doc, slot))


def unwrap_slot(doc: dict[str, Any], slot: dict[str, Any], ikm: bytes) -> bytes | None:
    salt = b64d(slot["hkdf_salt"], f"slot {slot['id']} hkdf_salt")
    kek = derive_kek(ikm, salt, doc["vault_id"], slot["type"], slot["id"])
    return unseal(kek, slot["wrapped_key"], slot_ad(doc, slot), f"slot {slot['id']}")


def encrypt_payload(doc: dict[str, Any], data_key: bytes, payload: dict[str, Any]) -> bytes:
    """Seal the payload under the current header and return the finished file bytes."""
    doc["payload"] = seal(data_key, canonical_json(payload), header_ad(doc))
    doc.pop("checksum", None)
    doc["checksum"] = checksum(doc)
    return file_bytes(doc)


def decrypt_payload(vdoc: VaultDoc, data_key: bytes, path: str = "vault") -> dict[str, Any]:
    plain = unseal(data_key, vdoc.doc["payload"], header_ad(vdoc.doc), "payload")
    if plain is None:
        raise VaultDamaged(
            f"{path} failed its integrity check: its header or payload was altered"
        )
    try:
        payload = json.loads(plain)
    except ValueError:
        raise VaultDamaged(f"{path} holds an unreadable payload") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("masters"), dict):
        raise VaultDamaged(f"{path} holds an unreadable payload")
    return payload


def new_doc(vault_id: str | None = None, created_at: str | None = None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "vault_id": vault_id or secrets.token_hex(16),
        "created_at": created_at or now_text(),
        "slots": [],
    }


def clone(doc: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(doc)

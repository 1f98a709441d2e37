"""Generate capit's frozen vault test vectors (run once; the outputs are committed).

    .venv/bin/python tests/vectors/make_vectors.py

Everything random in a real vault (vault id, salts, nonces, the data key, the recovery
key) is replaced by ``det(label, n)`` -- the first n bytes of SHA-256("capit test vector "
+ label) -- and passed explicitly through the low-level functions of
capit.stores.vaultfile and capit.stores.slots, so the outputs depend only on the format.

The tests (tests/test_vault_vectors.py) read the committed files and never call this
script: if a change to capit makes it produce different files, that change broke the
vault format (or is a new format version, with new vectors beside the old ones).

Outputs, in this directory:

* ``kek.json`` -- slot key-derivation vectors: passphrase -> Argon2id -> HKDF -> KEK,
  recovery key -> bytes -> HKDF -> KEK, each with the wrapped data key;
* ``vault-v1.json`` -- a complete vault (a passphrase slot and a recovery slot) and
  ``vault-v1.expected.json`` -- its secrets, data key and decrypted payload;
* ``vault-v1-*.json`` + ``manifest.json`` -- damaged and tampered variants, with the
  outcome capit must report for each (in the manner of age's testkit).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from capit.stores import vaultfile as vf  # noqa: E402
from capit.stores.slots import argon2id  # noqa: E402

CREATED = "2025-01-01T00:00:00Z"
FAKE_MASTER = "sk-or-v1-" + hashlib.sha256(b"capit test vector fake master").hexdigest()
PASSPHRASE = "correct horse battery staple"
UNICODE_PASSPHRASE = "p\u00e4ssw\u00f6rd \u2713 \U0001f511 vector"  # UTF-8, not normalised
ARGON2 = {"name": "argon2id", "memory_kib": 65536, "iterations": 3, "lanes": 4}


def det(label: str, n: int) -> bytes:
    digest = b""
    counter = 0
    while len(digest) < n:
        digest += hashlib.sha256(f"capit test vector {label} {counter}".encode()).digest()
        counter += 1
    return digest[:n]


def recovery_text(raw: bytes) -> str:
    """The display form of a recovery key (as RecoverySlot.generate writes it)."""
    text = base64.b32encode(raw).decode("ascii").rstrip("=").lower()
    return "-".join(text[i:i + 4] for i in range(0, len(text), 4))


def passphrase_slot(slot_id: str, label: str, tag: str, params: dict[str, Any]) -> dict:
    return {
        "id": slot_id, "type": "passphrase", "label": label, "created_at": CREATED,
        "hkdf_salt": vf.b64e(det(f"{tag} hkdf salt", 32)),
        "kdf": {**params, "salt": vf.b64e(det(f"{tag} argon2 salt", 16))},
    }


def recovery_slot(slot_id: str, tag: str) -> dict:
    return {
        "id": slot_id, "type": "recovery", "label": "recovery key", "created_at": CREATED,
        "hkdf_salt": vf.b64e(det(f"{tag} hkdf salt", 32)),
    }


def passphrase_ikm(slot: dict, passphrase: str) -> bytes:
    kdf = slot["kdf"]
    return argon2id(passphrase.encode("utf-8"), base64.b64decode(kdf["salt"]),
                    kdf["memory_kib"], kdf["iterations"], kdf["lanes"])


def wrap(doc: dict, slot: dict, ikm: bytes, data_key: bytes, tag: str) -> bytes:
    kek = vf.derive_kek(ikm, base64.b64decode(slot["hkdf_salt"]), doc["vault_id"],
                        slot["type"], slot["id"])
    slot["wrapped_key"] = vf.seal(kek, data_key, vf.slot_ad(doc, slot),
                                  nonce=det(f"{tag} wrap nonce", vf.NONCE_BYTES))
    return kek


def kek_vectors() -> dict:
    vectors = []
    for name, passphrase, params, tag in [
        ("passphrase slot, default Argon2id parameters", PASSPHRASE, ARGON2, "kek-1"),
        ("passphrase slot, non-ASCII passphrase, t=4 p=1", UNICODE_PASSPHRASE,
         {**ARGON2, "iterations": 4, "lanes": 1}, "kek-2"),
    ]:
        doc = vf.new_doc(det(f"{tag} vault id", 16).hex(), CREATED)
        slot = passphrase_slot("1", "passphrase", tag, params)
        ikm = passphrase_ikm(slot, passphrase)
        data_key = det(f"{tag} data key", 32)
        kek = wrap(doc, slot, ikm, data_key, tag)
        vectors.append({
            "name": name, "type": "passphrase", "passphrase": passphrase,
            "passphrase_utf8_hex": passphrase.encode("utf-8").hex(),
            "argon2": slot["kdf"], "vault_id": doc["vault_id"], "slot_id": slot["id"],
            "hkdf_salt": slot["hkdf_salt"],
            "hkdf_info": vf.kek_info(doc["vault_id"], "passphrase", slot["id"]).decode(),
            "ikm_hex": ikm.hex(), "kek_hex": kek.hex(),
            "slot": slot, "slot_ad": vf.slot_ad(doc, slot).decode(),
            "data_key_hex": data_key.hex(),
        })
    tag = "kek-3"
    doc = vf.new_doc(det(f"{tag} vault id", 16).hex(), CREATED)
    slot = recovery_slot("2", tag)
    raw = det(f"{tag} recovery key", 32)
    data_key = det(f"{tag} data key", 32)
    kek = wrap(doc, slot, raw, data_key, tag)
    vectors.append({
        "name": "recovery slot", "type": "recovery", "recovery_key": recovery_text(raw),
        "recovery_key_hex": raw.hex(), "vault_id": doc["vault_id"], "slot_id": slot["id"],
        "hkdf_salt": slot["hkdf_salt"],
        "hkdf_info": vf.kek_info(doc["vault_id"], "recovery", slot["id"]).decode(),
        "ikm_hex": raw.hex(), "kek_hex": kek.hex(),
        "slot": slot, "slot_ad": vf.slot_ad(doc, slot).decode(),
        "data_key_hex": data_key.hex(),
    })
    return {"format": "capit-vault", "version": 1,
            "about": "KEK = HKDF-SHA256(ikm, salt=hkdf_salt, info=hkdf_info); the wrapped key "
                     "is AES-256-GCM(KEK, nonce, data key, associated data = slot_ad)",
            "vectors": vectors}


def finish(doc: dict, data_key: bytes, payload: dict, nonce: bytes) -> bytes:
    doc["payload"] = vf.seal(data_key, vf.canonical_json(payload), vf.header_ad(doc),
                             nonce=nonce)
    doc.pop("checksum", None)
    doc["checksum"] = vf.checksum(doc)
    return vf.file_bytes(doc)


def rechecksum(doc: dict) -> bytes:
    doc = copy.deepcopy(doc)
    doc.pop("checksum", None)
    doc["checksum"] = vf.checksum(doc)
    return vf.file_bytes(doc)


def vault_vectors() -> tuple[dict[str, bytes], dict, dict]:
    tag = "vault-v1"
    data_key = det(f"{tag} data key", 32)
    raw_recovery = det(f"{tag} recovery key", 32)
    doc = vf.new_doc(det(f"{tag} vault id", 16).hex(), CREATED)
    pslot = passphrase_slot("1", "passphrase", f"{tag} slot 1", ARGON2)
    wrap(doc, pslot, passphrase_ikm(pslot, PASSPHRASE), data_key, f"{tag} slot 1")
    doc["slots"].append(pslot)
    rslot = recovery_slot("2", f"{tag} slot 2")
    wrap(doc, rslot, raw_recovery, data_key, f"{tag} slot 2")
    doc["slots"].append(rslot)
    payload = {"masters": {"openrouter": {"secret": FAKE_MASTER, "meta": {},
                                          "added_at": CREATED}}}
    good = finish(doc, data_key, payload, det(f"{tag} payload nonce", vf.NONCE_BYTES))
    files = {"vault-v1.json": good}
    expected = {
        "file": "vault-v1.json", "passphrase": PASSPHRASE,
        "recovery_key": recovery_text(raw_recovery), "recovery_key_hex": raw_recovery.hex(),
        "data_key_hex": data_key.hex(), "payload": payload,
        "header_ad": vf.header_ad(doc).decode(),
        "payload_nonce_hex": det(f"{tag} payload nonce", vf.NONCE_BYTES).hex(),
        "wrap_nonces_hex": {"1": det(f"{tag} slot 1 wrap nonce", 12).hex(),
                            "2": det(f"{tag} slot 2 wrap nonce", 12).hex()},
    }

    def variant(name: str, edit: Any) -> None:
        bad = copy.deepcopy(doc)
        edit(bad)
        files[f"vault-v1-{name}.json"] = rechecksum(bad)

    def swap_wraps(d: dict) -> None:
        a, b = d["slots"]
        a["wrapped_key"], b["wrapped_key"] = b["wrapped_key"], a["wrapped_key"]

    def noncanonical_payload(d: dict) -> None:
        value = d["payload"]["ciphertext"]
        stripped = value.rstrip("=")
        assert stripped != value, "payload ciphertext has no padding; change FAKE_MASTER"
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        twin = stripped[:-1] + alphabet[alphabet.index(stripped[-1]) ^ 1] + value[
            len(stripped):]
        assert base64.b64decode(twin) == base64.b64decode(value)
        d["payload"]["ciphertext"] = twin

    variant("recovery-label-edited", lambda d: d["slots"][1].update(label="evil"))
    variant("argon2-salt-edited",
            lambda d: d["slots"][0]["kdf"].update(salt=vf.b64e(det("evil salt", 16))))
    variant("argon2-memory-4gib", lambda d: d["slots"][0]["kdf"].update(memory_kib=4 << 20))
    variant("argon2-iterations-1e9", lambda d: d["slots"][0]["kdf"].update(iterations=10**9))
    variant("argon2-lanes-0", lambda d: d["slots"][0]["kdf"].update(lanes=0))
    variant("wrapped-keys-swapped", swap_wraps)
    variant("version-2", lambda d: d.update(version=2))
    variant("recovery-slot-removed", lambda d: d["slots"].pop())
    variant("noncanonical-payload-base64", noncanonical_payload)
    files["vault-v1-checksum-wrong.json"] = good.replace(
        doc["checksum"].encode(), (doc["checksum"][:-1] + (
            "0" if doc["checksum"][-1] != "0" else "1")).encode())
    files["vault-v1-reindented.json"] = (json.dumps(doc, indent=4, sort_keys=True)
                                         + "\n").encode()
    files["vault-v1-truncated.json"] = good[: len(good) // 2]

    P, R, W = "passphrase", "recovery", "wrong"
    cases = [
        ("vault-v1.json", P, "open", None),
        ("vault-v1.json", R, "open", None),
        ("vault-v1.json", "recovery-compact-upper", "open", None),
        ("vault-v1.json", W, "unlock", "wrong passphrase or recovery key"),
        ("vault-v1-recovery-label-edited.json", P, "damaged", "integrity check"),
        ("vault-v1-recovery-label-edited.json", R, "unlock", "wrong passphrase"),
        ("vault-v1-argon2-salt-edited.json", P, "unlock", "wrong passphrase"),
        ("vault-v1-argon2-salt-edited.json", R, "damaged", "integrity check"),
        ("vault-v1-argon2-memory-4gib.json", P, "damaged", "memory_kib"),
        ("vault-v1-argon2-iterations-1e9.json", P, "damaged", "iterations"),
        ("vault-v1-argon2-lanes-0.json", P, "damaged", "lanes"),
        ("vault-v1-wrapped-keys-swapped.json", P, "unlock", "wrong passphrase"),
        ("vault-v1-wrapped-keys-swapped.json", R, "unlock", "wrong passphrase"),
        ("vault-v1-version-2.json", P, "damaged", "upgrade capit"),
        ("vault-v1-recovery-slot-removed.json", P, "damaged", "integrity check"),
        ("vault-v1-noncanonical-payload-base64.json", R, "damaged", "canonical"),
        ("vault-v1-checksum-wrong.json", R, "damaged", "checksum"),
        ("vault-v1-reindented.json", R, "damaged", "edited by hand"),
        ("vault-v1-truncated.json", R, "damaged", "not valid JSON"),
    ]
    manifest = {
        "about": "Each case: install FILE as vault.json, offer SECRET (passphrase, recovery, "
                 "recovery-compact-upper = the recovery key without dashes in upper case, "
                 "wrong), and expect: open (payload as in vault-v1.expected.json), unlock "
                 "(exit 6), or damaged (exit 7); the message contains MESSAGE.",
        "cases": [{"file": f, "secret": s, "expect": e, "message": m} for f, s, e, m in cases],
    }
    return files, expected, manifest


def dump(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()


def main() -> None:
    (HERE / "kek.json").write_bytes(dump(kek_vectors()))
    files, expected, manifest = vault_vectors()
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    (HERE / "vault-v1.expected.json").write_bytes(dump(expected))
    (HERE / "manifest.json").write_bytes(dump(manifest))
    print(f"wrote {len(files) + 3} files to {HERE}")


if __name__ == "__main__":
    main()

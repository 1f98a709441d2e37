"""Generate the frozen vectors of the hardware slot types (run once; outputs committed).

    .venv/bin/python tests/vectors/make_hw_vectors.py

Same method as make_vectors.py (every random value is ``det(label, n)``), for the two token
slot types.  The device side is described by what a test can load into an emulated device:

* ``yubikey-hmac-sha1``: the 20-byte HMAC-SHA1 secret programmed into the YubiKey's slot;
  the device output is HMAC-SHA1(secret, challenge) (RFC 2104, the 32-byte challenge
  unpadded: a YubiKey with HMAC_LT64 strips yubikit's padding);
* ``fido2``: the credential's CredRandomWithUV / CredRandomWithoutUV; the device output is
  HMAC-SHA256(CredRandom, salt) (CTAP 2.1 hmac-secret).  The credential id is sealed the
  way tests/emulators/ctap2.py seals it, under a given authenticator master key, so an
  emulated authenticator loaded with that key recognises it.

Outputs, in this directory:

* ``hw-kek.json`` -- per slot type: device secret, challenge/salt, device output (= ikm),
  HKDF info, KEK, slot associated data, wrapped data key;
* ``vault-v1-hardware.json`` -- a vault with a YubiKey slot, a FIDO2 slot (no PIN) and a
  recovery slot, and ``vault-v1-hardware.expected.json`` -- its device secrets, outputs,
  data key and payload.

tests/test_hw_vectors.py reads the committed files and never calls this script.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from make_vectors import (  # noqa: E402
    CREATED,
    FAKE_MASTER,
    det,
    dump,
    finish,
    recovery_slot,
    recovery_text,
    wrap,
)

from capit.stores import vaultfile as vf  # noqa: E402


def yubikey_slot(slot_id: str, tag: str, serial: int) -> tuple[dict, bytes, bytes]:
    """(slot, programmed secret, response = ikm)."""
    secret = det(f"{tag} yubikey secret", 20)
    challenge = det(f"{tag} challenge", 32)
    slot = {"id": slot_id, "type": "yubikey-hmac-sha1", "label": f"yubikey {serial}",
            "created_at": CREATED, "hkdf_salt": vf.b64e(det(f"{tag} hkdf salt", 32)),
            "serial": serial, "slot": 2, "challenge": vf.b64e(challenge), "touch": True}
    return slot, secret, hmac.new(secret, challenge, hashlib.sha1).digest()


def fido2_credential(tag: str, rp_id: str) -> tuple[bytes, bytes, bytes, bytes]:
    """(authenticator master key, credential id, CredRandomWithUV, CredRandomWithoutUV),
    sealed as tests/emulators/ctap2.py does: nonce || AES-GCM(master, d || rUV || rNoUV,
    aad = SHA-256(rp id))."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    master = det(f"{tag} authenticator master", 32)
    d = int.from_bytes(det(f"{tag} credential private key", 32), "big") % (
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551 - 1) + 1
    rand_uv, rand_no_uv = det(f"{tag} cred random uv", 32), det(f"{tag} cred random", 32)
    nonce = det(f"{tag} credential nonce", 12)
    sealed = AESGCM(master).encrypt(nonce, d.to_bytes(32, "big") + rand_uv + rand_no_uv,
                                    hashlib.sha256(rp_id.encode()).digest())
    return master, nonce + sealed, rand_uv, rand_no_uv


def fido2_slot(slot_id: str, tag: str, uv: bool) -> tuple[dict, dict, bytes]:
    """(slot, device description, hmac-secret output = ikm)."""
    master, cred_id, rand_uv, rand_no_uv = fido2_credential(tag, "capit")
    salt = det(f"{tag} salt", 32)
    slot = {"id": slot_id, "type": "fido2", "label": "security key", "created_at": CREATED,
            "hkdf_salt": vf.b64e(det(f"{tag} hkdf salt", 32)), "rp_id": "capit",
            "credential_id": vf.b64e(cred_id), "salt": vf.b64e(salt), "uv": uv}
    output = hmac.new(rand_uv if uv else rand_no_uv, salt, hashlib.sha256).digest()
    device = {"authenticator_master_hex": master.hex(), "cred_random_uv_hex": rand_uv.hex(),
              "cred_random_hex": rand_no_uv.hex()}
    return slot, device, output


def kek_vectors() -> dict:
    vectors = []
    for name, tag, kind, extra in [
        ("yubikey-hmac-sha1 slot, OTP slot 2, touch", "hw-kek-1", "yubikey", None),
        ("fido2 slot, no PIN (CredRandomWithoutUV)", "hw-kek-2", "fido2", False),
        ("fido2 slot, PIN (CredRandomWithUV)", "hw-kek-3", "fido2", True),
    ]:
        doc = vf.new_doc(det(f"{tag} vault id", 16).hex(), CREATED)
        if kind == "yubikey":
            slot, secret, ikm = yubikey_slot("1", tag, 5550123)
            device = {"hmac_sha1_secret_hex": secret.hex(),
                      "challenge_hex": det(f"{tag} challenge", 32).hex()}
        else:
            slot, device, ikm = fido2_slot("1", tag, extra)
            device["salt_hex"] = det(f"{tag} salt", 32).hex()
        data_key = det(f"{tag} data key", 32)
        kek = wrap(doc, slot, ikm, data_key, tag)
        vectors.append({
            "name": name, "type": slot["type"], "device": device,
            "vault_id": doc["vault_id"], "slot_id": slot["id"], "hkdf_salt": slot["hkdf_salt"],
            "hkdf_info": vf.kek_info(doc["vault_id"], slot["type"], slot["id"]).decode(),
            "ikm_hex": ikm.hex(), "kek_hex": kek.hex(), "slot": slot,
            "slot_ad": vf.slot_ad(doc, slot).decode(), "data_key_hex": data_key.hex(),
        })
    return {"about": "ikm = the device output (YubiKey: HMAC-SHA1(secret, challenge); FIDO2: "
                     "HMAC-SHA256(CredRandom, salt)); KEK = HKDF-SHA256(ikm, salt=hkdf_salt, "
                     "info=hkdf_info); the wrapped key is AES-256-GCM(KEK, nonce, data key, "
                     "associated data = slot_ad)",
            "format": "capit-vault", "version": 1, "vectors": vectors}


def vault_vectors() -> tuple[bytes, dict]:
    tag = "vault-v1-hardware"
    data_key = det(f"{tag} data key", 32)
    doc = vf.new_doc(det(f"{tag} vault id", 16).hex(), CREATED)
    yslot, secret, yikm = yubikey_slot("1", f"{tag} slot 1", 5550123)
    wrap(doc, yslot, yikm, data_key, f"{tag} slot 1")
    doc["slots"].append(yslot)
    fslot, device, fikm = fido2_slot("2", f"{tag} slot 2", False)
    wrap(doc, fslot, fikm, data_key, f"{tag} slot 2")
    doc["slots"].append(fslot)
    raw_recovery = det(f"{tag} recovery key", 32)
    rslot = recovery_slot("3", f"{tag} slot 3")
    wrap(doc, rslot, raw_recovery, data_key, f"{tag} slot 3")
    doc["slots"].append(rslot)
    payload = {"masters": {"openrouter": {"secret": FAKE_MASTER, "meta": {},
                                          "added_at": CREATED}}}
    good = finish(doc, data_key, payload, det(f"{tag} payload nonce", vf.NONCE_BYTES))
    expected = {
        "file": "vault-v1-hardware.json", "data_key_hex": data_key.hex(), "payload": payload,
        "yubikey": {"serial": 5550123, "slot": 2, "hmac_sha1_secret_hex": secret.hex(),
                    "response_hex": yikm.hex()},
        "fido2": {**device, "output_hex": fikm.hex()},
        "recovery_key": recovery_text(raw_recovery),
        "header_ad": vf.header_ad(doc).decode(),
    }
    return good, expected


def main() -> None:
    (HERE / "hw-kek.json").write_bytes(dump(kek_vectors()))
    good, expected = vault_vectors()
    (HERE / "vault-v1-hardware.json").write_bytes(good)
    (HERE / "vault-v1-hardware.expected.json").write_bytes(dump(expected))
    print(f"wrote 3 files to {HERE}")


if __name__ == "__main__":
    main()

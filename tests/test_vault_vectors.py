"""Frozen vault test vectors (tests/vectors/, made once by tests/vectors/make_vectors.py).

The committed files are the specification's examples: a capit that derives a different
KEK, builds different associated data, or cannot open vault-v1.json has broken format v1
for every vault already written.  Nothing here regenerates them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error, tree_snapshot

from capit.errors import ExitCode
from capit.secret import Secret
from capit.stores import vaultfile as vf
from capit.stores.slots import PassphraseSlot, RecoverySlot, argon2id

VECTORS = Path(__file__).parent / "vectors"


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


KEK = load("kek.json")
EXPECTED = load("vault-v1.expected.json")
MANIFEST = load("manifest.json")


def secret_for(kind: str) -> str:
    return {
        "passphrase": EXPECTED["passphrase"],
        "recovery": EXPECTED["recovery_key"],
        "recovery-compact-upper": EXPECTED["recovery_key"].replace("-", "").upper(),
        "wrong": "not the passphrase of this vault",
    }[kind]


def install(capit_home: Path, name: str) -> Path:
    capit_home.mkdir(mode=0o700, exist_ok=True)
    path = capit_home / "vault.json"
    shutil.copyfile(VECTORS / name, path)
    path.chmod(0o600)
    return path


# ------------------------------------------------------------------------- (a), (b) KEKs


def test_vector_files_are_present():
    names = {p.name for p in VECTORS.iterdir()}
    assert {"kek.json", "vault-v1.json", "vault-v1.expected.json", "manifest.json",
            "make_vectors.py"} <= names
    assert {c["file"] for c in MANIFEST["cases"]} <= names
    assert [v["type"] for v in KEK["vectors"]] == ["passphrase", "passphrase", "recovery"]


@pytest.mark.parametrize("vector", KEK["vectors"], ids=lambda v: v["name"])
def test_kek_vector(vector):
    slot = vector["slot"]
    vault_id, slot_id = vector["vault_id"], vector["slot_id"]
    assert vf.kek_info(vault_id, vector["type"], slot_id).decode() == vector["hkdf_info"]

    # the ikm, through the slot type exactly as an unlock computes it
    if vector["type"] == "passphrase":
        assert vector["passphrase"].encode("utf-8").hex() == vector["passphrase_utf8_hex"]
        kdf = vector["argon2"]
        assert slot["kdf"] == kdf
        PassphraseSlot().validate(slot)
        ikm = PassphraseSlot().ikm_from_secret(slot, Secret(vector["passphrase"]))
        assert ikm == argon2id(vector["passphrase"].encode(), base64.b64decode(kdf["salt"]),
                               kdf["memory_kib"], kdf["iterations"], kdf["lanes"])
    else:
        ikm = RecoverySlot().ikm_from_secret(slot, Secret(vector["recovery_key"]))
        assert ikm is not None and ikm.hex() == vector["recovery_key_hex"]
    assert ikm.hex() == vector["ikm_hex"]

    kek = vf.derive_kek(ikm, base64.b64decode(vector["hkdf_salt"]), vault_id,
                        vector["type"], slot_id)
    assert kek.hex() == vector["kek_hex"]
    # RFC 5869 from the standard library, independently of `cryptography`
    salt = base64.b64decode(vector["hkdf_salt"])
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm = hmac.new(prk, vector["hkdf_info"].encode() + b"\x01", hashlib.sha256).digest()
    assert okm.hex() == vector["kek_hex"]

    # the slot's associated data and its wrapped data key
    doc = vf.new_doc(vault_id, "2025-01-01T00:00:00Z")
    assert vf.slot_ad(doc, slot).decode() == vector["slot_ad"]
    data_key = bytes.fromhex(vector["data_key_hex"])
    assert vf.unwrap_slot(doc, slot, ikm) == data_key
    nonce = base64.b64decode(slot["wrapped_key"]["nonce"])
    assert vf.seal(kek, data_key, vf.slot_ad(doc, slot), nonce=nonce) == slot["wrapped_key"]
    # and one wrong bit of ikm gives nothing
    assert vf.unwrap_slot(doc, slot, bytes([ikm[0] ^ 1]) + ikm[1:]) is None


def test_recovery_key_encoding_vector():
    raw = bytes.fromhex(EXPECTED["recovery_key_hex"])
    text = EXPECTED["recovery_key"]
    groups = text.split("-")
    assert len(groups) == 13 and all(len(g) == 4 for g in groups)
    assert text == text.lower()
    assert base64.b32encode(raw).decode().rstrip("=").lower() == text.replace("-", "")
    for form in (text, text.upper(), text.replace("-", ""), text.replace("-", " "),
                 f"  {text}\n"):
        assert RecoverySlot.parse(form) == raw
    for bad in (text[:-1], text + "a", text.replace(text[0], "1", 1), "", text[:-4] + "0000"):
        assert RecoverySlot.parse(bad) is None, bad


# ------------------------------------------------------------------------- (c) the vault


def test_vault_vector_is_canonical_and_its_ciphertexts_are_reproducible():
    raw = (VECTORS / "vault-v1.json").read_bytes()
    vdoc = vf.parse(raw, "vault-v1.json")
    doc = vdoc.doc
    assert vf.file_bytes(doc) == raw
    assert doc["checksum"] == vf.checksum(doc)
    assert vf.header_ad(doc).decode() == EXPECTED["header_ad"]
    data_key = bytes.fromhex(EXPECTED["data_key_hex"])
    assert vf.decrypt_payload(vdoc, data_key) == EXPECTED["payload"]
    nonce = bytes.fromhex(EXPECTED["payload_nonce_hex"])
    assert vf.seal(data_key, vf.canonical_json(EXPECTED["payload"]), vf.header_ad(doc),
                   nonce=nonce) == doc["payload"]
    # the recovery slot needs no KDF: its wrap is checked here in full
    rslot = vdoc.slot("2")
    assert vf.unwrap_slot(doc, rslot, bytes.fromhex(EXPECTED["recovery_key_hex"])) == data_key
    kek = vf.derive_kek(bytes.fromhex(EXPECTED["recovery_key_hex"]),
                        base64.b64decode(rslot["hkdf_salt"]), doc["vault_id"], "recovery", "2")
    assert vf.seal(kek, data_key, vf.slot_ad(doc, rslot),
                   nonce=bytes.fromhex(EXPECTED["wrap_nonces_hex"]["2"])) == rslot["wrapped_key"]


OPEN_CASES = [c for c in MANIFEST["cases"] if c["expect"] == "open"]
FAIL_CASES = [c for c in MANIFEST["cases"] if c["expect"] != "open"]


def case_id(case: dict) -> str:
    return f"{case['file'].removesuffix('.json')}+{case['secret']}"


@pytest.mark.parametrize("case", OPEN_CASES, ids=case_id)
def test_vault_vector_opens(capit_home, tmp_path, monkeypatch, case):
    from capit.stores.vault import VaultStore

    install(capit_home, case["file"])
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret_for(case["secret"]) + "\n")
    monkeypatch.setenv("CAPIT_PASSPHRASE_FILE", str(secret_file))
    before = tree_snapshot(capit_home)
    opened = VaultStore(capit_home).open()
    assert opened.payload == EXPECTED["payload"]
    assert opened.unlocked_with == ("1" if case["secret"] == "passphrase" else "2")
    master = opened.get("openrouter")
    assert master.secret.reveal() == EXPECTED["payload"]["masters"]["openrouter"]["secret"]
    assert tree_snapshot(capit_home) == before  # opening writes nothing


@pytest.mark.parametrize("case", FAIL_CASES, ids=case_id)
def test_vault_vector_is_refused(run, capit_home, case):
    path = install(capit_home, case["file"])
    before = tree_snapshot(capit_home)
    result = run("vault", "enroll", "recovery", input=secret_for(case["secret"]) + "\n")
    code = {"unlock": ExitCode.UNLOCK, "damaged": ExitCode.VAULT}[case["expect"]]
    assert_one_line_error(result, code)
    assert case["message"] in result.stderr, result
    assert tree_snapshot(capit_home) == before
    assert path.read_bytes() == (VECTORS / case["file"]).read_bytes()


def test_vault_vector_mints_through_the_cli(run, capit_home, monkeypatch):
    """The frozen vault works end to end: its fake master key is the sandbox's key."""
    from capit.sandbox.server import Sandbox

    install(capit_home, "vault-v1.json")
    (capit_home / "master-lookup").write_text(
        json.dumps({"openrouter": {"store": "vault", "added_at": "2025-01-01T00:00:00Z"}}))
    (capit_home / "master-lookup").chmod(0o600)
    master = EXPECTED["payload"]["masters"]["openrouter"]["secret"]
    sb = Sandbox(management_key=master).start()
    try:
        monkeypatch.setenv("CAPIT_OPENROUTER_BASE_URL", sb.base_url)
        result = run("openrouter", "2.50", input=EXPECTED["recovery_key"] + "\n")
        assert result.code == 0, result
        assert result.stdout.strip().startswith("sk-or-v1-")
        assert [(r.method, r.path) for r in sb.requests] == [("POST", "/api/v1/keys")]
        assert sb.requests[0].json["limit"] == 2.5
    finally:
        sb.stop()
    assert (capit_home / "vault.json").read_bytes() == (VECTORS / "vault-v1.json").read_bytes()

"""Frozen vectors of the hardware slot types (tests/vectors/make_hw_vectors.py, run once).

A given device output and slot metadata must give the given KEK and open the given file --
through capit's derivation, through the standard library independently, and through the
CLI with emulated devices loaded with the vector's device secrets.
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
from capit.stores import vaultfile as vf
from capit.stores.slots import slot_type

VECTORS = Path(__file__).parent / "vectors"
KEK = json.loads((VECTORS / "hw-kek.json").read_text())
EXPECTED = json.loads((VECTORS / "vault-v1-hardware.expected.json").read_text())


@pytest.mark.parametrize("vector", KEK["vectors"], ids=lambda v: v["name"])
def test_hardware_kek_vector(vector):
    slot, device = vector["slot"], vector["device"]
    slot_type(vector["type"]).validate(slot)
    if vector["type"] == "yubikey-hmac-sha1":
        challenge = base64.b64decode(slot["challenge"])
        assert challenge.hex() == device["challenge_hex"] and len(challenge) == 32
        output = hmac.new(bytes.fromhex(device["hmac_sha1_secret_hex"]), challenge,
                          hashlib.sha1).digest()
    else:
        salt = base64.b64decode(slot["salt"])
        assert salt.hex() == device["salt_hex"]
        cred_random = device["cred_random_uv_hex" if slot["uv"] else "cred_random_hex"]
        output = hmac.new(bytes.fromhex(cred_random), salt, hashlib.sha256).digest()
    assert output.hex() == vector["ikm_hex"]
    vault_id, slot_id = vector["vault_id"], vector["slot_id"]
    assert vf.kek_info(vault_id, vector["type"], slot_id).decode() == vector["hkdf_info"]
    kek = vf.derive_kek(output, base64.b64decode(vector["hkdf_salt"]), vault_id,
                        vector["type"], slot_id)
    assert kek.hex() == vector["kek_hex"]
    prk = hmac.new(base64.b64decode(vector["hkdf_salt"]), output, hashlib.sha256).digest()
    assert hmac.new(prk, vector["hkdf_info"].encode() + b"\x01",
                    hashlib.sha256).hexdigest() == vector["kek_hex"]
    doc = vf.new_doc(vault_id, "2025-01-01T00:00:00Z")
    assert vf.slot_ad(doc, slot).decode() == vector["slot_ad"]
    assert vf.unwrap_slot(doc, slot, output).hex() == vector["data_key_hex"]
    # any edit of the metadata (it is the wrap's associated data) or of the output fails
    assert vf.unwrap_slot(doc, slot, bytes([output[0] ^ 1]) + output[1:]) is None
    flipped = dict(slot, touch=not slot["touch"]) if "touch" in slot else dict(
        slot, uv=not slot["uv"])
    assert vf.unwrap_slot(doc, flipped, output) is None


def test_the_uv_and_no_uv_vectors_differ():
    fido = [v for v in KEK["vectors"] if v["type"] == "fido2"]
    assert [v["slot"]["uv"] for v in fido] == [False, True]
    assert fido[0]["ikm_hex"] != fido[1]["ikm_hex"]


def install(capit_home):
    capit_home.mkdir(mode=0o700, exist_ok=True)
    path = capit_home / "vault.json"
    shutil.copyfile(VECTORS / "vault-v1-hardware.json", path)
    path.chmod(0o600)
    (capit_home / "master-lookup").write_text(
        json.dumps({"openrouter": {"store": "vault", "added_at": "2025-01-01T00:00:00Z"}}))
    return path


def test_hardware_vault_vector_is_canonical():
    raw = (VECTORS / "vault-v1-hardware.json").read_bytes()
    vdoc = vf.parse(raw, "vault-v1-hardware.json")
    assert vf.header_ad(vdoc.doc).decode() == EXPECTED["header_ad"]
    assert [s["type"] for s in vdoc.slots] == ["yubikey-hmac-sha1", "fido2", "recovery"]
    data_key = bytes.fromhex(EXPECTED["data_key_hex"])
    for slot, output in ((vdoc.slot("1"), EXPECTED["yubikey"]["response_hex"]),
                         (vdoc.slot("2"), EXPECTED["fido2"]["output_hex"])):
        assert vf.unwrap_slot(vdoc.doc, slot, bytes.fromhex(output)) == data_key
    assert vf.decrypt_payload(vdoc, data_key) == EXPECTED["payload"]


@pytest.mark.parametrize("device", ["yubikey", "fido2", "recovery"])
def test_hardware_vault_vector_opens_through_the_cli(run, bench, capit_home, monkeypatch,
                                                     device):
    """The frozen vault opens with an emulated device loaded with the vector's secret:
    the YubiKey's programmed HMAC-SHA1 secret, or the authenticator's master key."""
    from capit.sandbox.server import Sandbox

    path = install(capit_home)
    stdin = None
    if device == "yubikey":
        key = EXPECTED["yubikey"]
        token = bench.yubikey(key["serial"], slot=key["slot"],
                              key=bytes.fromhex(key["hmac_sha1_secret_hex"]))
    elif device == "fido2":
        token = bench.fido2()
        token.master = bytes.fromhex(EXPECTED["fido2"]["authenticator_master_hex"])
    else:
        token, stdin = None, EXPECTED["recovery_key"] + "\n"
    master = EXPECTED["payload"]["masters"]["openrouter"]["secret"]
    sb = Sandbox(management_key=master).start()
    try:
        monkeypatch.setenv("CAPIT_OPENROUTER_BASE_URL", sb.base_url)
        result = run("openrouter", "3.00", input=stdin)
        assert result.code == 0, result
        assert result.stdout.strip().startswith("sk-or-v1-")
    finally:
        sb.stop()
    if token is not None:
        assert token.touches == 1
    assert path.read_bytes() == (VECTORS / "vault-v1-hardware.json").read_bytes()


def test_hardware_vault_vector_with_the_wrong_devices(run, bench, capit_home):
    path = install(capit_home)
    bench.yubikey(EXPECTED["yubikey"]["serial"], key=b"not the vector's secret")
    before = tree_snapshot(capit_home)
    result = run("openrouter", "3.00")
    assert_one_line_error(result, ExitCode.UNLOCK)
    assert "does not open slot 1" in result.stderr
    assert tree_snapshot(capit_home) == before
    assert path.read_bytes() == (VECTORS / "vault-v1-hardware.json").read_bytes()

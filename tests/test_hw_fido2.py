"""FIDO2 hmac-secret slots through the CLI, with an emulated CTAP2 authenticator underneath
python-fido2's real CtapHidDevice (CTAPHID framing), Ctap2, ClientPin and HmacSecretExtension.

The emulator (tests/emulators/ctap2.py) keeps separate hmac-secret secrets with and without
user verification, implements PIN protocols 1 and 2, and counts the touches it was asked for.
"""

from __future__ import annotations

import base64
import json
import sys

import pytest
from conftest import assert_one_line_error, tree_snapshot
from test_hw_yubikey import check_unchanged, edit_slot, slots

from capit.errors import ExitCode
from capit.stores import vaultfile as vf

PIN = "4821"


@pytest.fixture
def pin_file(tmp_path, monkeypatch):
    path = tmp_path / "pin"
    path.write_text(PIN + "\n")
    monkeypatch.setenv("CAPIT_PIN_FILE", str(path))
    return path


@pytest.fixture
def minted(run, bench, sandbox, capit_home):
    """A vault opened by a FIDO2 key without PIN, holding the sandbox's management key."""
    auth = bench.fido2()
    result = run("vault", "init", "--fido2")
    assert result.code == 0, result
    recovery = result.stdout.strip()
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    sandbox.requests.clear()
    return auth, recovery


def slot_secret(auth, slot: dict) -> bytes:
    return auth.expected_secret(slot["rp_id"], base64.b64decode(slot["credential_id"]),
                                base64.b64decode(slot["salt"]), slot["uv"])


def test_enroll_touches_twice_then_one_touch_per_command(run, bench, sandbox, capit_home):
    auth = bench.fido2()
    result = run("vault", "init", "--fido2")
    assert result.code == 0, result
    assert auth.touches == 2  # makeCredential, then the first derivation
    assert "(1 of 2" in result.stderr
    [slot, _] = slots(capit_home)
    assert (slot["type"], slot["rp_id"], slot["uv"]) == ("fido2", "capit", False)
    assert len(base64.b64decode(slot["salt"])) == 32
    # the ikm is HMAC-SHA256(CredRandomWithoutUV, salt), computed outside the protocol
    doc = json.loads((capit_home / "vault.json").read_text())
    assert vf.unwrap_slot(doc, slot, slot_secret(auth, slot)) is not None

    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    assert auth.touches == 3
    result = run("openrouter", "2.50")
    assert result.code == 0, result
    assert result.stdout.strip().startswith("sk-or-v1-")
    assert auth.touches == 4
    assert result.stderr.count("Touch your security key") == 1
    # the silent pre-flight (getAssertion up=false) touched nothing
    assert auth.commands.count(0x02) >= 2


@pytest.mark.parametrize("protocols", [(2, 1), (1,)], ids=["pin-protocol-2", "pin-protocol-1"])
def test_pin_slot_round_trip(run, bench, sandbox, capit_home, pin_file, protocols):
    auth = bench.fido2(pin=PIN, protocols=protocols)
    result = run("vault", "init", "--fido2")  # the key has a PIN: it is used by default
    assert result.code == 0, result
    slot = slots(capit_home)[0]
    assert slot["uv"] is True
    doc = json.loads((capit_home / "vault.json").read_text())
    assert vf.unwrap_slot(doc, slot, slot_secret(auth, slot)) is not None
    # the UV secret and the non-UV secret differ: the flag must be replayed exactly
    assert slot_secret(auth, slot) != slot_secret(auth, dict(slot, uv=False))
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    result = run("openrouter", "1.00")
    assert result.code == 0, result
    assert auth.touches == 4


def test_pin_from_stdin_after_nothing_else(run, bench, sandbox, capit_home, pin_file,
                                           monkeypatch):
    bench.fido2(pin=PIN)
    assert run("vault", "init", "--fido2").code == 0
    monkeypatch.delenv("CAPIT_PIN_FILE")
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n{PIN}\n")
    assert result.code == 0, result
    assert PIN not in result.output


def test_no_pin_on_a_key_that_has_one(run, bench, sandbox, capit_home, pin_file, monkeypatch):
    auth = bench.fido2(pin=PIN)
    result = run("vault", "init", "--fido2", "--no-pin")
    assert result.code == 0, result
    assert slots(capit_home)[0]["uv"] is False
    monkeypatch.delenv("CAPIT_PIN_FILE")  # not asked for any more
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    assert auth.touches == 3


def test_pin_asked_for_on_a_key_without_one(run, bench, capit_home):
    bench.fido2()
    result = run("vault", "init", "--fido2", "--pin")
    assert_one_line_error(result, ExitCode.USAGE)
    assert "no PIN" in result.stderr and not (capit_home / "vault.json").exists()


def test_wrong_pin_says_how_many_tries_remain(run, bench, sandbox, capit_home, pin_file):
    auth = bench.fido2(pin=PIN)
    assert run("vault", "init", "--fido2").code == 0
    pin_file.write_text("0000\n")
    before = tree_snapshot(capit_home)
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before, "wrong PIN", "7 tries left")
    assert auth.retries == 7


def test_blocked_pin_says_so(run, bench, sandbox, capit_home, pin_file):
    auth = bench.fido2(pin=PIN)
    assert run("vault", "init", "--fido2").code == 0
    auth.retries = 1
    pin_file.write_text("0000\n")
    before = tree_snapshot(capit_home)
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before, "PIN is blocked")
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before, "PIN is blocked")


def test_wrong_pin_at_enrollment_changes_nothing(run, bench, capit_home, tmp_path, monkeypatch):
    bench.fido2(pin=PIN)
    bad = tmp_path / "bad"
    bad.write_text("1111\n")
    monkeypatch.setenv("CAPIT_PIN_FILE", str(bad))
    result = run("vault", "init", "--fido2")
    assert_one_line_error(result, ExitCode.UNLOCK)
    assert "wrong PIN" in result.stderr and not (capit_home / "vault.json").exists()


def test_backup_security_key_and_yubikey_each_open_the_vault(run, bench, minted, sandbox,
                                                            capit_home):
    main, recovery = minted
    backup = bench.fido2()
    result = run("vault", "enroll", "fido2", "--label", "backup")  # main opens, backup enrolls
    assert result.code == 0, result
    assert (main.touches, backup.touches) == (4, 2)
    yubikey = bench.yubikey(444)
    result = run("vault", "enroll", "yubikey")
    assert result.code == 0, result
    assert [s["type"] for s in slots(capit_home)] == ["fido2", "recovery", "fido2",
                                                      "yubikey-hmac-sha1"]
    listing = json.loads(run("vault", "slots", "--json").stdout)["data"]["slots"]
    assert [s["present"] for s in listing] == [True, None, True, True]

    for plugged in (backup, yubikey):
        for device in (main, backup, yubikey):
            device.plugged = device is plugged
        counts = (backup.touches, yubikey.touches)
        result = run("openrouter", "1.00")
        assert result.code == 0, result
        assert (backup.touches, yubikey.touches) == (
            counts[0] + (plugged is backup), counts[1] + (plugged is yubikey))
    for device in (main, backup, yubikey):
        device.plugged = False
    result = run("openrouter", "1.00", input=f"{recovery}\n")
    assert result.code == 0, result
    stores = json.loads(run("stores", "--json").stdout)["data"][0]["slots"]
    assert [s["present"] for s in stores] == [False, None, False, False]


def test_over_nfc_the_same_slot_works(run, bench, sandbox, capit_home):
    """A FIDO2 key on an NFC reader: fido2.pcsc.CtapPcscDevice with NFCCTAP_GETRESPONSE
    keepalives while the (emulated) touch is awaited."""
    from emulators.ctap2 import SoftAuthenticator

    auth = SoftAuthenticator()
    auth.touch_after_polls = 2
    bench.nfc(fido=auth)
    result = run("vault", "init", "--fido2")
    assert result.code == 0, result
    assert "Touch your security key" in result.stderr
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    assert auth.touches == 3


def test_a_security_key_that_is_not_enrolled(run, bench, minted, capit_home):
    main, _ = minted
    main.plugged = False
    stranger = bench.fido2()
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before, "not enrolled",
                    "security key 'security key' (slot 1)")
    assert stranger.touches == 0


def test_credential_gone_after_a_reset(run, minted, capit_home):
    main, _ = minted
    main.master = bytes(32)  # a FIDO reset: every credential made before is gone
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before, "not enrolled")


def test_touch_timeout_cancels_on_the_device(run, minted, capit_home, monkeypatch):
    main, _ = minted
    main.touch_after_polls = None
    monkeypatch.setenv("CAPIT_TOUCH_TIMEOUT", "0.2")
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    check_unchanged(result, ExitCode.CANCELLED, capit_home, before,
                    "was not touched within 0.2 s")


def test_the_key_gives_up_waiting(run, minted, capit_home):
    main, _ = minted
    main.touch_after_polls, main.give_up_after_polls = None, 3
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    check_unchanged(result, ExitCode.CANCELLED, capit_home, before, "not touched")


def test_ctrl_c_while_waiting(run, bench, minted, capit_home):
    main, _ = minted
    main.touch_after_polls, main.interrupt_after_polls = None, 2
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    assert result.code == ExitCode.INTERRUPTED, result
    assert "Traceback" not in result.output
    assert tree_snapshot(capit_home) == before
    conn = bench.hid_connections[-1]
    assert conn.cancelled  # python-fido2 sent CTAPHID_CANCEL on the way out


def test_unplugged_while_waiting(run, minted, capit_home):
    main, _ = minted
    main.touch_after_polls, main.unplug_after_polls = None, 2
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before, "stopped answering")


@pytest.mark.parametrize(("field", "value", "code", "phrase"), [
    ("uv", True, ExitCode.UNLOCK, "has no PIN set, but this slot was enrolled with one"),
    ("salt", base64.b64encode(bytes(32)).decode(), ExitCode.UNLOCK, "does not open slot 1"),
    ("rp_id", "evil.example", ExitCode.UNLOCK, "not enrolled"),
    ("salt", base64.b64encode(bytes(31)).decode(), ExitCode.VAULT, "salt"),
    ("uv", 1, ExitCode.VAULT, "uv flag"),
])
def test_edited_slot_metadata_never_opens(run, minted, capit_home, pin_file, field, value,
                                          code, phrase):
    edit_slot(capit_home, "1", **{field: value})
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    check_unchanged(result, code, capit_home, before, phrase)


def test_uv_flag_cleared_in_the_file_never_opens(run, bench, sandbox, capit_home, pin_file):
    """A slot enrolled with the PIN: clearing `uv` makes capit skip the PIN, the key answers
    from its non-UV secret, and the wrapped key does not open."""
    bench.fido2(pin=PIN)
    assert run("vault", "init", "--fido2").code == 0
    edit_slot(capit_home, "1", uv=False)
    before = tree_snapshot(capit_home)
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before, "does not open slot 1")


def test_uv_flag_set_in_the_file_never_opens(run, bench, sandbox, capit_home, pin_file):
    """Enrolled without the PIN on a key that has one: setting `uv` makes capit use the PIN,
    the key answers from its UV secret, and the wrapped key does not open."""
    bench.fido2(pin=PIN)
    assert run("vault", "init", "--fido2", "--no-pin").code == 0
    edit_slot(capit_home, "1", uv=True)
    before = tree_snapshot(capit_home)
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before, "does not open slot 1")


def test_fido2_not_installed(run, minted, capit_home, monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "fido2"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fido2", None)
    before = tree_snapshot(capit_home)
    result = run("vault", "enroll", "fido2")
    check_unchanged(result, ExitCode.USAGE, capit_home, before, "pip install 'capit[fido2]'")

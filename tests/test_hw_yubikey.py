"""YubiKey HMAC-SHA1 slots through the CLI, with an emulated YubiKey under the real yubikit.

The emulator (tests/emulators/yubikey.py) answers the OTP HID feature-report protocol
underneath yubikit's own OtpProtocol/YubiOtpSession, found through ykman's discovery entry
point; it counts the touches it was asked for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys

import pytest
from conftest import assert_one_line_error, tree_snapshot

from capit.errors import ExitCode
from capit.stores import vaultfile as vf

SECRET = bytes.fromhex("303132333435363738393a3b3c3d3e3f40414243")


def init_yubikey(run, *args: str) -> str:
    """`capit vault init --yubikey`; returns the recovery key."""
    result = run("vault", "init", "--yubikey", *args)
    assert result.code == 0, result
    return result.stdout.strip()


def slots(capit_home) -> list[dict]:
    return json.loads((capit_home / "vault.json").read_text())["slots"]


def edit_slot(capit_home, slot_id: str, **changes) -> bytes:
    """Edit a slot's fields and write the file back canonical, with a fresh checksum."""
    path = capit_home / "vault.json"
    doc = json.loads(path.read_text())
    for slot in doc["slots"]:
        if slot["id"] == slot_id:
            slot.update(changes)
    doc.pop("checksum")
    doc["checksum"] = vf.checksum(doc)
    path.write_bytes(vf.file_bytes(doc))
    return path.read_bytes()


@pytest.fixture
def minted(run, bench, sandbox, capit_home):
    """A vault opened by YubiKey 111 (touch slot 2) holding the sandbox's management key."""
    key = bench.yubikey(111, key=SECRET, touch=True)
    recovery = init_yubikey(run)
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    sandbox.requests.clear()
    return key, recovery


# ------------------------------------------------------------------------- round trips


def test_enroll_and_mint_with_exactly_one_touch_each(run, bench, sandbox, capit_home):
    key = bench.yubikey(111, key=SECRET, touch=True)
    result = run("vault", "init", "--yubikey")
    assert result.code == 0, result
    assert "Touch your YubiKey" in result.stderr
    assert key.touches == 1
    [slot, recovery] = slots(capit_home)
    assert (slot["type"], slot["serial"], slot["slot"], slot["touch"]) == \
        ("yubikey-hmac-sha1", 111, 2, True)
    assert recovery["type"] == "recovery"
    challenge = base64.b64decode(slot["challenge"])
    assert len(challenge) == 32
    # the slot's ikm is HMAC-SHA1(secret, challenge), computed here independently
    ikm = hmac.new(SECRET, challenge, hashlib.sha1).digest()
    doc = json.loads((capit_home / "vault.json").read_text())
    assert vf.unwrap_slot(doc, slot, ikm) is not None

    # a write (adding a master key) opens the vault once and needs no second touch
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    assert key.touches == 2
    assert result.stderr.count("Touch your YubiKey") == 1

    # issuing a key: one touch, no more
    result = run("openrouter", "2.50")
    assert result.code == 0, result
    assert result.stdout.strip().startswith("sk-or-v1-")
    assert key.touches == 3
    assert [(r.method, r.path) for r in sandbox.requests if r.method == "POST"] == \
        [("POST", "/api/v1/keys")]


def test_no_touch_prompt_when_the_slot_does_not_wait(run, bench, sandbox, capit_home):
    key = bench.yubikey(111, key=SECRET, touch=False)
    result = run("vault", "init", "--yubikey", "--slot", "2")
    assert result.code == 0, result
    assert "Touch" not in result.stderr
    assert slots(capit_home)[0]["touch"] is False
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    assert result.code == 0 and "Touch" not in result.stderr, result
    assert key.touches == 0


def test_program_asks_first_and_overwrites_the_slot(run, bench, capit_home):
    key = bench.yubikey(111, slot=None)
    result = run("vault", "init", "--yubikey", "--slot", "1", "--program", "--touch",
                 input="n\n")
    assert_one_line_error(result, ExitCode.CANCELLED)
    assert "overwrites" in result.stderr
    assert key.slots[1] is None and not (capit_home / "vault.json").exists()

    result = run("vault", "init", "--yubikey", "--slot", "1", "--program", "--touch", "-y")
    assert result.code == 0, result
    assert key.slots[1] is not None and key.slots[1].touch and key.slots[1].lt64
    assert key.touches == 1
    slot = slots(capit_home)[0]
    assert (slot["slot"], slot["touch"]) == (1, True)
    # the secret capit wrote is on the key only: the response it gives opens the slot
    challenge = base64.b64decode(slot["challenge"])
    doc = json.loads((capit_home / "vault.json").read_text())
    assert vf.unwrap_slot(doc, slot, key.expected(1, challenge)) is not None


def test_recovery_key_opens_without_any_token(run, minted, sandbox, capit_home):
    key, recovery = minted
    key.plugged = False
    result = run("openrouter", "1.00", input=f"{recovery}\n")
    assert result.code == 0, result
    assert result.stdout.strip().startswith("sk-or-v1-")


def test_a_backup_yubikey_opens_the_vault_alone(run, bench, minted, sandbox, capit_home):
    main, recovery = minted
    backup = bench.yubikey(222, key=bytes(20), touch=True)
    result = run("vault", "enroll", "yubikey", "--serial", "222", "--label", "backup")
    assert result.code == 0, result
    assert (main.touches, backup.touches) == (3, 1)  # opened by the main key, then enrolled
    assert [s["type"] for s in slots(capit_home)] == \
        ["yubikey-hmac-sha1", "recovery", "yubikey-hmac-sha1"]
    listing = json.loads(run("vault", "slots", "--json").stdout)["data"]["slots"]
    assert [s["present"] for s in listing] == [True, None, True]

    main.plugged = False
    listing = json.loads(run("vault", "slots", "--json").stdout)["data"]["slots"]
    assert [s["present"] for s in listing] == [False, None, True]
    result = run("openrouter", "1.00")
    assert result.code == 0, result
    assert backup.touches == 2

    main.plugged, backup.plugged = True, False
    result = run("openrouter", "1.00")
    assert result.code == 0, result
    assert (main.touches, backup.touches) == (4, 2)


def test_over_nfc_the_same_slot_works(run, bench, sandbox, capit_home):
    """A YubiKey on an NFC reader: found through PC/SC (ykman.pcsc), no touch wait."""
    from emulators.yubikey import YubiOtpApplet

    applet = YubiOtpApplet(333)
    applet.program_hmac(2, SECRET, touch=True)
    bench.nfc(otp=applet)
    result = run("vault", "init", "--yubikey")
    assert result.code == 0, result
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    result = run("openrouter", "1.00")
    assert result.code == 0, result
    assert applet.touches == 3  # the NFC tap is the presence, one per command


# ------------------------------------------------------------------------- errors


def check_unchanged(result, code, capit_home, before, *phrases):
    assert_one_line_error(result, code)
    for phrase in phrases:
        assert phrase in result.stderr, result
    assert tree_snapshot(capit_home) == before


def test_slot_not_programmed_at_enrollment(run, bench, capit_home):
    bench.yubikey(111, slot=1)
    result = run("vault", "init", "--yubikey", "--slot", "2")
    assert_one_line_error(result, ExitCode.NOT_FOUND)
    assert "not programmed" in result.stderr and "--program" in result.stderr
    assert not (capit_home / "vault.json").exists()


def test_no_yubikey_at_enrollment(run, bench, capit_home):
    result = run("vault", "init", "--yubikey")
    assert_one_line_error(result, ExitCode.NOT_FOUND)
    assert "no YubiKey found" in result.stderr and "udev" in result.stderr


def test_several_yubikeys_need_a_serial(run, bench, capit_home):
    bench.yubikey(111)
    bench.yubikey(222)
    result = run("vault", "init", "--yubikey")
    assert_one_line_error(result, ExitCode.USAGE)
    assert "--serial" in result.stderr
    result = run("vault", "init", "--yubikey", "--serial", "999")
    assert_one_line_error(result, ExitCode.NOT_FOUND)


def test_a_yubikey_that_is_not_enrolled(run, bench, minted, capit_home):
    main, _ = minted
    main.plugged = False
    bench.yubikey(999, key=SECRET)
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before,
                    "YubiKey 999", "not enrolled", "YubiKey 111")


def test_slot_reprogrammed_since_enrollment(run, minted, capit_home):
    main, _ = minted
    main.program_hmac(2, b"another secret", touch=True)
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before,
                    "YubiKey 111 answered", "does not open slot 1")


def test_slot_emptied_since_enrollment(run, minted, capit_home):
    main, _ = minted
    main.slots[2] = None
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before, "not programmed")


def test_touch_timeout(run, minted, capit_home, monkeypatch):
    main, _ = minted
    main.touch_after_polls = None
    monkeypatch.setenv("CAPIT_TOUCH_TIMEOUT", "0.3")
    before = tree_snapshot(capit_home)
    resets = main.resets
    result = run("openrouter", "1.00")
    check_unchanged(result, ExitCode.CANCELLED, capit_home, before,
                    "YubiKey 111 was not touched within 0.3 s")
    assert main.resets > resets  # yubikit cancelled the wait on the device


def test_the_key_gives_up_waiting(run, minted, capit_home):
    main, _ = minted
    main.touch_after_polls, main.give_up_after_polls = None, 2
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    check_unchanged(result, ExitCode.CANCELLED, capit_home, before, "not touched")


def test_bad_touch_timeout_value(run, minted, capit_home, monkeypatch):
    monkeypatch.setenv("CAPIT_TOUCH_TIMEOUT", "soon")
    result = run("openrouter", "1.00")
    assert_one_line_error(result, ExitCode.USAGE)
    assert "CAPIT_TOUCH_TIMEOUT" in result.stderr


def test_ctrl_c_while_waiting_for_the_touch(run, minted, capit_home):
    main, _ = minted
    main.touch_after_polls, main.interrupt_after_polls = None, 2
    before = tree_snapshot(capit_home)
    resets = main.resets
    result = run("openrouter", "1.00")
    assert result.code == ExitCode.INTERRUPTED, result
    assert "interrupted" in result.stderr and "Traceback" not in result.output
    assert tree_snapshot(capit_home) == before
    assert main.resets > resets


def test_unplugged_while_waiting_for_the_touch(run, minted, capit_home):
    main, _ = minted
    main.touch_after_polls, main.unplug_after_polls = None, 2
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before,
                    "YubiKey 111 stopped answering", "unplugged")


@pytest.mark.parametrize(("field", "value", "code", "phrase"), [
    ("challenge", base64.b64encode(bytes(32)).decode(), ExitCode.UNLOCK, "does not open slot"),
    ("touch", False, ExitCode.UNLOCK, "does not open slot"),
    ("slot", 1, ExitCode.UNLOCK, "not programmed"),
    ("serial", 112, ExitCode.UNLOCK, "not enrolled"),
    ("challenge", base64.b64encode(bytes(64)).decode(), ExitCode.VAULT, "challenge"),
    ("slot", 3, ExitCode.VAULT, "1 or 2"),
    ("serial", True, ExitCode.VAULT, "serial"),
])
def test_edited_slot_metadata_never_opens(run, minted, capit_home, field, value, code, phrase):
    edit_slot(capit_home, "1", **{field: value})
    before = tree_snapshot(capit_home)
    result = run("openrouter", "1.00")
    check_unchanged(result, code, capit_home, before, phrase)


def test_yubikey_manager_not_installed(run, minted, capit_home, monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] in ("ykman", "yubikit")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ykman", None)  # import ykman -> ImportError
    monkeypatch.setitem(sys.modules, "yubikit", None)
    before = tree_snapshot(capit_home)
    result = run("vault", "enroll", "yubikey")
    check_unchanged(result, ExitCode.USAGE, capit_home, before,
                    "pip install 'capit[yubikey]'", "swig libpcsclite-dev")
    result = run("openrouter", "1.00")  # the vault's YubiKey slot cannot be used now
    check_unchanged(result, ExitCode.UNLOCK, capit_home, before, "capit[yubikey]")
    listing = json.loads(run("vault", "slots", "--json").stdout)["data"]["slots"]
    assert listing[0]["present"] is None


def test_removing_the_token_slot_keeps_the_recovery(run, minted, capit_home):
    result = run("vault", "remove", "1", "-y")
    assert result.code == 0, result
    assert [s["type"] for s in slots(capit_home)] == ["recovery"]
    result = run("vault", "remove", "2", "-y")
    assert_one_line_error(result, ExitCode.USAGE)


@pytest.mark.parametrize("args", [["--help"], ["vault", "--help"], ["vault", "enroll", "--help"],
                                  ["stores"], ["vault", "slots"]])
def test_token_libraries_are_imported_only_when_a_token_is_used(args):
    from test_startup import _modules_after

    loaded = _modules_after(args)
    assert sorted(m for m in loaded
                  if m.split(".")[0] in ("fido2", "yubikit", "ykman", "smartcard")) == []

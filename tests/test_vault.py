"""The sealed vault through the command line: create, open, slots, damage and tampering.

Argon2id runs with the real parameters (about 0.15 s an unlock), so most tests start from
a vault made once per module and copied into the test's own capit home, and open it with
the recovery key where the slot being exercised does not matter (no KDF for that slot).
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from conftest import PASS, assert_one_line_error, tree_snapshot

from capit.errors import ExitCode
from capit.platforms import MasterKey
from capit.secret import Secret
from capit.stores import vaultfile as vf

FAKE_MASTER = "sk-or-v1-" + "5eed" * 16
SECOND_PASS = "a second passphrase, for the backup slot"
DOCUMENTED_CODES = {int(c) for c in ExitCode} - {0}


# ------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """(vault bytes, recovery key) of a real vault (PASS + recovery) holding FAKE_MASTER."""
    from capit.stores.vault import create

    path = tmp_path_factory.mktemp("template") / "capit" / "vault.json"
    opened, recovery = create(path, Secret(PASS))
    opened.set(MasterKey("openrouter", Secret(FAKE_MASTER), {}))
    opened.save()
    return path.read_bytes(), recovery


@pytest.fixture
def vault(capit_home, template):
    """The template vault installed in this test's capit home; returns its path."""
    capit_home.mkdir(mode=0o700, exist_ok=True)
    path = capit_home / "vault.json"
    write_raw(path, template[0])
    return path


@pytest.fixture
def recovery(template):
    return template[1]


def write_raw(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chmod(path, 0o600)


def load_doc(path: Path) -> dict:
    return json.loads(path.read_text())


def write_doc(path: Path, doc: dict) -> bytes:
    """Write doc in canonical form with a recomputed checksum (what a careful attacker does)."""
    doc = dict(doc)
    doc.pop("checksum", None)
    doc["checksum"] = vf.checksum(doc)
    data = vf.file_bytes(doc)
    write_raw(path, data)
    return data


def slots_of(path: Path) -> list[dict]:
    return load_doc(path)["slots"]


def leftovers(directory: Path) -> list[str]:
    """Temp files an interrupted atomic write would leave behind."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def recovery_from(stdout: str) -> str:
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, stdout
    assert vf_recovery_parse(lines[0]) is not None, stdout
    return lines[0]


def vf_recovery_parse(text: str) -> bytes | None:
    from capit.stores.slots import RecoverySlot

    return RecoverySlot.parse(text)


def try_open(run, secret: str) -> object:
    """Open the vault through a command that unlocks it (and, if it opens, adds a slot)."""
    return run("vault", "enroll", "recovery", input=f"{secret}\n")


# ------------------------------------------------------------------------- round trip


def test_init_enroll_remove_round_trip(run, capit_home):
    result = run("vault", "init", input=f"{PASS}\n")
    assert result.code == 0, result
    rk1 = recovery_from(result.stdout)
    path = capit_home / "vault.json"
    assert stat.S_IMODE(capit_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PASS not in result.output

    listing = run("vault", "slots", "--json")
    assert listing.code == 0, listing
    data = json.loads(listing.stdout)["data"]
    assert [(s["id"], s["type"]) for s in data["slots"]] == [("1", "passphrase"),
                                                            ("2", "recovery")]
    assert data["vault_id"] == load_doc(path)["vault_id"]
    text = run("vault", "slots")
    assert text.code == 0 and "Argon2id m=64 MiB t=3 p=4" in text.stdout, text

    # a second passphrase, piped after the current one (no confirmation on a pipe)
    result = run("vault", "enroll", "passphrase", "--label", "backup",
                 input=f"{PASS}\n{SECOND_PASS}\n")
    assert result.code == 0, result
    assert [(s["id"], s["type"], s["label"]) for s in slots_of(path)][-1] == (
        "3", "passphrase", "backup")

    # the second passphrase opens it; a new recovery key is shown once, on stdout
    result = run("vault", "enroll", "recovery", input=f"{SECOND_PASS}\n")
    assert result.code == 0, result
    rk2 = recovery_from(result.stdout)
    assert rk2 != rk1
    assert [s["id"] for s in slots_of(path)] == ["1", "2", "3", "4"]

    # remove the first passphrase, unlocking with the first recovery key
    result = run("vault", "remove", "1", "-y", input=f"{rk1}\n")
    assert result.code == 0, result
    assert [s["id"] for s in slots_of(path)] == ["2", "3", "4"]

    # the removed passphrase no longer opens the vault; nothing changes on disk
    before = tree_snapshot(capit_home)
    result = try_open(run, PASS)
    assert_one_line_error(result, ExitCode.UNLOCK)
    assert tree_snapshot(capit_home) == before

    # down to one slot, then the last one is refused (with or without unlocking)
    assert run("vault", "remove", "2", "-y", input=f"{rk2}\n").code == 0
    assert run("vault", "remove", "3", "-y", input=f"{rk2}\n").code == 0
    assert [s["id"] for s in slots_of(path)] == ["4"]
    before = tree_snapshot(capit_home)
    result = run("vault", "remove", "4", "-y", input=f"{rk2}\n")
    assert_one_line_error(result, ExitCode.USAGE)
    assert "last slot" in result.stderr
    assert tree_snapshot(capit_home) == before
    # and the remaining slot still opens it
    result = run("vault", "enroll", "passphrase", input=f"{rk2}\n{PASS}\n")
    assert result.code == 0, result
    assert leftovers(capit_home) == []


def test_enroll_passphrase_from_new_passphrase_file(run, vault, recovery, tmp_path,
                                                    monkeypatch):
    new = tmp_path / "new-pass"
    new.write_text(SECOND_PASS + "\n")
    result = run("vault", "enroll", "passphrase", input=f"{recovery}\n",
                 env={"CAPIT_NEW_PASSPHRASE_FILE": str(new)})
    assert result.code == 0, result
    assert [s["type"] for s in slots_of(vault)] == ["passphrase", "recovery", "passphrase"]
    # the new slot opens the vault, and the vault still holds the master key
    from capit.stores.vault import VaultStore

    (tmp_path / "pass").write_text(SECOND_PASS + "\n")
    monkeypatch.setenv("CAPIT_PASSPHRASE_FILE", str(tmp_path / "pass"))
    opened = VaultStore(vault.parent).open()
    assert opened.unlocked_with == "3"
    assert opened.get("openrouter").secret.reveal() == FAKE_MASTER


def test_enroll_refuses_short_passphrase_and_changes_nothing(run, vault, recovery, capit_home):
    before = tree_snapshot(capit_home)
    result = run("vault", "enroll", "passphrase", input=f"{recovery}\nshort\n")
    assert_one_line_error(result, ExitCode.USAGE)
    assert tree_snapshot(capit_home) == before


def test_keys_add_creates_vault_and_recovery_key_opens_it(run, sandbox, capit_home):
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n{PASS}\n")
    assert result.code == 0, result
    rk = recovery_from(result.stdout)
    # mint with the recovery key instead of the passphrase
    sandbox.requests.clear()
    minted = run("openrouter", "1.00", input=f"{rk}\n")
    assert minted.code == 0, minted
    assert minted.stdout.strip().startswith("sk-or-v1-")
    assert [(r.method, r.path) for r in sandbox.requests] == [("POST", "/api/v1/keys")]


@pytest.mark.parametrize("form", ["canonical", "upper", "no-dashes", "spaced", "mixed"])
def test_recovery_key_forms_open_the_vault(run, vault, recovery, form):
    text = {
        "canonical": recovery,
        "upper": recovery.upper(),
        "no-dashes": recovery.replace("-", ""),
        "spaced": "  " + recovery.replace("-", " ") + "  ",
        "mixed": recovery.replace("-", "").upper()[:26] + recovery.replace("-", "")[26:],
    }[form]
    result = try_open(run, text)
    assert result.code == 0, result
    assert len(slots_of(vault)) == 3


def test_wrong_recovery_key_is_a_wrong_secret(run, vault, recovery, capit_home):
    raw = bytearray(vf_recovery_parse(recovery))
    raw[0] ^= 1
    import base64

    other = base64.b32encode(bytes(raw)).decode().rstrip("=").lower()
    before = tree_snapshot(capit_home)
    result = try_open(run, other)
    assert_one_line_error(result, ExitCode.UNLOCK)
    assert tree_snapshot(capit_home) == before


def test_wrong_passphrase_exits_unlock_and_leaves_vault_identical(run, vault, capit_home):
    before = tree_snapshot(capit_home)
    raw = vault.read_bytes()
    result = try_open(run, PASS + "!")
    assert_one_line_error(result, ExitCode.UNLOCK)
    assert "wrong passphrase" in result.stderr
    assert vault.read_bytes() == raw
    assert tree_snapshot(capit_home) == before


def test_init_refuses_an_existing_vault(run, vault, capit_home):
    before = tree_snapshot(capit_home)
    result = run("vault", "init", input=f"{PASS}\n")
    assert_one_line_error(result, ExitCode.STATE)
    assert tree_snapshot(capit_home) == before


def test_remove_unknown_slot(run, vault, capit_home):
    before = tree_snapshot(capit_home)
    result = run("vault", "remove", "9", "-y")
    assert_one_line_error(result, ExitCode.NOT_FOUND)
    assert tree_snapshot(capit_home) == before


def test_no_vault(run, capit_home):
    assert_one_line_error(run("vault", "slots"), ExitCode.NOT_FOUND)
    assert_one_line_error(try_open(run, PASS), ExitCode.NOT_FOUND)


# ------------------------------------------------------------------------- damage


def _check_refused(run, path: Path, data: bytes, secret: str, what: str,
                   expected: int | None = None) -> str | None:
    """Install data as the vault, try to open it; describe what went wrong, or None.

    A damaged vault must be refused with one error line and a documented exit code other
    than INTERNAL, without a traceback, and must not be touched."""
    write_raw(path, data)
    result = try_open(run, secret)
    problems = []
    if result.code == 0:
        problems.append("it OPENED")
    if result.code not in DOCUMENTED_CODES or result.code == ExitCode.INTERNAL:
        problems.append(f"exit {result.code}")
    elif expected is not None and result.code != expected:
        problems.append(f"exit {result.code}, not {expected}")
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("capit: error:")]
    if len(errors) != 1:
        problems.append(f"{len(errors)} error lines")
    if "Traceback" in result.output:
        problems.append("traceback")
    if path.read_bytes() != data:
        problems.append("file changed")
    if leftovers(path.parent):
        problems.append("temp file left")
    if problems:
        return f"{what}: {', '.join(problems)} ({result.stderr.strip()[:120]!r})"
    return None


@pytest.mark.parametrize("bit", [0x01, 0x20])
def test_every_flipped_byte_is_refused_as_damage(run, vault, template, bit):
    original = template[0]
    failures = []
    for i in range(len(original)):
        data = bytearray(original)
        data[i] ^= bit
        # reported as damage (VAULT), never as a wrong passphrase; no Argon2 runs at all
        problem = _check_refused(run, vault, bytes(data), PASS, f"byte {i} ^ {bit:#x}",
                                 expected=ExitCode.VAULT)
        if problem:
            failures.append(problem)
    assert failures == [], f"{len(failures)} flips not refused:\n" + "\n".join(failures[:20])


@pytest.mark.parametrize("length", [0, 1, 2, 100, "half", -2, -1])
def test_truncated_vault_is_refused(run, vault, template, length):
    original = template[0]
    cut = len(original) // 2 if length == "half" else length
    problem = _check_refused(run, vault, original[:cut], PASS, f"truncated to {cut}",
                             expected=ExitCode.VAULT)
    assert problem is None, problem


@pytest.mark.parametrize("content", [
    b"null\n", b"[]\n", b"{}\n", b'"capit-vault"\n', b"\x00" * 64, b"\xff\xfe{}",
    b"[" * 100_000, b'{"format": "capit-vault", "version": 1, "x": ' + b"[" * 5000,
    b'{"format": "capit-vault", "version": 1, "x": ' + b"[" * 990 + b"]" * 990 + b"}",
])
def test_garbage_vault_is_refused_as_damage(run, vault, content):
    problem = _check_refused(run, vault, content, PASS, f"content {content[:20]!r}",
                             expected=ExitCode.VAULT)
    assert problem is None, problem


def test_reformatted_vault_is_refused_even_with_the_same_content(run, vault):
    doc = load_doc(vault)
    for data in (json.dumps(doc).encode(), json.dumps(doc, indent=4, sort_keys=True).encode(),
                 vf.file_bytes(doc).rstrip(b"\n"), vf.file_bytes(doc) + b"\n",
                 vf.file_bytes(doc).replace(b"\n", b"\r\n")):
        problem = _check_refused(run, vault, data, PASS, "reformatted", expected=ExitCode.VAULT)
        assert problem is None, problem


# ------------------------------------------------------------------------- hostile files


@pytest.mark.parametrize(("field", "value"), [
    ("memory_kib", 4 * 1024 * 1024),
    ("iterations", 10**9),
    ("lanes", 0),
    ("memory_kib", 8),
    ("iterations", 1),
    ("lanes", 1 << 24),
    ("iterations", True),
    ("memory_kib", 65536.0),
    ("name", "argon2i"),
    ("salt", ""),
])
def test_hostile_argon2_parameters_are_refused_before_any_kdf(run, vault, capit_home,
                                                              field, value):
    doc = load_doc(vault)
    doc["slots"][0]["kdf"][field] = value
    data = write_doc(vault, doc)
    started = time.monotonic()
    result = try_open(run, PASS)
    elapsed = time.monotonic() - started
    assert_one_line_error(result, ExitCode.VAULT)
    assert elapsed < 0.5, f"took {elapsed:.2f} s: a KDF ran before the parameters were checked"
    assert vault.read_bytes() == data
    listing = run("vault", "slots")
    assert_one_line_error(listing, ExitCode.VAULT)
    assert leftovers(capit_home) == []


def _edit(doc: dict, how: str) -> dict:
    slots = doc["slots"]
    if how == "argon2-salt":
        slots[0]["kdf"]["salt"] = vf.b64e(b"\x01" * 16)
    elif how == "argon2-iterations":
        slots[0]["kdf"]["iterations"] = 4
    elif how == "hkdf-salt-passphrase":
        slots[0]["hkdf_salt"] = vf.b64e(b"\x02" * 32)
    elif how == "hkdf-salt-recovery":
        slots[1]["hkdf_salt"] = vf.b64e(b"\x02" * 32)
    elif how == "swap-wrapped-keys":
        slots[0]["wrapped_key"], slots[1]["wrapped_key"] = (slots[1]["wrapped_key"],
                                                            slots[0]["wrapped_key"])
    elif how == "label-passphrase":
        slots[0]["label"] = "evil"
    elif how == "label-recovery":
        slots[1]["label"] = "evil"
    elif how == "slot-created-at":
        slots[1]["created_at"] = "2000-01-01T00:00:00Z"
    elif how == "swap-slot-ids":
        slots[0]["id"], slots[1]["id"] = slots[1]["id"], slots[0]["id"]
    elif how == "reorder-slots":
        slots.reverse()
    elif how == "drop-passphrase-slot":
        del slots[0]
    elif how == "drop-recovery-slot":
        del slots[1]
    elif how == "add-foreign-slot":
        # a type this capit does not know (fido2 is known now, and validated strictly)
        slots.append({**slots[1], "id": "3", "type": "future-token", "label": "attacker"})
    elif how == "vault-id":
        doc["vault_id"] = "0" * 32
    elif how == "vault-created-at":
        doc["created_at"] = "2000-01-01T00:00:00Z"
    elif how == "payload-nonce":
        doc["payload"]["nonce"] = vf.b64e(b"\x00" * 12)
    elif how == "payload-from-older-save":
        pass  # handled by the caller
    else:  # pragma: no cover
        raise AssertionError(how)
    return doc


# (edit, opened with, expected code): a slot whose own metadata was edited cannot tell the
# edit apart from a wrong secret (UNLOCK); when the secret opens an intact slot the header
# check of the payload reports the edit (VAULT).
EDITS = [
    ("argon2-salt", "passphrase", ExitCode.UNLOCK),
    ("argon2-salt", "recovery", ExitCode.VAULT),
    ("argon2-iterations", "recovery", ExitCode.VAULT),
    ("hkdf-salt-passphrase", "recovery", ExitCode.VAULT),
    ("hkdf-salt-recovery", "recovery", ExitCode.UNLOCK),
    ("hkdf-salt-recovery", "passphrase", ExitCode.VAULT),
    ("swap-wrapped-keys", "recovery", ExitCode.UNLOCK),
    ("swap-wrapped-keys", "passphrase", ExitCode.UNLOCK),
    ("label-passphrase", "passphrase", ExitCode.UNLOCK),
    ("label-passphrase", "recovery", ExitCode.VAULT),
    ("label-recovery", "recovery", ExitCode.UNLOCK),
    ("label-recovery", "passphrase", ExitCode.VAULT),
    ("slot-created-at", "passphrase", ExitCode.VAULT),
    ("swap-slot-ids", "recovery", ExitCode.UNLOCK),
    ("reorder-slots", "recovery", ExitCode.VAULT),
    ("drop-passphrase-slot", "recovery", ExitCode.VAULT),
    ("drop-recovery-slot", "passphrase", ExitCode.VAULT),
    ("add-foreign-slot", "recovery", ExitCode.VAULT),
    ("vault-id", "recovery", ExitCode.UNLOCK),
    ("vault-created-at", "recovery", ExitCode.VAULT),
    ("payload-nonce", "recovery", ExitCode.VAULT),
]


@pytest.mark.parametrize(("how", "using", "code"), EDITS)
def test_edited_metadata_with_recomputed_checksum_never_opens(run, vault, recovery, capit_home,
                                                              how, using, code):
    data = write_doc(vault, _edit(load_doc(vault), how))
    before = tree_snapshot(capit_home)
    result = try_open(run, PASS if using == "passphrase" else recovery)
    assert_one_line_error(result, code)
    if code == ExitCode.VAULT:
        assert "integrity check" in result.stderr and "altered" in result.stderr, result
    assert vault.read_bytes() == data
    assert tree_snapshot(capit_home) == before


def test_payload_from_an_older_save_is_refused(run, vault, recovery, template, capit_home):
    """Replaying an older payload under a newer header (same data key) must not open."""
    assert try_open(run, recovery).code == 0  # adds slot 3, re-seals the payload
    newer = load_doc(vault)
    newer["payload"] = json.loads(template[0])["payload"]
    data = write_doc(vault, newer)
    result = try_open(run, recovery)
    assert_one_line_error(result, ExitCode.VAULT)
    assert vault.read_bytes() == data


@pytest.mark.parametrize("field", ["hkdf_salt", "argon2_salt"])
def test_non_canonical_base64_is_damage(run, vault, field):
    """Base64 whose unused trailing bits are set decodes to the same bytes; the canonical
    form allows exactly one spelling, so it is reported as damage, not as a wrong secret."""
    doc = load_doc(vault)
    slot = doc["slots"][0]
    value = slot["hkdf_salt"] if field == "hkdf_salt" else slot["kdf"]["salt"]
    stripped = value.rstrip("=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(stripped[-1])
    twin = stripped[:-1] + alphabet[last ^ 1] + value[len(stripped):]
    import base64

    assert base64.b64decode(twin) == base64.b64decode(value) and twin != value
    if field == "hkdf_salt":
        slot["hkdf_salt"] = twin
    else:
        slot["kdf"]["salt"] = twin
    data = write_doc(vault, doc)
    result = try_open(run, PASS)
    assert_one_line_error(result, ExitCode.VAULT)
    assert vault.read_bytes() == data


@pytest.mark.parametrize("where", ["slot-id", "vault-id"])
def test_ids_with_a_trailing_newline_are_damage(run, vault, recovery, where):
    doc = load_doc(vault)
    if where == "slot-id":
        doc["slots"][1]["id"] = "2\n"
    else:
        doc["vault_id"] += "\n"
    data = write_doc(vault, doc)
    result = try_open(run, recovery)
    assert_one_line_error(result, ExitCode.VAULT)
    assert vault.read_bytes() == data


@pytest.mark.parametrize("version", [2, 99])
def test_newer_format_version_says_upgrade(run, vault, capit_home, version):
    doc = load_doc(vault)
    doc["version"] = version
    write_doc(vault, doc)
    before = tree_snapshot(capit_home)
    for result in (run("vault", "slots"), try_open(run, PASS)):
        assert_one_line_error(result, ExitCode.VAULT)
        assert f"vault format {version}" in result.stderr and "upgrade capit" in result.stderr
    assert tree_snapshot(capit_home) == before
    # a future format may look different altogether; the version is still reported
    doc["slots"] = {"new": "layout"}
    doc["extra"] = [1, 2, 3]
    vault.write_text(json.dumps(doc))
    result = run("vault", "slots")
    assert_one_line_error(result, ExitCode.VAULT)
    assert "upgrade capit" in result.stderr
    assert json.loads(vault.read_text())["extra"] == [1, 2, 3]


@pytest.mark.parametrize("version", [0, -1, "1", None, 1.0, True])
def test_bad_format_version(run, vault, version):
    doc = load_doc(vault)
    doc["version"] = version
    data = write_doc(vault, doc)
    result = try_open(run, PASS)
    assert_one_line_error(result, ExitCode.VAULT)
    assert vault.read_bytes() == data


def test_unknown_fields_are_damage(run, vault):
    doc = load_doc(vault)
    doc["comment"] = "hello"
    write_doc(vault, doc)
    assert_one_line_error(try_open(run, PASS), ExitCode.VAULT)
    doc = load_doc(vault)
    del doc["comment"]
    doc["slots"][1]["extra"] = "x"
    write_doc(vault, doc)
    assert_one_line_error(try_open(run, PASS), ExitCode.VAULT)


# ------------------------------------------------------------------------- the file itself


def test_symlinked_vault_is_refused(run, vault, recovery, capit_home, tmp_path):
    real = tmp_path / "elsewhere.json"
    real.write_bytes(vault.read_bytes())
    real.chmod(0o600)
    vault.unlink()
    vault.symlink_to(real)
    before = real.read_bytes()
    for result in (run("vault", "slots"), try_open(run, recovery)):
        assert_one_line_error(result, ExitCode.VAULT)
        assert "symbolic link" in result.stderr
    result = run("vault", "init", input=f"{PASS}\n")
    assert result.code != 0
    assert vault.is_symlink() and real.read_bytes() == before
    # a dangling link is not replaced by a new vault either
    real.unlink()
    assert_one_line_error(try_open(run, recovery), ExitCode.VAULT)
    assert vault.is_symlink() and not real.exists()


def test_loose_vault_permissions_are_reported_and_repaired_on_write(run, vault, recovery):
    vault.chmod(0o644)
    result = run("vault", "slots")
    assert result.code == 0, result
    assert "capit: warning:" in result.stderr and "chmod 600" in result.stderr
    assert try_open(run, recovery).code == 0
    assert stat.S_IMODE(vault.stat().st_mode) == 0o600


def test_home_is_private_and_files_are_0600_even_with_umask_0(run, tmp_path, monkeypatch):
    home = tmp_path / "deep" / "capit"
    monkeypatch.setenv("CAPIT_HOME", str(home))
    old = os.umask(0)
    try:
        result = run("vault", "init", input=f"{PASS}\n")
    finally:
        os.umask(old)
    assert result.code == 0, result
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for path in home.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert sorted(p.name for p in home.iterdir()) == [".lock", "vault.json"]


def test_concurrent_change_is_not_overwritten(run, vault, recovery, tmp_path, monkeypatch):
    from capit.errors import CapitError
    from capit.stores.vault import VaultStore

    secret_file = tmp_path / "secret"
    secret_file.write_text(recovery + "\n")
    monkeypatch.setenv("CAPIT_PASSPHRASE_FILE", str(secret_file))
    store = VaultStore(vault.parent)
    opened = store.open()
    assert opened.get("openrouter").secret.reveal() == FAKE_MASTER

    # another capit process adds a slot in the meantime
    other = run("vault", "enroll", "recovery")
    assert other.code == 0, other
    after_other = vault.read_bytes()
    assert len(slots_of(vault)) == 3

    with pytest.raises(CapitError) as info:
        store.put(MasterKey("openrouter", Secret("sk-or-v1-" + "0" * 64), {}))
    assert info.value.code == ExitCode.STATE
    assert "changed while capit was running" in info.value.message
    assert vault.read_bytes() == after_other
    with pytest.raises(CapitError) as info:
        opened.add_slot("recovery", "x", {}, b"\x00" * 32)
    assert info.value.code == ExitCode.STATE
    assert vault.read_bytes() == after_other
    assert leftovers(vault.parent) == []


def test_failed_rename_leaves_no_temp_file(run, vault, recovery, capit_home, monkeypatch):
    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    before = tree_snapshot(capit_home)
    monkeypatch.setattr(os, "replace", no_space)
    result = try_open(run, recovery)
    monkeypatch.undo()
    assert_one_line_error(result, ExitCode.STATE)
    assert "No space left on device" in result.stderr
    assert tree_snapshot(capit_home) == before
    assert leftovers(capit_home) == []


@pytest.mark.parametrize("exc", [OSError(5, "Input/output error"), KeyboardInterrupt()])
def test_interrupted_write_leaves_no_temp_file(run, vault, recovery, capit_home, monkeypatch,
                                              exc):
    real_fsync = os.fsync

    def failing_fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            raise exc
        real_fsync(fd)

    before = tree_snapshot(capit_home)
    monkeypatch.setattr(os, "fsync", failing_fsync)
    result = try_open(run, recovery)
    monkeypatch.undo()
    expected = ExitCode.STATE if isinstance(exc, OSError) else ExitCode.INTERRUPTED
    assert result.code == expected, result
    assert "Traceback" not in result.output
    assert tree_snapshot(capit_home) == before
    assert leftovers(capit_home) == []


def test_successful_writes_leave_only_capit_files(run, stored_key, capit_home):
    result = run("openrouter", "1", input=f"{PASS}\n")
    assert result.code == 0, result
    assert sorted(p.name for p in capit_home.iterdir()) == [
        ".lock", "ledger.jsonl", "master-lookup", "vault.json"]
    for path in capit_home.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_vault_that_is_not_a_regular_file_is_refused(run, vault, capit_home):
    vault.unlink()
    vault.mkdir()
    assert_one_line_error(run("vault", "slots"), ExitCode.STATE)
    assert vault.is_dir()


def test_vault_that_is_a_fifo_is_refused_without_hanging(vault, capit_home):
    """A FIFO planted as vault.json must not block capit until someone writes to it."""
    import shutil
    import subprocess
    import sys

    vault.unlink()
    os.mkfifo(vault, 0o600)
    capit = shutil.which("capit", path=os.path.dirname(sys.executable))
    assert capit
    proc = subprocess.run([capit, "vault", "slots"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)
    assert proc.returncode == ExitCode.STATE, proc
    assert "not a regular file" in proc.stderr


def test_slot_labels_cannot_forge_terminal_output(run, vault, recovery, capit_home):
    """Slot metadata is shown before anything is authenticated: a label from a tampered
    file must not add lines or escape sequences to `vault slots`; --label refuses them."""
    before = tree_snapshot(capit_home)
    for label in ("two\nlines", "red\x1b[31m", "x" * 65, "  "):
        result = run("vault", "enroll", "recovery", "--label", label, input=f"{recovery}\n")
        assert_one_line_error(result, ExitCode.USAGE)
    assert tree_snapshot(capit_home) == before

    doc = load_doc(vault)
    doc["slots"][1]["label"] = "evil\n  slot 9: passphrase   forged\x1b[2J"
    write_doc(vault, doc)
    result = run("vault", "slots")
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result
    assert "\x1b" not in result.output and "forged" in lines[1] and "\\n" in lines[1]
    # the tampering itself is found when the vault is opened
    assert_one_line_error(try_open(run, PASS), ExitCode.VAULT)


def test_too_many_passphrase_slots_are_refused_before_any_kdf(tmp_path):
    import time

    from capit.stores import vaultfile as vf

    doc = {"format": vf.FORMAT, "version": vf.VERSION, "vault_id": "0" * 32,
           "created_at": "2026-01-01T00:00:00Z", "slots": [], "payload": {
               "nonce": vf.b64e(b"\0" * 12), "ciphertext": vf.b64e(b"\0" * 32)}}
    for i in range(1, vf.MAX_KDF_SLOTS + 2):
        doc["slots"].append({
            "id": str(i), "type": "passphrase", "label": "p", "created_at": doc["created_at"],
            "hkdf_salt": vf.b64e(b"\1" * 32),
            "kdf": {"name": "argon2id", "salt": vf.b64e(b"\2" * 16), "memory_kib": 1 << 20,
                    "iterations": 16, "lanes": 4},
            "wrapped_key": {"nonce": vf.b64e(b"\0" * 12), "ciphertext": vf.b64e(b"\0" * 48)}})
    doc["checksum"] = vf.checksum(doc)
    started = time.monotonic()
    with pytest.raises(vf.VaultDamaged, match="passphrase slots"):
        vf.parse(vf.file_bytes(doc))
    assert time.monotonic() - started < 1

"""capit 0.1.0's plaintext home: read it (with a warning), issue with it, migrate it away.

capit 0.1.0 kept master keys in ``$HOME/.local/capit/secrets.txt`` (dotenv lines under a
comment header) and wrote ``master-lookup`` as ``{"openrouter": {"store": "dotenv", ...}}``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import PASS, assert_one_line_error, tree_snapshot

from capit import ledger
from capit.sandbox.state import key_hash

KEY_RE = re.compile(r"^sk-or-v1-[0-9a-f]{64}$")
RECOVERY_RE = re.compile(r"^\s+[a-z0-9]{4}(?:-[a-z0-9]{4})+\s*$")


def write_legacy(capit_home: Path, secrets: dict[str, str], *, lookup: bool = True,
                 mode: int = 0o644) -> Path:
    """A capit 0.1.0 home, files as 0.1.0 left them (its umask: world-readable)."""
    capit_home.mkdir(parents=True, exist_ok=True)
    lines = ["# capit secrets - master keys (dotenv format)", "# do not share this file", ""]
    lines += [f"{name}={value}" for name, value in secrets.items()]
    path = capit_home / "secrets.txt"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(mode)
    if lookup:
        doc = {name: {"store": "dotenv", "added_at": "2026-01-15T10:20:30.123456"}
               for name in secrets}
        (capit_home / "master-lookup").write_text(json.dumps(doc, indent=2))
        (capit_home / "master-lookup").chmod(mode)
    return path


def contains(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.fixture
def legacy(capit_home, sandbox):
    write_legacy(capit_home, {"openrouter": sandbox.management_key})
    return sandbox


@pytest.mark.parametrize("lookup", [True, False], ids=["with-lookup", "secrets-only"])
def test_keys_list_shows_plaintext_with_a_warning(run, capit_home, sandbox, lookup):
    write_legacy(capit_home, {"openrouter": sandbox.management_key}, lookup=lookup)
    before = tree_snapshot(capit_home)
    result = run("--keys", "list")
    assert result.code == 0, result
    assert result.stdout == "openrouter | dotenv (plaintext)\n"
    assert re.search(r"^capit: warning: .*plaintext.*capit keys migrate", result.stderr, re.M)
    assert sandbox.management_key not in result.output
    assert tree_snapshot(capit_home) == before  # listing changes nothing
    stores = run("--stores")
    assert stores.code == 0, stores
    assert re.search(r"^dotenv .*secrets\.txt.*openrouter.*capit keys migrate", stores.stdout,
                     re.M), stores


def test_issuing_with_the_plaintext_key_works_but_warns(run, legacy, capit_home):
    sb = legacy
    result = run("openrouter", "5.00")
    assert result.code == 0, result
    key = result.stdout.strip()
    assert KEY_RE.match(key)
    assert [k["hash"] for k in sb.keys_snapshot()] == [key_hash(key)]
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert any("plaintext" in w and "capit keys migrate" in w for w in warnings), result
    assert sb.management_key not in result.output
    assert not (capit_home / "vault.json").exists()  # nothing migrated behind the user's back
    assert (capit_home / "secrets.txt").exists()
    [entry] = ledger.read(capit_home)
    assert entry["hash"] == key_hash(key)


def test_migrate_moves_the_key_into_the_vault(run, legacy, capit_home, tmp_path):
    sb = legacy
    mgmt = sb.management_key
    result = run("keys", "migrate", input=f"{PASS}\n")  # a pipe: the passphrase once
    assert result.code == 0, result
    assert "Moved openrouter into the vault" in result.stderr
    assert RECOVERY_RE.match(result.stdout.splitlines()[0]), result  # shown once
    assert mgmt not in result.output
    assert not (capit_home / "secrets.txt").exists()
    assert not [p for p in capit_home.iterdir() if p.name.startswith((".secrets", "secrets"))]
    lookup = json.loads((capit_home / "master-lookup").read_text())
    assert set(lookup) == {"openrouter"} and lookup["openrouter"]["store"] == "vault"
    assert (capit_home / "master-lookup").stat().st_mode & 0o777 == 0o600
    assert (capit_home / "vault.json").stat().st_mode & 0o777 == 0o600
    assert contains(tmp_path, mgmt) == []  # not under CAPIT_HOME, not under HOME

    listed = run("--keys", "list")
    assert listed.code == 0 and listed.stdout == "openrouter | vault\n", listed
    assert "warning" not in listed.stderr

    issued = run("openrouter", "5", input=f"{PASS}\n")  # the key now comes from the vault
    assert issued.code == 0, issued
    assert "plaintext" not in issued.stderr
    assert len(sb.keys_snapshot()) == 1
    assert contains(tmp_path, mgmt) == []


def test_migrate_moves_every_platform_and_keeps_export_and_quotes(run, capit_home, sandbox):
    path = write_legacy(capit_home, {"openrouter": sandbox.management_key})
    with path.open("a") as fh:
        fh.write("export unkey='unkey_3ZfakeRootKey0123456789'\n")
    result = run("keys", "migrate", input=f"{PASS}\n")
    assert result.code == 0, result
    lookup = json.loads((capit_home / "master-lookup").read_text())
    assert {k: v["store"] for k, v in lookup.items()} == {"openrouter": "vault", "unkey": "vault"}
    assert not path.exists()
    for secret in (sandbox.management_key, "unkey_3ZfakeRootKey0123456789"):
        assert contains(capit_home, secret) == []


def test_migrate_when_the_vault_already_holds_a_key(run, stored_key, capit_home, tmp_path):
    sb = stored_key
    stale = "sk-or-v1-" + "0" * 64  # an old key left in secrets.txt
    path = capit_home / "secrets.txt"
    path.write_text(f"# capit secrets\nopenrouter={stale}\n")
    vault_before = (capit_home / "vault.json").read_bytes()
    listed = run("--keys", "list")
    assert listed.stdout == "openrouter | vault\n", listed  # master-lookup decides
    result = run("keys", "migrate", input=f"{PASS}\n")
    assert result.code == 0, result
    assert "already held a key for openrouter" in result.stderr
    assert not path.exists()
    assert (capit_home / "vault.json").read_bytes() == vault_before  # the vault's copy kept
    assert contains(tmp_path, stale) == []
    issued = run("openrouter", "5", input=f"{PASS}\n")  # with the vault's (valid) key
    assert issued.code == 0, issued
    assert len(sb.keys_snapshot()) == 1


def test_migrate_into_an_existing_vault_asks_the_passphrase_once(run, stored_key, capit_home):
    sb = stored_key
    # capit 0.1.0 run again after the upgrade: it wrote the key and pointed the lookup at it
    (capit_home / "secrets.txt").write_text(f"openrouter={sb.management_key}\n")
    (capit_home / "master-lookup").write_text(json.dumps(
        {"openrouter": {"store": "dotenv", "added_at": "2026-01-15T10:20:30"}}))
    wrong = run("keys", "migrate", input="not the passphrase\n")
    assert_one_line_error(wrong, 6)
    assert (capit_home / "secrets.txt").exists()  # nothing destroyed when the vault stays shut
    result = run("keys", "migrate", input=f"{PASS}\n")
    assert result.code == 0, result
    assert "Moved openrouter into the vault" in result.stderr
    assert not (capit_home / "secrets.txt").exists()
    assert json.loads((capit_home / "master-lookup").read_text())["openrouter"]["store"] == \
        "vault"
    assert contains(capit_home, sb.management_key) == []


def test_nothing_to_migrate(run, capit_home, stored_key):
    before = tree_snapshot(capit_home)
    result = run("keys", "migrate", input="")  # no passphrase needed, none asked
    assert result.code == 0, result
    assert "Nothing to migrate" in result.stderr and result.stdout == ""
    assert tree_snapshot(capit_home) == before


def test_nothing_to_migrate_in_an_empty_home(run, capit_home):
    result = run("keys", "migrate", input="")
    assert result.code == 0, result
    assert "Nothing to migrate" in result.stderr
    assert not (capit_home / "vault.json").exists()


def test_keys_add_over_a_plaintext_key_removes_it(run, legacy, capit_home):
    sb = legacy
    result = run("--keys", "add", "openrouter", "-y", input=f"{sb.management_key}\n{PASS}\n")
    assert result.code == 0, result
    assert not (capit_home / "secrets.txt").exists()
    assert json.loads((capit_home / "master-lookup").read_text())["openrouter"]["store"] == \
        "vault"
    assert contains(capit_home, sb.management_key) == []


def test_keys_remove_of_a_plaintext_key(run, legacy, capit_home):
    result = run("--keys", "remove", "openrouter", "-y")
    assert result.code == 0, result
    assert not (capit_home / "secrets.txt").exists()
    assert json.loads((capit_home / "master-lookup").read_text()) == {}
    assert contains(capit_home, legacy.management_key) == []


def test_plaintext_file_is_overwritten_before_it_is_deleted(run, legacy, capit_home):
    """The bytes are overwritten in place (same inode) before the unlink: watch the inode."""
    path = capit_home / "secrets.txt"
    fd = os.open(path, os.O_RDONLY)  # keeps the inode alive after the unlink
    try:
        result = run("keys", "migrate", input=f"{PASS}\n")
        assert result.code == 0, result
        assert not path.exists()
        os.lseek(fd, 0, os.SEEK_SET)
        left = os.read(fd, 1 << 16)
    finally:
        os.close(fd)
    assert left and legacy.management_key.encode() not in left
    assert b"openrouter" not in left


def test_nothing_to_migrate_from_a_file_without_keys(run, capit_home):
    path = write_legacy(capit_home, {}, lookup=False)
    before = tree_snapshot(capit_home)
    result = run("keys", "migrate", input="")
    assert result.code == 0, result
    assert "Nothing to migrate" in result.stderr
    assert "there is no" not in result.stderr  # the file is there: say what is wrong with it
    assert str(path) in result.stderr
    assert tree_snapshot(capit_home) == before


def test_removing_one_of_several_plaintext_keys_scrubs_its_bytes(run, capit_home, sandbox):
    """The file is rewritten without the key, and the old copy's bytes are overwritten too."""
    other = "unkey_3ZfakeRootKey0123456789"
    path = write_legacy(capit_home, {"openrouter": sandbox.management_key, "unkey": other})
    fd = os.open(path, os.O_RDONLY)  # the inode that held the key
    try:
        result = run("--keys", "remove", "openrouter", "-y")
        assert result.code == 0, result
        os.lseek(fd, 0, os.SEEK_SET)
        left = os.read(fd, 1 << 16)
    finally:
        os.close(fd)
    assert sandbox.management_key.encode() not in left
    assert path.read_text().splitlines()[-1] == f"unkey={other}"
    assert path.read_text().startswith("# capit secrets")  # the rest is kept as it was
    assert contains(capit_home, sandbox.management_key) == []
    listed = run("--keys", "list")
    assert listed.stdout == "unkey | dotenv (plaintext)\n", listed

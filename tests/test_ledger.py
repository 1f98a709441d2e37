"""The ledger: one entry per minted key, written before the key is shown, never the key."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat

import pytest
from conftest import assert_one_line_error

from capit import ledger
from capit.sandbox.state import key_hash

KEY_RE = re.compile(r"sk-or-v1-[0-9a-f]{64}")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
MINTED_FIELDS = {"v", "event", "time", "platform", "hash", "name", "cap", "unit", "period",
                 "expires_at", "consumer", "status"}


def mint(run, sb, *args: str):
    result = run("openrouter", *args, "-i", input=f"{sb.management_key}\n")
    assert result.code == 0, result
    return result


def lines(capit_home) -> list[dict]:
    return [json.loads(line) for line in (capit_home / "ledger.jsonl").read_text().splitlines()]


def test_one_minted_entry_per_key_and_never_the_key(run, sandbox, capit_home):
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    first = mint(run, sandbox, "5.00", "--agent", "env", "--name", "claude", "--prefix", "prod",
                 "--period", "weekly", "--expires", "30d")
    second = mint(run, sandbox, "1")
    keys = KEY_RE.findall(first.stdout) + KEY_RE.findall(second.stdout)
    assert len(keys) == 2
    remote = {k["hash"]: k for k in sandbox.keys_snapshot()}

    a, b = lines(capit_home)
    assert set(a) == MINTED_FIELDS and set(b) == MINTED_FIELDS
    assert a["event"] == "minted" and a["status"] == "active" and a["v"] == 1
    assert a["platform"] == "openrouter"
    assert a["hash"] == key_hash(keys[0]) and a["hash"] in remote
    assert a["name"] == remote[a["hash"]]["name"] and re.fullmatch(r"prod-claude-[0-9a-f]{8}",
                                                                   a["name"])
    assert (a["cap"], a["unit"], a["period"]) == ("5.00", "USD", "weekly")
    assert a["expires_at"] == remote[a["hash"]]["expires_at"]
    assert TIME_RE.match(a["expires_at"])
    assert a["consumer"] == "env"
    assert TIME_RE.match(a["time"])
    stamp = dt.datetime.strptime(a["time"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=dt.timezone.utc)
    assert before <= stamp <= dt.datetime.now(dt.timezone.utc)

    assert b["hash"] == key_hash(keys[1])
    assert (b["cap"], b["period"], b["expires_at"], b["consumer"]) == \
        ("1.00", "monthly", None, None)

    raw = (capit_home / "ledger.jsonl").read_bytes()
    for secret in (*keys, sandbox.management_key):
        assert secret.encode() not in raw
        assert secret[-16:].encode() not in raw  # not even a tail of it

    assert [(e["hash"], e["status"]) for e in ledger.read(capit_home)] == \
        [(a["hash"], "active"), (b["hash"], "active")]


@pytest.mark.parametrize("blocker", ["directory", "symlink"])
@pytest.mark.parametrize("agent", [None, "env", "example"])
def test_unwritable_ledger_means_no_key_is_handed_out(run, sandbox, capit_home, tmp_path,
                                                      blocker, agent):
    """Recorded BEFORE shown: when the record cannot be written, the key never appears and
    the provider sees exactly one create and one delete of that same key."""
    capit_home.mkdir(mode=0o700)
    path = capit_home / "ledger.jsonl"
    if blocker == "directory":
        path.mkdir()
    else:
        target = tmp_path / "elsewhere.jsonl"
        target.write_text("")
        path.symlink_to(target)
    args = ["openrouter", "5", "-i"] + (["--agent", agent] if agent else [])
    result = run(*args, input=f"{sandbox.management_key}\n")
    assert_one_line_error(result, 15)
    assert "ledger.jsonl" in result.stderr and "revoked" in result.stderr
    assert result.stdout == ""
    assert not KEY_RE.search(result.output)
    calls = [(r.method, r.path) for r in sandbox.requests]
    assert len(calls) == 2, calls
    assert calls[0] == ("POST", "/api/v1/keys")
    assert calls[1][0] == "DELETE" and re.fullmatch(r"/api/v1/keys/[0-9a-f]{64}", calls[1][1])
    assert sandbox.keys_snapshot() == []  # the one key created is the one deleted
    if blocker == "symlink":
        assert (tmp_path / "elsewhere.jsonl").read_text() == ""


def test_keys_delete_marks_the_entry_revoked(run, sandbox, capit_home):
    mint(run, sandbox, "5")
    keep = mint(run, sandbox, "2").stdout.strip()
    first, second = lines(capit_home)
    result = run("--keys", "delete", "openrouter", first["hash"][:16], "-i",
                 input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    entries = lines(capit_home)
    assert entries[:2] == [first, second]
    [revoked] = entries[2:]
    assert revoked["event"] == "revoked" and revoked["hash"] == first["hash"]
    assert revoked["platform"] == "openrouter" and TIME_RE.match(revoked["time"])
    assert revoked["reason"]
    folded = {e["hash"]: e for e in ledger.read(capit_home)}
    assert folded[first["hash"]]["status"] == "revoked"
    assert folded[first["hash"]]["revoked_at"] == revoked["time"]
    assert folded[key_hash(keep)]["status"] == "active"


@pytest.fixture
def permissive_umask():
    old = os.umask(0)  # 0600 must come from capit, not from the umask
    yield
    os.umask(old)


def test_ledger_is_private_and_append_only(run, sandbox, capit_home, permissive_umask):
    mint(run, sandbox, "5")
    path = capit_home / "ledger.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(capit_home.stat().st_mode) == 0o700
    inode = path.stat().st_ino
    history = [path.read_bytes()]
    mint(run, sandbox, "6", "--agent", "env")
    history.append(path.read_bytes())
    victim = lines(capit_home)[0]["hash"]
    assert run("--keys", "delete", "openrouter", victim, "-i",
               input=f"{sandbox.management_key}\n").code == 0
    history.append(path.read_bytes())
    failed = run("openrouter", "abc", "-i", input=f"{sandbox.management_key}\n")
    assert failed.code == 2
    history.append(path.read_bytes())
    for earlier, later in zip(history, history[1:], strict=False):
        assert later.startswith(earlier)  # earlier lines byte-identical
    assert [len(h.splitlines()) for h in history] == [1, 2, 3, 3]
    assert path.stat().st_ino == inode  # appended in place, never replaced
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(h.endswith(b"\n") for h in history)


def test_read_skips_lines_that_are_not_entries(capit_home):
    capit_home.mkdir(mode=0o700)
    good = {"v": 1, "event": "minted", "platform": "openrouter", "hash": "ab" * 32,
            "name": "n", "cap": "5.00", "status": "active"}
    revoke_unknown = {"v": 1, "event": "revoked", "platform": "openrouter", "hash": "cd" * 32}
    raw = b"\n".join([
        b"not json", json.dumps(good).encode(), b"[1, 2, 3]", b'"a string"', b"null",
        b'{"event": "minted", "hash": ', b"\xff\xfe\xfd", b"", json.dumps(revoke_unknown).encode(),
        b"   ",
    ]) + b"\n"
    path = capit_home / "ledger.jsonl"
    path.write_bytes(raw)
    path.chmod(0o600)
    assert ledger.read(capit_home) == [good]
    assert path.read_bytes() == raw  # reading never repairs or rewrites


def test_read_of_a_missing_ledger_is_empty(capit_home):
    assert ledger.read(capit_home) == []
    assert not capit_home.exists()

"""Bad input: ONE line on stderr, a documented non-zero exit code, no traceback, no change on disk.

Each case runs twice: in a fresh capit home (nothing there yet) and in a populated one
(a vault holding a management key, master-lookup, and a ledger with one minted key),
taken as a copy of a template made once per module.  The passphrase and the management
key are offered on stdin, so a bad input that slipped through would go on to unlock the
vault and mint a key -- and the test would see the request and the changed ledger.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from conftest import ENV_PREFIXES, PASS, invoke, tree_snapshot

from capit import ledger
from capit.errors import ExitCode
from capit.sandbox.server import Sandbox

USAGE, STATE = int(ExitCode.USAGE), int(ExitCode.STATE)


@pytest.fixture(scope="module")
def populated_template(tmp_path_factory) -> Path:
    """A capit home after 'capit keys add openrouter' and one 'capit openrouter 5'."""
    root = tmp_path_factory.mktemp("populated")
    (root / "home").mkdir()
    capit_home = root / "capit-home"
    sb = Sandbox().start()
    try:
        env: dict[str, str | None] = {n: None for n in os.environ if n.startswith(ENV_PREFIXES)}
        env.update(CAPIT_HOME=str(capit_home), HOME=str(root / "home"),
                   CAPIT_OPENROUTER_BASE_URL=sb.base_url)
        added = invoke("keys", "add", "openrouter", input=f"{sb.management_key}\n{PASS}\n",
                       env=env)
        assert added.code == 0, added
        issued = invoke("openrouter", "5", input=f"{PASS}\n", env=env)
        assert issued.code == 0, issued
    finally:
        sb.stop()
    assert {p.name for p in capit_home.iterdir()} >= {"vault.json", "master-lookup",
                                                     "ledger.jsonl"}
    return capit_home


@pytest.fixture(params=["fresh", "populated"])
def state(request, capit_home, populated_template) -> str:
    if request.param == "populated":
        shutil.copytree(populated_template, capit_home)
    return request.param


def disk(*roots: Path) -> dict[str, tuple]:
    """Every path (directories too) with its mode and, for files, a digest."""
    out: dict[str, tuple] = {}
    for root in roots:
        if not root.exists():
            out[str(root)] = ("absent",)
            continue
        for path in [root, *sorted(root.rglob("*"))]:
            if path.name == ".lock":
                continue
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            out[str(path)] = (stat.S_IMODE(st.st_mode), stat.S_IFMT(st.st_mode), digest)
    return out


def assert_refused(result, code: int, hint: str) -> None:
    assert result.code == code, result
    assert code != 0 and code in {int(c) for c in ExitCode}
    assert result.stdout == "", result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result  # ONE line, not one error line among others
    assert lines[0].startswith("capit: error: "), result
    assert "Traceback" not in result.output
    assert hint.lower() in lines[0].lower(), result


def run_unchanged(run, sandbox, capit_home: Path, argv: list[str]):
    home = Path(os.environ["HOME"])
    before, snap = disk(capit_home, home), (tree_snapshot(capit_home), tree_snapshot(home))
    result = run(*argv, input=f"{PASS}\n{sandbox.management_key}\n")
    assert disk(capit_home, home) == before, result
    assert (tree_snapshot(capit_home), tree_snapshot(home)) == snap
    assert sandbox.requests == [] and sandbox.keys_snapshot() == [], result
    return result


BAD = [
    # amounts
    (["openrouter", "0"], USAGE, "more than $0"),
    (["openrouter", "-1"], USAGE, "more than $0"),
    (["openrouter", "abc"], USAGE, "not a dollar amount"),
    (["openrouter", "5.001"], USAGE, "two decimals"),
    (["openrouter", "nan"], USAGE, "not a dollar amount"),
    (["openrouter", "inf"], USAGE, "not a dollar amount"),
    (["openrouter", "-0.5"], USAGE, "more than $0"),
    (["openrouter", "1e3"], USAGE, "not a dollar amount"),
    (["openrouter", "$-5"], USAGE, "more than $0"),
    (["openrouter", "1,5"], USAGE, "not a dollar amount"),
    (["openrouter", ""], USAGE, "empty"),
    (["openrouter", "0.00", "-y"], USAGE, "more than $0"),
    (["openrouter", "5000000", "-y"], USAGE, "larger than capit allows"),
    (["openrouter", "-5", "--agent", "env"], USAGE, "more than $0"),
    (["issue", "openrouter", "NaN"], USAGE, "not a dollar amount"),
    # platform, options, arguments
    (["nosuch", "5"], USAGE, "unknown platform 'nosuch'"),
    (["issue", "nosuch", "5"], USAGE, "unknown platform"),
    (["--keys", "list", "-r", "nosuch"], USAGE, "unknown platform"),
    (["--keys", "delete", "nosuch", "abcdef"], USAGE, "unknown platform"),
    (["--keys", "add", "nosuch"], USAGE, "unknown platform"),
    (["openrouter", "5", "--bogus"], USAGE, "no such option"),
    (["openrouter", "5", "-z"], USAGE, "no such option"),
    (["--bogus"], USAGE, "no such option"),
    (["--keys", "list", "--bogus"], USAGE, "no such option"),
    (["--platforms", "--bogus"], USAGE, "no such option"),
    (["openrouter"], USAGE, "missing argument"),
    (["openrouter", "5", "6"], USAGE, "unexpected extra argument"),
    (["--keys", "frobnicate"], USAGE, "no such command"),
    # period, expiry
    (["openrouter", "5", "--period", "yearly"], USAGE, "--period"),
    (["openrouter", "5", "--period", ""], USAGE, "--period"),
    (["openrouter", "5", "--period"], USAGE, "--period"),
    (["openrouter", "5", "--expires", "2001-01-01"], USAGE, "in the past"),
    (["openrouter", "5", "--expires", "2020-06-01T12:00:00+05:00"], USAGE, "in the past"),
    (["openrouter", "5", "--expires", "garbage"], USAGE, "not understood"),
    (["openrouter", "5", "--expires", "0d"], USAGE, "future"),
    (["openrouter", "5", "--expires", "-1d"], USAGE, "expiry '-1d'"),
    (["openrouter", "5", "--expires", "9999-12-31T23:59:59-01:00"], USAGE, "out of range"),
    (["openrouter", "5", "--expires", "2027-02-30"], USAGE, "not understood"),
    # names
    (["openrouter", "5", "--name", "a b"], USAGE, "name 'a b'"),
    (["openrouter", "5", "--name", "x/y"], USAGE, "name"),
    (["openrouter", "5", "--name", "ünïcode"], USAGE, "name"),
    (["openrouter", "5", "--name", "x" * 49], USAGE, "at most 48"),
    (["openrouter", "5", "--name", "--"], USAGE, "name is empty"),
    (["openrouter", "5", "--prefix", "p;rm"], USAGE, "prefix"),
    (["openrouter", "5", "--name", "claude", "--prefix", "$(id)"], USAGE, "prefix"),
    # agent
    (["openrouter", "5", "--agent", "nope"], USAGE, "unknown agent 'nope'"),
]


@pytest.mark.parametrize(("argv", "code", "hint"), BAD, ids=[" ".join(a) for a, *_ in BAD])
def test_bad_input(run, sandbox, capit_home, state, argv, code, hint):
    result = run_unchanged(run, sandbox, capit_home, argv)
    assert_refused(result, code, hint)


LOOKUP_COMMANDS = [
    ["--keys", "list"],
    ["openrouter", "5"],
    ["openrouter", "5", "--agent", "env"],
    ["--keys", "list", "-r", "openrouter"],
    ["--keys", "delete", "openrouter", "abcdef0123"],
    ["--keys", "add", "openrouter"],
    ["--keys", "remove", "openrouter", "-y"],
    ["--platforms"],
    ["--stores"],
]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe\x00", b""],
                         ids=["broken", "array", "binary", "empty"])
@pytest.mark.parametrize("argv", LOOKUP_COMMANDS, ids=[" ".join(a) for a in LOOKUP_COMMANDS])
def test_master_lookup_not_json(run, sandbox, capit_home, state, argv, content):
    capit_home.mkdir(mode=0o700, exist_ok=True)
    lookup = capit_home / "master-lookup"
    lookup.write_bytes(content)
    lookup.chmod(0o600)
    result = run_unchanged(run, sandbox, capit_home, argv)
    assert_refused(result, STATE, "master-lookup")
    assert str(lookup) in result.stderr


def test_ledger_line_that_is_not_json_is_skipped(run, stored_key, capit_home):
    sb = stored_key
    first = run("openrouter", "5", input=f"{PASS}\n")
    assert first.code == 0, first
    path = capit_home / "ledger.jsonl"
    junk = b'not json\n[1, 2]\n"text"\n{"event": "minted", "hash": \n\xff\xfe\n\n'
    with path.open("ab") as fh:
        fh.write(junk)
    damaged = path.read_bytes()
    second = run("openrouter", "7", "--period", "weekly", input=f"{PASS}\n")
    assert second.code == 0, second
    assert "Traceback" not in second.output and "warning" not in second.stderr
    assert path.read_bytes().startswith(damaged)  # appended after the junk, nothing rewritten
    entries = ledger.read(capit_home)
    assert [(e["cap"], e["period"], e["status"]) for e in entries] == [
        ("5.00", "monthly", "active"), ("7.00", "weekly", "active")]
    assert [e["hash"] for e in entries] == [k["hash"] for k in sb.keys_snapshot()]
    last = json.loads(path.read_bytes().splitlines()[-1])
    assert last["event"] == "minted" and last["cap"] == "7.00"

"""Every command of capit 0.1.0's README, typed exactly as the seed shows, against the sandbox.

The seed (shared/seed/capit-0.1.0-README.txt) is the promise: these spellings keep working.
Runs go through ``capit.cli.main`` in-process (the ``run`` fixture) and, for the entry
points, through a real subprocess.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import PASS, assert_one_line_error

from capit.sandbox.state import key_hash

HEX8 = r"[0-9a-f]{8}"
KEY_RE = re.compile(r"^sk-or-v1-[0-9a-f]{64}$")
UTC = dt.timezone.utc


def minted(sb) -> list[dict]:
    return sb.keys_snapshot()


def posts(sb) -> list[dict]:
    return [r.json for r in sb.requests if r.method == "POST" and r.path.endswith("/keys")]


def only_key(result) -> str:
    """stdout is the key and nothing else."""
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result
    assert KEY_RE.match(lines[0]), result
    return lines[0]


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_nowhere(secret: str, *roots: Path) -> None:
    for root in roots:
        for path in files_under(root):
            assert secret.encode() not in path.read_bytes(), path


# ------------------------------------------------------------------ issuing


def test_seed_basic_one_dollar(run, stored_key):
    sb = stored_key
    key = only_key(run("openrouter", "1.00", input=f"{PASS}\n"))
    [created] = minted(sb)
    assert created["hash"] == key_hash(key)
    assert created["limit"] == 1 and created["limit_reset"] == "monthly"
    assert created["expires_at"] is None
    assert re.fullmatch(HEX8, created["name"])
    assert [(r.method, r.path) for r in sb.requests] == [("POST", "/api/v1/keys")]


def test_seed_name_and_prefix(run, stored_key):
    sb = stored_key
    result = run("openrouter", "5.00", "--name", "claude", "--prefix", "prod", input=f"{PASS}\n")
    key = only_key(result)
    [created] = minted(sb)
    assert re.fullmatch(rf"prod-claude-{HEX8}", created["name"]), created
    assert created["hash"] == key_hash(key)
    assert created["limit"] == 5
    assert created["name"] in result.stderr and "$5.00/month" in result.stderr


def test_seed_interactive_stores_nothing(run, sandbox, capit_home, tmp_path):
    result = run("openrouter", "5.00", "-i", input=f"{sandbox.management_key}\n")
    key = only_key(result)
    [created] = minted(sandbox)
    assert created["hash"] == key_hash(key) and created["limit"] == 5
    assert sandbox.management_key not in result.output
    assert not (capit_home / "vault.json").exists()
    assert not (capit_home / "master-lookup").exists()
    assert_nowhere(sandbox.management_key, tmp_path)
    assert_nowhere(key, capit_home)
    # the next command does not know the key
    again = run("openrouter", "5.00", input="")
    assert_one_line_error(again, 4)
    assert len(minted(sandbox)) == 1


def test_seed_agent_example_yes(run, stored_key, capit_home):
    sb = stored_key
    result = run("openrouter", "5.00", "--agent", "example", "-y", input=f"{PASS}\n")
    assert result.code == 0, result
    [created] = minted(sb)
    assert re.fullmatch(rf"example-{HEX8}", created["name"])  # --agent is the default name
    keys = re.findall(r"sk-or-v1-[0-9a-f]{64}", result.stdout)
    assert keys and {key_hash(k) for k in keys} == {created["hash"]}
    assert f"Key: {keys[0]}" in result.stdout
    assert f"export OPENROUTER_API_KEY={keys[0]}" in result.stdout
    assert "$5.00 openrouter key installed into example" in result.stderr
    entry = json.loads((capit_home / "ledger.jsonl").read_text().splitlines()[0])
    assert entry["consumer"] == "example"


def test_seed_agent_env(run, stored_key):
    sb = stored_key
    result = run("openrouter", "5.00", "--agent", "env", input=f"{PASS}\n")
    assert result.code == 0, result
    [created] = minted(sb)
    assert re.fullmatch(rf"env-{HEX8}", created["name"])
    match = re.fullmatch(r"export OPENROUTER_API_KEY=(sk-or-v1-[0-9a-f]{64})\n", result.stdout)
    assert match, result
    assert key_hash(match.group(1)) == created["hash"]


def test_name_overrides_the_agent_default(run, sandbox):
    result = run("openrouter", "5", "--agent", "env", "--name", "mine", "-i",
                 input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    assert re.fullmatch(rf"mine-{HEX8}", minted(sandbox)[0]["name"])


def test_unknown_agent_is_refused_before_anything_is_minted(run, sandbox, capit_home):
    result = run("openrouter", "5.00", "--agent", "nope", "-y", "-i",
                 input=f"{sandbox.management_key}\n")
    assert_one_line_error(result, 2)
    assert "nope" in result.stderr and "--consumers" in result.stderr
    assert sandbox.requests == [] and minted(sandbox) == []
    assert not capit_home.exists()


def test_issue_subcommand_is_the_same_command(run, sandbox):
    for argv in (["issue", "openrouter", "5", "-i"], ["openrouter", "5", "-i"]):
        only_key(run(*argv, input=f"{sandbox.management_key}\n"))
    first, second = posts(sandbox)
    assert {k: v for k, v in first.items() if k != "name"} == \
        {k: v for k, v in second.items() if k != "name"} == {"limit": 5, "limit_reset": "monthly"}


@pytest.mark.parametrize(("period", "reset"), [
    ("monthly", "monthly"), ("weekly", "weekly"), ("daily", "daily"), ("none", None),
])
def test_period_reaches_the_provider(run, sandbox, period, reset):
    only_key(run("openrouter", "5", "--period", period, "-i",
                 input=f"{sandbox.management_key}\n"))
    [body] = posts(sandbox)
    if reset is None:
        assert "limit_reset" not in body  # a lifetime cap: the field is left out
    else:
        assert body["limit_reset"] == reset
    assert minted(sandbox)[0]["limit_reset"] == reset


def _stamp(text: str) -> dt.datetime:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", text), text
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize(("expires", "delta"), [
    ("30d", dt.timedelta(days=30)), ("12h", dt.timedelta(hours=12)),
])
def test_expires_duration_reaches_the_provider(run, sandbox, expires, delta):
    before = dt.datetime.now(UTC).replace(microsecond=0)
    only_key(run("openrouter", "5", "--expires", expires, "-i",
                 input=f"{sandbox.management_key}\n"))
    after = dt.datetime.now(UTC)
    [body] = posts(sandbox)
    assert before + delta <= _stamp(body["expires_at"]) <= after + delta
    assert body["limit_reset"] == "monthly"


@pytest.mark.parametrize(("expires", "sent"), [
    ("2031-01-31", "2031-01-31T00:00:00Z"),
    ("2031-01-31T18:00:00+02:00", "2031-01-31T16:00:00Z"),
])
def test_expires_date_reaches_the_provider(run, sandbox, expires, sent):
    result = run("openrouter", "5", "--expires", expires, "-i",
                 input=f"{sandbox.management_key}\n")
    only_key(result)
    [body] = posts(sandbox)
    assert body["expires_at"] == sent
    assert minted(sandbox)[0]["expires_at"] == sent
    assert sent in result.stderr


# ------------------------------------------------------------------ the $1,000 typo guard


@pytest.mark.parametrize("answer", ["n\n", "\n", ""], ids=["declined", "default-no", "no-answer"])
def test_large_cap_not_confirmed_mints_nothing(run, sandbox, capit_home, answer):
    stdin = f"{answer}{sandbox.management_key}\n" if answer else ""
    result = run("openrouter", "2000", "-i", input=stdin)
    assert result.code == 3, result
    assert result.stderr.count("capit: error:") == 1 and "Traceback" not in result.output
    assert "$2,000.00" in result.stderr
    assert result.stdout == ""
    assert sandbox.requests == [] and minted(sandbox) == []
    assert not capit_home.exists()


def test_large_cap_refusal_is_on_its_own_line(run, sandbox):
    result = run("openrouter", "2000", "-i", input="")
    assert_one_line_error(result, 3)


def test_large_cap_confirmed(run, sandbox):
    result = run("openrouter", "2000", "-i", input=f"y\n{sandbox.management_key}\n")
    only_key(result)
    assert minted(sandbox)[0]["limit"] == 2000


def test_large_cap_yes_skips_the_question(run, sandbox):
    result = run("openrouter", "1000.01", "-y", "-i", input=f"{sandbox.management_key}\n")
    only_key(result)
    assert "?" not in result.stderr
    assert minted(sandbox)[0]["limit"] == 1000.01


def test_exactly_one_thousand_asks_nothing(run, sandbox):
    result = run("openrouter", "1000", "-i", input=f"{sandbox.management_key}\n")
    only_key(result)
    assert "?" not in result.stderr


# ------------------------------------------------------- --consumers, --platforms, --stores


def test_seed_consumers(run):
    result = run("--consumers")
    assert result.code == 0, result
    names = [line.split()[0] for line in result.stdout.splitlines()]
    import capit.consumers

    assert names == list(capit.consumers.BUILTIN)
    # the seed's own list: claude, cursor, windsurf, example
    assert {"claude", "cursor", "windsurf", "example"} <= set(names)


def test_seed_platforms(run, sandbox):
    result = run("--platforms")
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["openrouter", "unkey", "litellm"]
    line = lines[0]
    assert "no master key stored" in line and sandbox.base_url in line


def test_seed_platforms_with_a_stored_key(run, stored_key):
    result = run("--platforms")
    assert result.code == 0, result
    assert "master key in vault" in result.stdout


def test_seed_stores(run, capit_home):
    result = run("--stores")
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["vault", "dotenv", "ephemeral"]
    assert str(capit_home / "vault.json") in lines[0] and "[default]" in lines[0]
    assert not capit_home.exists() or not any(capit_home.iterdir())


def test_seed_stores_with_a_vault(run, stored_key):
    result = run("--stores")
    assert result.code == 0, result
    assert re.search(r"^vault .*slots 1:passphrase, 2:recovery; openrouter\)", result.stdout,
                     re.M), result


# ------------------------------------------------------------------ --keys


def test_seed_keys_add_then_list(run, sandbox, capit_home):
    empty = run("--keys", "list")
    assert empty.code == 0 and empty.stdout == "", empty
    result = run("--keys", "add", "openrouter", input=f"{sandbox.management_key}\n{PASS}\n")
    assert result.code == 0, result
    assert (capit_home / "vault.json").is_file()
    lookup = json.loads((capit_home / "master-lookup").read_text())
    assert lookup["openrouter"]["store"] == "vault"
    assert_nowhere(sandbox.management_key, capit_home)
    assert sandbox.management_key not in result.output
    listed = run("--keys", "list")
    assert listed.code == 0, listed
    assert listed.stdout == "openrouter | vault\n"
    assert minted(sandbox) == []  # adding a key mints nothing


def test_seed_keys_add_refuses_an_inference_key(run, sandbox, capit_home):
    child = sandbox.create_key("not-a-manager", limit=1)["key"]
    result = run("--keys", "add", "openrouter", input=f"{child}\n{PASS}\n")
    assert_one_line_error(result, 8)
    assert "management key" in result.stderr and "openrouter.ai" in result.stderr
    assert not (capit_home / "vault.json").exists()
    assert child not in result.output


def test_seed_keys_list_remote(run, stored_key):
    sb = stored_key
    a = only_key(run("openrouter", "5.00", "--name", "claude", "--prefix", "prod",
                     input=f"{PASS}\n"))
    b = only_key(run("openrouter", "5.00", "--name", "testing", "--prefix", "dev",
                     input=f"{PASS}\n"))
    result = run("--keys", "list", "-r", "openrouter", input=f"{PASS}\n")
    assert result.code == 0, result
    line_re = re.compile(
        r"^([0-9a-f]{16})\.\.\.  +(\S+)  +\$5\.00/month  +used \$0\.00  +"
        r"(\d{4}-\d{2}-\d{2})  +\[active\]$"
    )
    rows = [line_re.match(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2 and all(rows), result
    today = dt.datetime.now(UTC).date().isoformat()
    by_name = {m.group(2): m for m in rows}
    assert set(by_name) == {k["name"] for k in minted(sb)}
    assert re.fullmatch(rf"prod-claude-{HEX8}", [n for n in by_name if n.startswith("prod")][0])
    for key in (a, b):
        m = next(m for m in rows if key_hash(key).startswith(m.group(1)))
        assert m.group(3) == today
    assert a not in result.output and b not in result.output


def test_keys_list_remote_shows_usage_disabled_and_lifetime_caps(run, sandbox):
    spender = sandbox.create_key("spender", limit=2, limit_reset="daily")
    off = sandbox.create_key("off", limit=1)
    sandbox.create_key("uncapped")
    chat = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=sandbox.base_url, timeout=5) as http:
        for _ in range(3):  # $0.25 a call
            r = http.post("/chat/completions", json=chat,
                          headers={"Authorization": f"Bearer {spender['key']}"})
            assert r.status_code == 200, r.text
        r = http.patch(f"/keys/{off['data']['hash']}", json={"disabled": True},
                       headers={"Authorization": f"Bearer {sandbox.management_key}"})
        assert r.status_code == 200, r.text
    result = run("--keys", "list", "-r", "openrouter", "-i", input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    lines = {line.split()[1]: line for line in result.stdout.splitlines()}
    assert re.search(r"\$2\.00/day +used \$0\.75 +\S+ +\[active\]$", lines["spender"])
    assert re.search(r"\$1\.00 total +used \$0\.00 +\S+ +\[disabled\]$", lines["off"])
    assert re.search(r"no cap +used \$0\.00 +\S+ +\[active\]$", lines["uncapped"])


def test_seed_keys_delete_by_hash_prefix(run, stored_key, capit_home):
    sb = stored_key
    keep = only_key(run("openrouter", "1.00", input=f"{PASS}\n"))
    gone = only_key(run("openrouter", "5.00", input=f"{PASS}\n"))
    prefix = key_hash(gone)[:16]
    sb.requests.clear()
    result = run("--keys", "delete", "openrouter", prefix, input=f"{PASS}\n")
    assert result.code == 0, result
    assert prefix in result.stdout
    assert [k["hash"] for k in minted(sb)] == [key_hash(keep)]
    deletes = [r.path for r in sb.requests if r.method == "DELETE"]
    assert deletes == [f"/api/v1/keys/{key_hash(gone)}"]


def test_keys_delete_by_exact_name_and_ambiguity(run, sandbox):
    one = sandbox.create_key("twin")["data"]["hash"]
    two = sandbox.create_key("twin")["data"]["hash"]
    solo = sandbox.create_key("solo")["data"]["hash"]
    ambiguous = run("--keys", "delete", "openrouter", "twin", "-i",
                    input=f"{sandbox.management_key}\n")
    assert_one_line_error(ambiguous, 5)
    assert one[:16] in ambiguous.stderr and two[:16] in ambiguous.stderr
    assert len(minted(sandbox)) == 3
    assert not [r for r in sandbox.requests if r.method == "DELETE"]
    result = run("--keys", "delete", "openrouter", "solo", "-i",
                 input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    assert solo not in {k["hash"] for k in minted(sandbox)} and len(minted(sandbox)) == 2
    missing = run("--keys", "delete", "openrouter", "0" * 16, "-i",
                  input=f"{sandbox.management_key}\n")
    assert_one_line_error(missing, 4)


def test_seed_keys_remove(run, stored_key, capit_home):
    result = run("--keys", "remove", "openrouter", input=f"y\n{PASS}\n")
    assert result.code == 0, result
    assert json.loads((capit_home / "master-lookup").read_text()) == {}
    listed = run("--keys", "list")
    assert listed.code == 0 and listed.stdout == "", listed
    again = run("openrouter", "5", input=f"{PASS}\n")
    assert_one_line_error(again, 4)
    assert minted(stored_key) == []


def test_seed_keys_remove_declined_keeps_the_key(run, stored_key, capit_home):
    before = (capit_home / "vault.json").read_bytes()
    result = run("--keys", "remove", "openrouter", input="n\n")
    assert_one_line_error(result, 3)
    assert (capit_home / "vault.json").read_bytes() == before
    assert "openrouter" in json.loads((capit_home / "master-lookup").read_text())


# ------------------------------------------------------------------ -v, entry points


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_before_or_after(run, sandbox, where):
    args = ["openrouter", "5", "-i"]
    args = ["-v", *args] if where == "before" else [*args, "-v"]
    result = run(*args, input=f"{sandbox.management_key}\n")
    key = only_key(result)
    assert re.search(r"POST /keys -> 201", result.stderr), result
    assert sandbox.management_key not in result.stderr
    assert key not in result.stderr


@pytest.mark.parametrize("argv", [
    ["-v", "--keys", "list"], ["--keys", "list", "-v"], ["--verbose", "--platforms"],
    ["--stores", "--verbose"], ["-v", "--consumers"],
])
def test_verbose_with_admin_commands(run, argv):
    result = run(*argv)
    assert result.code == 0, result


def test_keys_equals_spelling(run):
    result = run("--keys=list")
    assert result.code == 0, result


def _env(sandbox, capit_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPIT_")}
    env.update(CAPIT_HOME=str(capit_home), HOME=os.environ["HOME"],
               CAPIT_OPENROUTER_BASE_URL=sandbox.base_url)
    return env


def test_python_dash_m_capit_help(capit_home, sandbox):
    proc = subprocess.run([sys.executable, "-m", "capit", "--help"], capture_output=True,
                          text=True, env=_env(sandbox, capit_home), timeout=60, check=False)
    assert proc.returncode == 0, proc
    assert proc.stdout.startswith("Usage: capit PLATFORM AMOUNT")
    for word in ("issue", "keys", "vault", "platforms", "stores", "consumers"):
        assert re.search(rf"^  {word} ", proc.stdout, re.M), word
    assert proc.stderr == ""


def test_installed_capit_mints_with_the_key_piped(capit_home, sandbox):
    exe = Path(sys.executable).with_name("capit")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "capit"]
    proc = subprocess.run([*argv, "openrouter", "5.00", "-i"], input=f"{sandbox.management_key}\n",
                          capture_output=True, text=True, env=_env(sandbox, capit_home),
                          timeout=60, check=False)
    assert proc.returncode == 0, proc
    assert KEY_RE.match(proc.stdout.strip()), proc
    assert key_hash(proc.stdout.strip()) == minted(sandbox)[0]["hash"]
    assert "Traceback" not in proc.stderr

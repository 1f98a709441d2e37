"""``capit uninstall --agent X`` / ``capit revoke --agent X``."""

from __future__ import annotations

import json

from conftest import PASS, assert_one_line_error

from capit import ledger

pytest_plugins = ("consumers.agentfix",)


def test_nothing_recorded_is_not_found(uninstall, sandbox):
    result = uninstall("claude")
    assert_one_line_error(result, 4)
    assert sandbox.requests == []


def test_revoke_alias_with_the_vault_and_a_confirmation(run, stored_key, place, home,
                                                        capit_home, live_keys):
    place("claude", home / ".claude")
    path = home / ".claude" / "settings.json"
    original = path.read_bytes()
    minted = run("openrouter", "5", "--agent", "claude", "-y", input=f"{PASS}\n")
    assert minted.code == 0, minted

    declined = run("revoke", "--agent", "claude", input="n\n")
    assert_one_line_error(declined, 3)
    assert "claude: revoke openrouter key claude-" in declined.stderr
    assert '-    "ANTHROPIC_AUTH_TOKEN": "sk-or-v1-…' in declined.stderr
    assert len(live_keys()) == 1 and path.read_bytes() != original

    result = run("revoke", "--agent", "claude", input=f"y\n{PASS}\n")
    assert result.code == 0, result
    assert live_keys() == {} and path.read_bytes() == original
    assert "claude: 1 key(s) revoked; removed from ~/.claude/settings.json" in result.stdout


def test_keys_printed_by_env_are_revoked_too(install, uninstall, live_keys, capit_home):
    assert install("env").code == 0
    result = uninstall("env")
    assert result.code == 0, result
    assert live_keys() == {}
    assert [e["status"] for e in ledger.read(capit_home)] == ["revoked"]


def test_a_failed_revoke_still_restores_files_and_can_be_retried(install, uninstall, place,
                                                                 home, sandbox, capit_home,
                                                                 live_keys):
    place("claude", home / ".claude")
    original = (home / ".claude" / "settings.json").read_bytes()
    assert install("claude").code == 0
    sandbox.faults.queue("DELETE", "/keys/", 503, times=10)
    result = uninstall("claude")
    assert_one_line_error(result, 11)
    assert "run capit uninstall --agent claude again" in result.stderr
    assert (home / ".claude" / "settings.json").read_bytes() == original
    assert len(live_keys()) == 1
    sandbox.faults.clear()
    again = uninstall("claude")
    assert again.code == 0, again
    assert live_keys() == {}
    assert (home / ".claude" / "settings.json").read_bytes() == original


def test_a_key_already_deleted_on_the_platform(install, uninstall, run, sandbox, capit_home):
    assert install("claude").code == 0
    [entry] = ledger.read(capit_home)
    assert run("keys", "delete", "openrouter", entry["hash"], "-i",
               input=f"{sandbox.management_key}\n").code == 0
    result = uninstall("claude")
    assert result.code == 0, result
    assert "no active keys; removed from ~/.claude/settings.json" in result.stdout


def test_an_unparseable_file_at_uninstall_is_reported_not_touched(install, uninstall, home,
                                                                  live_keys):
    assert install("claude").code == 0
    path = home / ".claude" / "settings.json"
    path.write_text(path.read_text() + "garbage")
    result = uninstall("claude")
    assert result.code == 0, result
    assert "is not valid JSON" in result.stderr and "remove the key from it by hand" in \
        result.stderr
    assert path.read_text().endswith("garbage") and live_keys() == {}


def test_ledger_records_where_keys_went(install, capit_home, home):
    assert install("claude", "codex").code == 0
    entries = ledger.read(capit_home)
    assert entries[0]["location"] == "~/.claude/settings.json"
    assert entries[1]["location"] == "~/.codex/capit-openrouter.key, ~/.codex/config.toml"
    raw = (capit_home / "ledger.jsonl").read_text()
    for line in raw.splitlines():
        event = json.loads(line)
        assert "sk-or-v1-" not in json.dumps(event)  # fingerprints only, never the key


def test_keys_of_an_agent_whose_consumer_is_gone_are_still_revoked(install, uninstall,
                                                                   capit_home, live_keys):
    directory = capit_home / "consumers"
    directory.mkdir(parents=True)
    (directory / "gone.py").write_text("def send(key, platform, cap):\n    return ''\n")
    assert install("gone").code == 0
    (directory / "gone.py").unlink()
    result = uninstall("gone")
    assert result.code == 0, result
    assert live_keys() == {}

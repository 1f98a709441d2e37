"""Never break a config: unparseable files, symlinks, read-only directories, all-or-nothing
runs with several agents, confirmation with a masked diff, values changed after capit."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path

import pytest
from conftest import assert_one_line_error, tree_snapshot
from consumers.compat import tomllib

from capit import ledger
from capit.sandbox.state import key_hash

pytest_plugins = ("consumers.agentfix",)

PERSONAL = "sk-ant-api03-personal-0123456789abcdefghijklmnopqrstuvwxyz"


def requests(sandbox, method: str, prefix: str) -> list:
    return [r for r in sandbox.requests if r.method == method and r.path.startswith(prefix)]


def assert_minted_once_and_revoked(sandbox, capit_home: Path) -> None:
    """Exactly one create and one delete reached the provider; the ledger says both."""
    [create] = requests(sandbox, "POST", "/api/v1/keys")
    [delete] = requests(sandbox, "DELETE", "/api/v1/keys/")
    assert sandbox.keys_snapshot() == []
    [entry] = ledger.read(capit_home)
    assert entry["status"] == "revoked"
    assert delete.path.endswith(entry["hash"])
    assert create.json["name"] == entry["name"]


@pytest.mark.parametrize("agent, relative, broken", [
    ("claude", ".claude/settings.json", '{\n  // Claude Code does not allow comments\n}\n'),
    ("codex", ".codex/config.toml", 'model = "o3"\nmodel = "o4"\n'),  # a duplicate key
    ("continue", ".continue/config.yaml", "models:\n  - name: a\n   bad: indent\n"),
    ("openclaw", ".openclaw/openclaw.json", "{ env: { A: 1 }\n"),  # unterminated
    ("aider", ".aider.conf.yml", "api-key: [unclosed\n"),
    ("opencode", ".local/share/opencode/auth.json", "{\"openai\": {\"key\": \"x\",}}"),
])
def test_unparseable_config_is_left_alone_and_the_key_revoked(install, home, sandbox,
                                                             capit_home, agent, relative,
                                                             broken):
    path = home / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(broken)
    before = tree_snapshot(home)
    result = install(agent)
    assert_one_line_error(result, 14)
    assert "capit left it untouched" in result.stderr and "the new key was revoked" in \
        result.stderr
    assert tree_snapshot(home) == before  # no backup, no temp file, nothing
    assert_minted_once_and_revoked(sandbox, capit_home)


def test_symlinked_config_is_edited_through_the_link(install, uninstall, place, home, tmp_path,
                                                     capit_home, live_keys):
    dotfiles = place("claude", tmp_path / "dotfiles")
    target = dotfiles / "settings.json"
    original = target.read_bytes()
    (home / ".claude").mkdir()
    link = home / ".claude" / "settings.json"
    link.symlink_to(target)

    assert install("claude").code == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    data = json.loads(target.read_text())
    [entry] = ledger.read(capit_home)
    assert key_hash(data["env"]["ANTHROPIC_AUTH_TOKEN"]) == entry["hash"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert (dotfiles / "settings.json.capit.bak").read_bytes() == original
    assert not (home / ".claude" / "settings.json.capit.bak").exists()

    assert uninstall("claude").code == 0
    assert link.is_symlink() and target.read_bytes() == original
    assert entry["hash"] not in live_keys()


@pytest.fixture
def read_only(monkeypatch):
    """Make a directory refuse new files, as it does for anyone but root; as root, the
    kernel would allow it, so the refusal is made where capit meets the OS (os.open)."""
    real_open = os.open

    def _read_only(directory: Path) -> None:
        directory.chmod(0o500)
        if os.geteuid() == 0:
            def guarded(path, flags, mode=0o777, *args, **kwargs):
                if flags & os.O_CREAT and Path(path).parent == directory:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
                return real_open(path, flags, mode, *args, **kwargs)

            monkeypatch.setattr(os, "open", guarded)

    yield _read_only


def test_read_only_config_dir_rolls_back_and_revokes(install, place, home, sandbox, capit_home,
                                                     read_only):
    directory = place("claude", home / ".claude")
    before = tree_snapshot(home)
    read_only(directory)
    try:
        result = install("claude")
    finally:
        directory.chmod(0o755)
    assert_one_line_error(result, 14)
    assert "Permission denied" in result.stderr
    assert tree_snapshot(home) == before
    assert_minted_once_and_revoked(sandbox, capit_home)


def test_two_agents_in_one_run(install, place, home, capit_home, live_keys):
    place("claude", home / ".claude")
    place("codex", home / ".codex")
    result = install("claude", "codex")
    assert result.code == 0, result
    entries = ledger.read(capit_home)
    assert [e["consumer"] for e in entries] == ["claude", "codex"]
    assert re.fullmatch(r"claude-[0-9a-f]{8}", entries[0]["name"])
    assert re.fullmatch(r"codex-[0-9a-f]{8}", entries[1]["name"])
    token = json.loads((home / ".claude" / "settings.json").read_text())["env"][
        "ANTHROPIC_AUTH_TOKEN"]
    codex_key = (home / ".codex" / "capit-openrouter.key").read_text().strip()
    assert key_hash(token) == entries[0]["hash"] and key_hash(codex_key) == entries[1]["hash"]
    assert set(live_keys()) == {e["hash"] for e in entries}
    assert result.stdout.count("installed into") == 2


def test_a_failed_second_agent_undoes_the_first(install, place, home, sandbox, capit_home):
    place("claude", home / ".claude")
    (home / ".continue").mkdir()
    (home / ".continue" / "config.yaml").write_text("models: [unclosed\n")
    before = tree_snapshot(home)
    result = install("claude", "continue")
    assert_one_line_error(result, 14)
    assert "were revoked too and their files restored" in result.stderr
    assert tree_snapshot(home) == before  # settings.json and its backup as they were
    assert len(requests(sandbox, "POST", "/api/v1/keys")) == 2
    assert len(requests(sandbox, "DELETE", "/api/v1/keys/")) == 2
    assert sandbox.keys_snapshot() == []
    assert [e["status"] for e in ledger.read(capit_home)] == ["revoked", "revoked"]
    events = [json.loads(line)["event"]
              for line in (capit_home / "ledger.jsonl").read_text().splitlines()]
    assert events.count("delivered") == 1 and events.count("removed") == 1
    assert ledger.deliveries(capit_home) == []


def test_a_failed_run_removes_the_directories_it_created(install, home, sandbox):
    (home / ".continue").mkdir()
    (home / ".continue" / "config.yaml").write_text("models: [unclosed\n")
    result = install("codex", "continue")
    assert_one_line_error(result, 14)
    assert not (home / ".codex").exists()
    assert sandbox.keys_snapshot() == []


def test_an_agent_named_twice_or_unusable_is_refused_before_minting(install, sandbox):
    result = install("claude", "claude")
    assert_one_line_error(result, 2)
    result = install("claude", "windsurf")
    assert_one_line_error(result, 2)
    assert "Windsurf accepts only Anthropic API keys" in result.stderr
    assert sandbox.requests == []


def test_confirmation_shows_a_masked_diff(install, place, home, sandbox, capit_home):
    place("claude", home / ".claude")
    path = home / ".claude" / "settings.json"
    original = path.read_bytes()

    declined = install("claude", yes=False, answer="n")
    assert_one_line_error(declined, 3)
    assert path.read_bytes() == original
    assert_minted_once_and_revoked(sandbox, capit_home)
    assert "+    \"ANTHROPIC_AUTH_TOKEN\": \"sk-or-v1-…" in declined.stderr
    assert "-    \"ANTHROPIC_API_KEY\": \"sk-ant-…wxyz\"" in declined.stderr
    assert PERSONAL not in declined.output
    assert not re.search(r"sk-or-v1-[0-9a-f]{12}", declined.output)

    accepted = install("claude", yes=False, answer="y")
    assert accepted.code == 0, accepted
    token = json.loads(path.read_text())["env"]["ANTHROPIC_AUTH_TOKEN"]
    assert token not in accepted.output and PERSONAL not in accepted.output
    assert "(mode 0644 -> 0600)" in accepted.stderr


def test_reinstall_keeps_the_persons_original(install, uninstall, place, home, capit_home,
                                              live_keys):
    place("claude", home / ".claude")
    path = home / ".claude" / "settings.json"
    original = path.read_bytes()
    assert install("claude").code == 0
    assert install("claude").code == 0
    assert len(live_keys()) == 2
    result = uninstall("claude")
    assert result.code == 0, result
    assert "2 key(s) revoked" in result.stdout
    assert path.read_bytes() == original  # the person's own ANTHROPIC_API_KEY is back
    assert live_keys() == {}


def test_a_value_changed_after_capit_is_left_alone(install, uninstall, place, home, live_keys):
    place("codex", home / ".codex")
    path = home / ".codex" / "config.toml"
    assert install("codex").code == 0
    text = path.read_text().replace('model = "openai/o3"', 'model = "anthropic/claude-opus-4"')
    path.write_text(text)
    result = uninstall("codex")
    assert result.code == 0, result
    assert "left model in ~/.codex/config.toml as it is" in result.stderr
    data = tomllib.loads(path.read_text())
    assert data["model"] == "anthropic/claude-opus-4"
    assert "model_provider" not in data and "openrouter" not in data["model_providers"]
    assert live_keys() == {}


def test_a_file_changed_between_planning_and_writing_is_not_overwritten(install, place, home,
                                                                        sandbox, capit_home,
                                                                        monkeypatch):
    place("claude", home / ".claude")
    path = home / ".claude" / "settings.json"
    from capit.configedit import changes

    real_apply = changes.FileChange.apply

    def racing_apply(self):
        if self.real == path:
            path.write_text('{"theirs": true}\n')
        return real_apply(self)

    monkeypatch.setattr(changes.FileChange, "apply", racing_apply)
    result = install("claude")
    assert_one_line_error(result, 14)
    assert "changed while capit was working" in result.stderr
    assert path.read_text() == '{"theirs": true}\n'
    assert not (home / ".claude" / "settings.json.capit-orig").exists()
    assert_minted_once_and_revoked(sandbox, capit_home)

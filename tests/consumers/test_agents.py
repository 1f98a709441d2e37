"""Every agent that capit writes into: a realistic hand-written config -> install -> the
file still parses under the agent's own rules, nothing else changed, the key sits where
the agent reads it -> uninstall restores the original and revokes the key.

Each test drives the CLI (``capit openrouter 5 --agent X -y -i``) against the sandbox, so
base URLs come from ``CAPIT_OPENROUTER_BASE_URL`` and reach the agent's config.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
from pathlib import Path

import httpx
import json5
import pytest
import yaml
from consumers.compat import tomllib
from dotenv import dotenv_values

from capit import ledger
from capit.configedit import Item, Prefixed, lookup, without
from capit.sandbox.state import key_hash

pytest_plugins = ("consumers.agentfix",)

def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def minted_hash(capit_home: Path, agent: str) -> str:
    [entry] = [e for e in ledger.read(capit_home) if e["consumer"] == agent]
    assert entry["status"] == "active"
    return entry["hash"]


def check_installed(result, capit_home: Path, agent: str, path: Path, original: bytes | None,
                    live_keys) -> str:
    """Common checks after an install; returns the key the file holds."""
    assert result.code == 0, result
    h = minted_hash(capit_home, agent)
    assert h in live_keys()
    assert mode(path) == 0o600, oct(mode(path))
    if original is not None:
        backup = path.with_name(path.name + ".capit.bak")
        assert backup.read_bytes() == original
        assert mode(backup) == 0o600
    assert f"installed into {agent}" in result.output
    return h


def key_of(text: str) -> str:
    """The sk-or-v1 key in a text (exactly one)."""
    import re

    found = set(re.findall(r"sk-or-v1-[0-9a-f]{64}", text))
    assert len(found) == 1, found
    return found.pop()


def check_uninstalled(result, capit_home: Path, agent: str, h: str, live_keys) -> None:
    assert result.code == 0, result
    assert h not in live_keys()
    [entry] = [e for e in ledger.read(capit_home) if e["hash"] == h]
    assert entry["status"] == "revoked"
    assert ledger.deliveries(capit_home, agent) == []


def chat(base: str, key: str) -> httpx.Response:
    return httpx.post(f"{base}/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      json={"model": "openai/gpt-4o-mini",
                            "messages": [{"role": "user", "content": "hi"}]}, timeout=5)


# ------------------------------------------------------------------------------ claude


@pytest.mark.parametrize("override", [False, True])
def test_claude(install, uninstall, place, home, capit_home, sandbox, live_keys, monkeypatch,
                tmp_path, override):
    if override:
        directory = tmp_path / "claude-config"
        monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(directory))
    else:
        directory = home / ".claude"
    place("claude", directory)
    path = directory / "settings.json"
    original = path.read_bytes()

    result = install("claude")
    h = check_installed(result, capit_home, "claude", path, original, live_keys)
    data = json.loads(path.read_text())  # Claude Code parses it with JSON.parse
    env = data["env"]
    assert key_hash(env["ANTHROPIC_AUTH_TOKEN"]) == h
    assert env["ANTHROPIC_API_KEY"] == ""
    assert env["ANTHROPIC_BASE_URL"] == sandbox.anthropic_base_url
    before = json.loads(original)
    paths = [("env", "ANTHROPIC_AUTH_TOKEN"), ("env", "ANTHROPIC_API_KEY"),
             ("env", "ANTHROPIC_BASE_URL")]
    assert without(data, paths) == without(before, paths)
    assert env["ANTHROPIC_AUTH_TOKEN"] not in result.output
    # the person's own Anthropic key is kept beside the file, to be put back
    orig = directory / "settings.json.capit-orig"
    assert orig.read_bytes() == original and mode(orig) == 0o600
    # what Claude Code will do with it: {ANTHROPIC_BASE_URL}/v1/messages, bearer token
    reply = httpx.post(f"{env['ANTHROPIC_BASE_URL']}/v1/messages",
                       headers={"Authorization": f"Bearer {env['ANTHROPIC_AUTH_TOKEN']}"},
                       json={"model": "anthropic/claude-sonnet-4", "max_tokens": 16,
                             "messages": [{"role": "user", "content": "hi"}]}, timeout=5)
    assert reply.status_code == 200, reply.text

    result = uninstall("claude")
    check_uninstalled(result, capit_home, "claude", h, live_keys)
    assert path.read_bytes() == original
    assert mode(path) == 0o644
    assert not orig.exists()


def test_claude_new_settings_file_is_created_and_removed(install, uninstall, home, capit_home,
                                                         live_keys):
    path = home / ".claude" / "settings.json"
    result = install("claude")
    h = check_installed(result, capit_home, "claude", path, None, live_keys)
    assert json.loads(path.read_text())["env"]["ANTHROPIC_API_KEY"] == ""
    check_uninstalled(uninstall("claude"), capit_home, "claude", h, live_keys)
    assert not path.exists()


# ------------------------------------------------------------------------------ codex


@pytest.mark.parametrize("override", [False, True])
def test_codex(install, uninstall, place, home, capit_home, sandbox, live_keys, monkeypatch,
               tmp_path, override):
    if override:
        directory = tmp_path / "codex-home"
        monkeypatch.setenv("CODEX_HOME", str(directory))
    else:
        directory = home / ".codex"
    place("codex", directory)
    path = directory / "config.toml"
    original = path.read_bytes()

    result = install("codex")
    assert result.code == 0, result
    h = minted_hash(capit_home, "codex")
    data = tomllib.loads(path.read_text())
    assert data["model_provider"] == "openrouter"
    assert data["model"] == "openai/o3"
    provider = data["model_providers"]["openrouter"]
    assert provider["base_url"] == sandbox.base_url
    assert provider["wire_api"] == "responses"
    assert "env_key" not in provider and "experimental_bearer_token" not in provider
    # the key is not in config.toml: Codex runs the auth command, which prints the key file
    assert "sk-or-v1-" not in path.read_text()
    key_file = directory / "capit-openrouter.key"
    assert mode(key_file) == 0o600
    auth = provider["auth"]
    printed = subprocess.run([auth["command"], *auth["args"]], capture_output=True, text=True,
                             check=True).stdout.strip()
    assert key_hash(printed) == h
    assert chat(provider["base_url"], printed).status_code == 200
    before = tomllib.loads(original.decode())
    changed = [("model_provider",), ("model",), ("model_providers", "openrouter")]
    assert without(data, changed) == without(before, changed)
    assert "# my default model" in path.read_text()  # comments survive
    assert path.with_name("config.toml.capit.bak").read_bytes() == original

    result = uninstall("codex")
    check_uninstalled(result, capit_home, "codex", h, live_keys)
    assert path.read_bytes() == original
    assert not key_file.exists()


def test_codex_replaces_a_provider_using_env_key(install, uninstall, home, capit_home,
                                                 live_keys):
    directory = home / ".codex"
    directory.mkdir()
    original = ('model = "anthropic/claude-sonnet-4"\nmodel_provider = "openrouter"\n\n'
                '[model_providers.openrouter]\nname = "OpenRouter"\n'
                'base_url = "https://openrouter.ai/api/v1"\nenv_key = "OPENROUTER_API_KEY"\n')
    (directory / "config.toml").write_text(original)
    assert install("codex").code == 0
    data = tomllib.loads((directory / "config.toml").read_text())
    assert data["model"] == "anthropic/claude-sonnet-4"  # already an OpenRouter model name
    assert "env_key" not in data["model_providers"]["openrouter"]  # Codex forbids it with auth
    h = minted_hash(capit_home, "codex")
    check_uninstalled(uninstall("codex"), capit_home, "codex", h, live_keys)
    assert tomllib.loads((directory / "config.toml").read_text()) == tomllib.loads(original)


# ------------------------------------------------------------------------------ openclaw


@pytest.mark.parametrize("where", ["default", "state_dir", "config_path", "openclaw_home"])
def test_openclaw(install, uninstall, place, home, capit_home, live_keys, monkeypatch,
                  tmp_path, where):
    if where == "state_dir":
        directory = tmp_path / "state"
        monkeypatch.setenv("OPENCLAW_STATE_DIR", str(directory))
    elif where == "config_path":
        directory = tmp_path / "elsewhere"
        monkeypatch.setenv("OPENCLAW_CONFIG_PATH", str(directory / "openclaw.json"))
    elif where == "openclaw_home":
        monkeypatch.setenv("OPENCLAW_HOME", str(tmp_path / "svc"))
        directory = tmp_path / "svc" / ".openclaw"
    else:
        directory = home / ".openclaw"
    place("openclaw", directory)
    path = directory / "openclaw.json"
    original = path.read_bytes()

    result = install("openclaw")
    h = check_installed(result, capit_home, "openclaw", path, original, live_keys)
    text = path.read_text()
    data = json5.loads(text)  # OpenClaw's config is JSON5
    assert key_hash(data["env"]["OPENROUTER_API_KEY"]) == h
    for comment in ("// OpenClaw configuration", "// the gateway listens", "/* OpenRouter"):
        assert comment in text
    assert without(data, [("env", "OPENROUTER_API_KEY")]) == json5.loads(original.decode())
    assert not (directory / "openclaw.json.capit-orig").exists()  # nothing of theirs replaced

    check_uninstalled(uninstall("openclaw"), capit_home, "openclaw", h, live_keys)
    assert path.read_bytes() == original


def test_openclaw_warns_about_a_dotenv_that_wins(install, place, home):
    place("openclaw", home / ".openclaw")
    (home / ".openclaw" / ".env").write_text("OPENROUTER_API_KEY=sk-or-v1-old\n")
    result = install("openclaw")
    assert result.code == 0, result
    assert ".env sets OPENROUTER_API_KEY too" in result.stderr


# ------------------------------------------------------------------------------ opencode


def test_opencode(install, uninstall, place, home, capit_home, live_keys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    directory = tmp_path / "data" / "opencode"
    place("opencode", directory)
    path = directory / "auth.json"
    original = path.read_bytes()

    result = install("opencode")
    h = check_installed(result, capit_home, "opencode", path, original, live_keys)
    data = json.loads(path.read_text())
    assert data["openrouter"]["type"] == "api"
    assert key_hash(data["openrouter"]["key"]) == h
    assert without(data, [("openrouter",)]) == json.loads(original)
    assert path.read_text().startswith('{\n  "anthropic": {\n    "type": "oauth",')

    check_uninstalled(uninstall("opencode"), capit_home, "opencode", h, live_keys)
    assert path.read_bytes() == original


# ------------------------------------------------------------------------------ aider


def test_aider(install, uninstall, place, home, capit_home, live_keys):
    place("aider", home)
    path = home / ".aider.conf.yml"
    original = path.read_bytes()

    result = install("aider")
    h = check_installed(result, capit_home, "aider", path, original, live_keys)
    data = yaml.safe_load(path.read_text())
    entries = [e for e in data["api-key"] if e.startswith("openrouter=")]
    assert len(entries) == 1  # aider: --api-key openrouter=<key> sets OPENROUTER_API_KEY
    assert key_hash(entries[0].split("=", 1)[1]) == h
    assert "gemini=AIzaPersonalGeminiKey0123456789abcdef" in data["api-key"]
    before = yaml.safe_load(original)
    assert without(data, [("api-key", Prefixed("openrouter="))]) == \
        without(before, [("api-key", Prefixed("openrouter="))])
    assert "dark-mode: true   # my terminal is dark" in path.read_text()

    check_uninstalled(uninstall("aider"), capit_home, "aider", h, live_keys)
    assert path.read_bytes() == original  # their own OpenRouter key is back


# ------------------------------------------------------------------------------ continue


def test_continue(install, uninstall, place, home, capit_home, sandbox, live_keys):
    place("continue", home / ".continue")
    path = home / ".continue" / "config.yaml"
    original = path.read_bytes()

    result = install("continue")
    h = check_installed(result, capit_home, "continue", path, original, live_keys)
    data = yaml.safe_load(path.read_text())
    entry = lookup(data, ("models", Item("name", "capit (OpenRouter)")))
    assert entry["provider"] == "openrouter" and entry["apiBase"] == sandbox.base_url
    assert key_hash(entry["apiKey"]) == h
    assert [m["name"] for m in data["models"]] == ["GPT-4o", "Qwen Coder", "capit (OpenRouter)"]
    assert without(data, [("models", Item("name", "capit (OpenRouter)"))]) == \
        yaml.safe_load(original)
    text = path.read_text()
    assert "    - name: GPT-4o\n" in text and "        - chat\n" in text  # indentation kept
    assert chat(entry["apiBase"], entry["apiKey"]).status_code == 200

    check_uninstalled(uninstall("continue"), capit_home, "continue", h, live_keys)
    assert path.read_bytes() == original


def test_continue_global_dir_and_a_second_install_replaces_the_entry(install, uninstall,
                                                                      capit_home, monkeypatch,
                                                                      tmp_path, live_keys):
    monkeypatch.setenv("CONTINUE_GLOBAL_DIR", str(tmp_path / "cont"))
    assert install("continue").code == 0
    path = tmp_path / "cont" / "config.yaml"
    first = yaml.safe_load(path.read_text())
    assert first["schema"] == "v1" and len(first["models"]) == 1
    assert install("continue").code == 0
    second = yaml.safe_load(path.read_text())
    assert len(second["models"]) == 1 and second["models"][0]["apiKey"] != \
        first["models"][0]["apiKey"]
    result = uninstall("continue")
    assert result.code == 0, result
    assert "2 key(s) revoked" in result.stdout
    assert not path.exists()  # capit created it; nothing of the person's is in it
    assert live_keys() == {}


def test_continue_with_only_config_json_is_refused_before_minting(install, home, sandbox):
    (home / ".continue").mkdir()
    (home / ".continue" / "config.json").write_text('{"models": []}\n')
    result = install("continue")
    assert result.code == 14, result
    assert "nothing was minted" in result.stderr
    assert sandbox.keys_snapshot() == []
    assert not (home / ".continue" / "config.yaml").exists()


# ------------------------------------------------------------------------------ llm


def test_llm(install, uninstall, place, capit_home, live_keys, monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    place("llm", tmp_path / "llm")
    path = tmp_path / "llm" / "keys.json"
    original = path.read_bytes()

    result = install("llm")
    h = check_installed(result, capit_home, "llm", path, original, live_keys)
    data = json.loads(path.read_text())
    assert key_hash(data["openrouter"]) == h
    assert without(data, [("openrouter",)]) == json.loads(original)

    check_uninstalled(uninstall("llm"), capit_home, "llm", h, live_keys)
    assert path.read_bytes() == original


def test_llm_default_path_follows_click(install, home, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    import click

    expected = Path(click.get_app_dir("io.datasette.llm")) / "keys.json"
    assert install("llm").code == 0
    data = json.loads(expected.read_text())
    assert data["// Note"].startswith("This file stores secret API credentials")
    assert data["openrouter"].startswith("sk-or-v1-")


# ------------------------------------------------------------------------------ goose


def test_goose_with_secrets_file(install, uninstall, place, home, capit_home, sandbox,
                                 live_keys, monkeypatch):
    monkeypatch.setenv("GOOSE_DISABLE_KEYRING", "1")
    directory = home / ".config" / "goose"
    place("goose", directory)
    config, secrets = directory / "config.yaml", directory / "secrets.yaml"
    original_config, original_secrets = config.read_bytes(), secrets.read_bytes()

    result = install("goose")
    h = check_installed(result, capit_home, "goose", secrets, original_secrets, live_keys)
    stored = yaml.safe_load(secrets.read_text())
    assert key_hash(stored["OPENROUTER_API_KEY"]) == h
    assert stored["ANTHROPIC_API_KEY"] == yaml.safe_load(original_secrets)["ANTHROPIC_API_KEY"]
    settings = yaml.safe_load(config.read_text())
    assert settings["GOOSE_PROVIDER"] == "openrouter"
    assert "GOOSE_MODEL" not in settings  # an Anthropic model name; goose's OpenRouter default
    assert settings["OPENROUTER_HOST"] == sandbox.url  # goose appends /api/v1 itself
    assert mode(config) == 0o644  # no key in it
    assert "GOOSE_MODE: smart_approve   # ask before risky tools" in config.read_text()

    check_uninstalled(uninstall("goose"), capit_home, "goose", h, live_keys)
    assert secrets.read_bytes() == original_secrets
    assert yaml.safe_load(config.read_text()) == yaml.safe_load(original_config)


def test_goose_keyring_entry_on_macos(install, uninstall, home, capit_home, live_keys,
                                      memory_keyring, monkeypatch):
    from capit.consumers import goose

    monkeypatch.setattr(goose, "_system", lambda: "darwin")
    memory_keyring.entries[("goose", "secrets")] = json.dumps(
        {"OPENROUTER_API_KEY": "sk-or-v1-theirs", "GITHUB_TOKEN": "ghp_x"})
    result = install("goose")
    assert result.code == 0, result
    h = minted_hash(capit_home, "goose")
    entry = json.loads(memory_keyring.entries[("goose", "secrets")])
    assert key_hash(entry["OPENROUTER_API_KEY"]) == h and entry["GITHUB_TOKEN"] == "ghp_x"
    assert not (home / ".config" / "goose" / "secrets.yaml").exists()

    check_uninstalled(uninstall("goose"), capit_home, "goose", h, live_keys)
    assert json.loads(memory_keyring.entries[("goose", "secrets")]) == \
        {"OPENROUTER_API_KEY": "sk-or-v1-theirs", "GITHUB_TOKEN": "ghp_x"}
    assert ("capit", "goose-secrets-before-capit") not in memory_keyring.entries


def test_goose_keyring_entry_elsewhere_is_refused_before_minting(install, sandbox,
                                                                  memory_keyring, monkeypatch):
    from capit.consumers import goose

    monkeypatch.setattr(goose, "_system", lambda: "linux")
    memory_keyring.entries[("goose", "secrets")] = "{}"
    result = install("goose")
    assert result.code == 14, result
    assert "nothing was minted" in result.stderr and sandbox.keys_snapshot() == []


def test_goose_without_a_keyring_entry_uses_the_secrets_file(install, home, memory_keyring):
    result = install("goose")
    assert result.code == 0, result
    secrets = home / ".config" / "goose" / "secrets.yaml"
    assert yaml.safe_load(secrets.read_text())["OPENROUTER_API_KEY"].startswith("sk-or-v1-")
    assert memory_keyring.entries == {}


# ------------------------------------------------------------------------------ crush


def test_crush_json(install, uninstall, place, capit_home, sandbox, live_keys, monkeypatch,
                    tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    directory = tmp_path / "xdg" / "crush"
    place("crush-json", directory)
    path = directory / "crush.json"
    original = path.read_bytes()

    result = install("crush")
    h = check_installed(result, capit_home, "crush", path, original, live_keys)
    data = json5.loads(path.read_text())  # JSON with comments and trailing commas
    assert key_hash(data["providers"]["openrouter"]["api_key"]) == h
    assert data["providers"]["openrouter"]["base_url"] == sandbox.base_url
    assert data["providers"]["anthropic"] == {"api_key": "$ANTHROPIC_API_KEY"}
    assert "// my providers" in path.read_text()
    assert not (directory / "crushrc").exists()

    check_uninstalled(uninstall("crush"), capit_home, "crush", h, live_keys)
    assert path.read_bytes() == original


def test_crushrc(install, uninstall, place, home, capit_home, sandbox, live_keys):
    directory = home / ".config" / "crush"
    place("crush-rc", directory)
    path = directory / "crushrc"
    original = path.read_bytes()

    result = install("crush")
    h = check_installed(result, capit_home, "crush", path, original, live_keys)
    text = path.read_text()
    assert text.startswith(original.decode())  # appended as a marked block
    subprocess.run(["bash", "-n", str(path)], check=True)  # still valid Bash
    line = [ln for ln in text.splitlines() if ln.startswith("provider add openrouter")][0]
    assert key_hash(key_of(line)) == h and f"--base-url {sandbox.base_url}" in line
    assert not (directory / "crush.json").exists()

    check_uninstalled(uninstall("crush"), capit_home, "crush", h, live_keys)
    assert path.read_bytes() == original


# ------------------------------------------------------------------------------ gptme


def test_gptme(install, uninstall, place, home, capit_home, live_keys):
    directory = home / ".config" / "gptme"
    place("gptme", directory)
    main, local = directory / "config.toml", directory / "config.local.toml"
    original_main, original_local = main.read_bytes(), local.read_bytes()

    result = install("gptme")
    h = check_installed(result, capit_home, "gptme", local, original_local, live_keys)
    data = tomllib.loads(local.read_text())
    assert key_hash(data["env"]["OPENROUTER_API_KEY"]) == h
    assert without(data, [("env", "OPENROUTER_API_KEY")]) == tomllib.loads(original_local.decode())
    assert main.read_bytes() == original_main  # the shareable file is not touched

    check_uninstalled(uninstall("gptme"), capit_home, "gptme", h, live_keys)
    assert local.read_bytes() == original_local


# ------------------------------------------------------------------------------ dotenv


def test_dotenv_in_a_git_repository(install, uninstall, place, capit_home, live_keys,
                                    monkeypatch, tmp_path):
    project = place("dotenv", tmp_path / "project")
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    monkeypatch.chdir(project)
    env, ignore = project / ".env", project / ".gitignore"
    original_env, original_ignore = env.read_bytes(), ignore.read_bytes()

    result = install("dotenv")
    h = check_installed(result, capit_home, "dotenv", env, original_env, live_keys)
    values = dotenv_values(stream=io.StringIO(env.read_text()))
    assert key_hash(values["OPENROUTER_API_KEY"]) == h
    before = dotenv_values(stream=io.StringIO(original_env.decode()))
    assert {k: v for k, v in values.items() if k != "OPENROUTER_API_KEY"} == before
    assert ignore.read_text() == original_ignore.decode() + ".env\n"
    assert mode(ignore) == 0o644
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=project, check=False)
    assert ignored.returncode == 0

    monkeypatch.chdir(tmp_path)  # uninstall finds the file through the ledger, not the cwd
    check_uninstalled(uninstall("dotenv"), capit_home, "dotenv", h, live_keys)
    assert env.read_bytes() == original_env
    assert ignore.read_bytes() == original_ignore


def test_dotenv_outside_git_and_already_ignored(install, monkeypatch, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    assert install("dotenv").code == 0
    assert not (plain / ".gitignore").exists()
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text(".env\n")
    monkeypatch.chdir(repo)
    assert install("dotenv").code == 0
    assert (repo / ".gitignore").read_text() == ".env\n"
    assert os.stat(repo / ".env").st_mode & 0o077 == 0

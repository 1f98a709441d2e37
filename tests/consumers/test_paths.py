"""Where each agent's configuration is, on Linux, macOS and Windows, with the agents' own
environment overrides (rules checked with fake environments, on any OS)."""

from __future__ import annotations

from pathlib import PurePosixPath as P
from pathlib import PureWindowsPath as W

import pytest

from capit.consumers import (
    aider,
    claude,
    codex,
    continuedev,
    crush,
    goose,
    gptme,
    openclaw,
    opencode,
)

LINUX, MAC, WIN = "linux", "darwin", "win32"
UHOME, WHOME = "/home/u", "C:\\Users\\u"


@pytest.mark.parametrize("env, system, home, expected", [
    ({}, LINUX, UHOME, P("/home/u/.claude")),
    ({}, MAC, "/Users/u", P("/Users/u/.claude")),
    ({}, WIN, WHOME, W("C:/Users/u/.claude")),
    ({"CLAUDE_CONFIG_DIR": "/etc/cc"}, LINUX, UHOME, P("/etc/cc")),
    ({"CLAUDE_CONFIG_DIR": "~/work/cc"}, LINUX, UHOME, P("/home/u/work/cc")),
    ({"CLAUDE_CONFIG_DIR": "D:\\cc"}, WIN, WHOME, W("D:/cc")),
])
def test_claude(env, system, home, expected):
    assert claude.config_dir(env, home, system) == expected


@pytest.mark.parametrize("env, system, home, expected", [
    ({}, LINUX, UHOME, P("/home/u/.codex")),
    ({}, WIN, WHOME, W("C:/Users/u/.codex")),
    ({"CODEX_HOME": "/srv/codex"}, LINUX, UHOME, P("/srv/codex")),
])
def test_codex(env, system, home, expected):
    assert codex.codex_home(env, home, system) == expected


def test_codex_auth_command_per_os():
    assert codex.auth_command(P("/home/u/.codex/capit-openrouter.key"), LINUX) == \
        ("cat", ["/home/u/.codex/capit-openrouter.key"])
    command, args = codex.auth_command(W("C:/Users/o'brien/.codex/capit-openrouter.key"), WIN)
    assert command == "powershell"
    assert args[-1] == ("Get-Content -Raw -LiteralPath "
                        "'C:\\Users\\o''brien\\.codex\\capit-openrouter.key'")


@pytest.mark.parametrize("env, expected", [
    ({}, P("/home/u/.openclaw/openclaw.json")),
    ({"OPENCLAW_HOME": "/srv/bot"}, P("/srv/bot/.openclaw/openclaw.json")),
    ({"OPENCLAW_HOME": "/srv/bot", "OPENCLAW_STATE_DIR": "/var/oc"}, P("/var/oc/openclaw.json")),
    ({"OPENCLAW_STATE_DIR": "/var/oc", "OPENCLAW_CONFIG_PATH": "/etc/oc.json"},
     P("/etc/oc.json")),
])
def test_openclaw(env, expected):
    assert openclaw.config_path(env, UHOME, LINUX) == expected


@pytest.mark.parametrize("env, system, home, expected", [
    ({}, LINUX, UHOME, P("/home/u/.local/share/opencode")),
    ({}, MAC, "/Users/u", P("/Users/u/.local/share/opencode")),  # XDG layout on macOS too
    ({}, WIN, WHOME, W("C:/Users/u/.local/share/opencode")),
    ({"XDG_DATA_HOME": "/data"}, LINUX, UHOME, P("/data/opencode")),
])
def test_opencode(env, system, home, expected):
    assert opencode.data_dir(env, home, system) == expected


@pytest.mark.parametrize("env, system, home, expected", [
    ({}, LINUX, UHOME, P("/home/u/.config/goose")),
    ({}, MAC, "/Users/u", P("/Users/u/.config/goose")),
    ({"XDG_CONFIG_HOME": "/cfg"}, LINUX, UHOME, P("/cfg/goose")),
    ({"XDG_CONFIG_HOME": "relative"}, LINUX, UHOME, P("/home/u/.config/goose")),
    ({"GOOSE_PATH_ROOT": "/opt/g"}, LINUX, UHOME, P("/opt/g/config")),
    ({"GOOSE_PATH_ROOT": "rel/g"}, LINUX, UHOME, P("/home/u/.config/goose")),
    ({"APPDATA": "C:\\Users\\u\\AppData\\Roaming"}, WIN, WHOME,
     W("C:/Users/u/AppData/Roaming/Block/goose/config")),
])
def test_goose(env, system, home, expected):
    assert goose.config_dir(env, home, system) == expected


@pytest.mark.parametrize("env, system, home, expected", [
    ({}, LINUX, UHOME, P("/home/u/.continue")),
    ({}, WIN, WHOME, W("C:/Users/u/.continue")),
    ({"CONTINUE_GLOBAL_DIR": "/srv/cont"}, LINUX, UHOME, P("/srv/cont")),
])
def test_continue(env, system, home, expected):
    assert continuedev.global_dir(env, home, system) == expected


@pytest.mark.parametrize("env, system, home, expected", [
    ({}, LINUX, UHOME, P("/home/u/.config/crush")),
    ({}, WIN, WHOME, W("C:/Users/u/.config/crush")),
    ({"XDG_CONFIG_HOME": "/cfg"}, LINUX, UHOME, P("/cfg/crush")),
])
def test_crush(env, system, home, expected):
    assert crush.config_dir(env, home, system) == expected


def test_home_relative_files():
    assert aider.config_path(UHOME, LINUX) == P("/home/u/.aider.conf.yml")
    assert aider.config_path(WHOME, WIN) == W("C:/Users/u/.aider.conf.yml")
    assert gptme.config_dir(WHOME, WIN) == W("C:/Users/u/.config/gptme")
    assert gptme.config_dir("/Users/u", MAC) == P("/Users/u/.config/gptme")


def test_llm_user_path(monkeypatch, tmp_path):
    from capit.consumers import llm

    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    assert llm.user_dir() == tmp_path / "llm"

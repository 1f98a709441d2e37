"""Local consumer files in $CAPIT_HOME/consumers/, and the agents capit only instructs."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest
from conftest import assert_one_line_error, tree_snapshot

from capit import ledger
from capit.sandbox.state import key_hash

pytest_plugins = ("consumers.agentfix",)

SEND = '''
import json, pathlib

def send(key, platform, spend_cap):
    pathlib.Path(__file__).with_name("received.json").write_text(
        json.dumps({"key": key, "platform": platform, "cap": spend_cap}))
    return f"mytool is set up for {platform}"
'''

CLASS = '''
from capit.consumers import Consumer, Delivery


class Notes(Consumer):
    name = "notes"
    title = "notes"
    description = "writes nothing, says hello (a local test consumer)"

    def install(self, key, platform, *, assume_yes=False):
        return Delivery(self.name, f"{key.short_cap()} key noted", output="NOTED")
'''


@pytest.fixture
def consumers_dir(capit_home: Path) -> Path:
    directory = capit_home / "consumers"
    directory.mkdir(parents=True)
    os.chmod(capit_home, 0o700)
    return directory


def test_seed_style_send_function(install, consumers_dir, capit_home, sandbox):
    (consumers_dir / "mytool.py").write_text(SEND)
    result = install("mytool")
    assert result.code == 0, result
    assert result.stdout.strip() == "mytool is set up for openrouter"
    got = __import__("json").loads((consumers_dir / "received.json").read_text())
    [entry] = ledger.read(capit_home)
    assert key_hash(got["key"]) == entry["hash"] and entry["consumer"] == "mytool"
    assert (got["platform"], got["cap"]) == ("openrouter", "5.00")


def test_consumer_class_and_listing(run, install, consumers_dir):
    (consumers_dir / "notes.py").write_text(CLASS)
    listing = run("--consumers")
    assert listing.code == 0 and "notes" in listing.stdout and "claude" in listing.stdout
    result = install("notes")
    assert result.code == 0, result
    assert result.stdout.strip() == "NOTED"


def test_the_example_template_copied_into_the_consumers_folder(install, consumers_dir):
    from capit.consumers import example

    source = Path(example.__file__).read_text()
    (consumers_dir / "mine.py").write_text(source.replace('name = "example"', 'name = "mine"'))
    result = install("mine")
    assert result.code == 0, result
    assert "installed into mine" in result.stderr
    assert re.search(r"^Key: sk-or-v1-[0-9a-f]{64}$", result.stdout, re.M)


def test_broken_local_consumer_is_a_warning_naming_the_file(run, install, consumers_dir,
                                                           sandbox):
    (consumers_dir / "broken.py").write_text("raise RuntimeError('oops')\n")
    (consumers_dir / "empty.py").write_text("x = 1\n")
    listing = run("--consumers")
    assert listing.code == 0, listing
    assert f"{consumers_dir / 'broken.py'} failed to load: RuntimeError: oops" in listing.stderr
    assert f"{consumers_dir / 'empty.py'} defines neither" in listing.stderr
    result = install("broken")
    assert_one_line_error(result, 2)
    assert f"{consumers_dir / 'broken.py'} cannot be used" in result.stderr
    from capit import plugins

    plugins._broken.clear()
    result = install("empty")
    assert_one_line_error(result, 2)
    assert "defines neither a Consumer nor send()" in result.stderr
    assert sandbox.requests == []


def test_writable_by_others_is_ignored(install, consumers_dir, sandbox):
    path = consumers_dir / "mytool.py"
    path.write_text(SEND)
    path.chmod(0o666)
    result = install("mytool")
    assert_one_line_error(result, 2)
    assert "ignored: " in result.stderr and "writable by other users" in result.stderr
    assert sandbox.requests == []


def test_failing_send_revokes_the_key(install, consumers_dir, sandbox):
    (consumers_dir / "bad.py").write_text("def send(key, platform, cap):\n    raise OSError('x')\n")
    result = install("bad")
    assert_one_line_error(result, 14)
    assert "send() in" in result.stderr and sandbox.keys_snapshot() == []


# ------------------------------------------------------------------------------ instructions


@pytest.fixture
def clipboard(tmp_path, monkeypatch):
    """A fake xclip on PATH that records its argv and standard input (outside HOME)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "clip"
    script = bin_dir / "xclip"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        printf '%s\\n' "$@" > {log}.argv
        cat > {log}.stdin
    """))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    return log


@pytest.mark.parametrize("agent, expected", [
    ("cursor", ["Override OpenAI Base URL", "/api/v1/cursor", "OpenAI API Key"]),
    ("zed", ["agent: open settings", "OpenRouter", "api_url"]),
    ("cline", ["OpenAI Compatible", "Base URL"]),
])
def test_instruction_only_agents_write_nothing(install, home, capit_home, sandbox, clipboard,
                                               agent, expected):
    before = tree_snapshot(home)
    result = install(agent)
    assert result.code == 0, result
    assert tree_snapshot(home) == before
    [entry] = ledger.read(capit_home)
    key = clipboard.with_suffix(".stdin").read_text()
    assert key_hash(key) == entry["hash"]  # handed over on the clipboard tool's stdin
    assert key not in clipboard.with_suffix(".argv").read_text()
    assert clipboard.with_suffix(".argv").read_text().split() == ["-selection", "clipboard"]
    assert key not in result.output  # on the clipboard, so only masked on screen
    assert "capit did not write this key anywhere" in result.stdout
    for text in expected:
        assert text in result.stdout
    if agent == "cursor":
        assert f"{sandbox.base_url}/cursor" in result.stdout


def test_without_a_clipboard_tool_the_key_is_printed(install, home, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    before = tree_snapshot(home)
    result = install("cursor")
    assert result.code == 0, result
    assert re.search(r"^Key: sk-or-v1-[0-9a-f]{64}$", result.stdout, re.M)
    assert tree_snapshot(home) == before


def test_windsurf_cannot_use_the_key(install, sandbox):
    result = install("windsurf")
    assert_one_line_error(result, 2)
    assert "docs.windsurf.com" in result.stderr and sandbox.requests == []


def test_uninstalling_an_instruction_agent_revokes_and_says_what_to_do(install, uninstall,
                                                                      capit_home, tmp_path,
                                                                      monkeypatch, live_keys):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert install("zed").code == 0
    result = uninstall("zed")
    assert result.code == 0, result
    assert live_keys() == {}
    assert "capit did not write zed's key anywhere" in result.stderr

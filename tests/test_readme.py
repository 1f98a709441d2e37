"""The README documents what the code does: exit codes, variables, the two commands, CI."""

from __future__ import annotations

import re
from pathlib import Path

from capit.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_exit_code_is_documented():
    table = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", README, re.M))
    assert {int(c) for c in table} == {int(c) for c in ExitCode}


def test_readme_starts_with_the_two_commands_and_ci_runs_the_same_test_command():
    blocks = re.findall(r"```sh\n(.+?)\n```", README, re.S)
    demo, tests = blocks[0], blocks[1]
    assert "pip install ." in demo and "capit demo" in demo
    assert tests == "bash .ci/run"
    # the sentence under it names the command CI runs after installing the Debian packages
    after = README.split("```sh\nbash .ci/run\n```", 1)[1].lstrip("\n").split("\n\n", 1)[0]
    commands = [c for c in re.findall(r"`([^`]+)`", after) if "pytest" in c]
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && "
        ".venv/bin/python -m pytest"
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[0] in ci.splitlines()
    assert "export CAPIT_REQUIRE_PCSC=1" in ci
    for package in ("swig", "libpcsclite-dev", "pcscd", "vsmartcard-vpcd"):
        assert package in after and package in ci
    # the Debian packages are installed before pip runs
    assert ci.index("apt-get install") < ci.index(commands[0])


def test_environment_variables_used_by_capit_are_documented():
    used = set()
    for path in (ROOT / "capit").rglob("*.py"):
        used |= set(re.findall(r"CAPIT_[A-Z_]*[A-Z]", path.read_text()))
    assert "CAPIT_HOME" in used and "CAPIT_PASSPHRASE_FD" in used
    documented = set(re.findall(r"CAPIT_[A-Z_<>]*[A-Z>]", README))
    # the README writes the families as CAPIT_PASSPHRASE_FILE, `_FD`, `_COMMAND`
    for family in ("CAPIT_PASSPHRASE", "CAPIT_NEW_PASSPHRASE", "CAPIT_PIN"):
        if f"{family}_FILE" in documented:
            documented |= {family, f"{family}_FD", f"{family}_COMMAND"}
    if "CAPIT_<PLATFORM>_BASE_URL" in documented:
        documented |= {u for u in used if u.endswith("_BASE_URL")}
    assert sorted(used - documented) == []

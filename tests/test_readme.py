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
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci


def test_environment_variables_used_by_capit_are_documented():
    used = set()
    for path in (ROOT / "capit").rglob("*.py"):
        used |= set(re.findall(r"CAPIT_[A-Z_]*[A-Z]", path.read_text()))
    assert "CAPIT_HOME" in used and "CAPIT_PASSPHRASE_FD" in used
    documented = set(re.findall(r"CAPIT_[A-Z_<>]*[A-Z>]", README))
    # the README writes the families as CAPIT_PASSPHRASE_FILE, `_FD`, `_COMMAND`
    for family in ("CAPIT_PASSPHRASE", "CAPIT_NEW_PASSPHRASE"):
        if f"{family}_FILE" in documented:
            documented |= {family, f"{family}_FD", f"{family}_COMMAND"}
    if "CAPIT_<PLATFORM>_BASE_URL" in documented:
        documented |= {u for u in used if u.endswith("_BASE_URL")}
    assert sorted(used - documented) == []

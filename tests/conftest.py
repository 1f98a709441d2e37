"""Test isolation and shared fixtures.

* Every test runs with its own capit home and HOME, and with no CAPIT_* variables from
  the developer's shell (the simonw/llm pattern of an autouse isolating fixture).
* ``sandbox`` is the local OpenRouter-compatible provider on an ephemeral port; when the
  official OpenAPI document is present, every request capit sends to it is validated
  strictly against that document (unknown fields are refused with 400) and the test fails
  on any violation -- the strict simulator of the core issue.
* ``run`` invokes the CLI in-process the way a user would type it, through
  ``capit.cli.main`` (so exit codes and one-line errors are what a user sees).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

PASS = "correct horse battery staple"
# the sandbox's management key in every test (sealed into a vault once per session)
MGMT = "sk-or-v1-" + hashlib.sha256(b"capit test management key").hexdigest()
ENV_PREFIXES = ("CAPIT_", "OPENROUTER_", "ANTHROPIC_", "CLAUDE_", "CODEX_", "XDG_")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    capit_home = tmp_path / "capit-home"
    monkeypatch.setenv("CAPIT_HOME", str(capit_home))
    monkeypatch.setenv("CAPIT_HTTP_TIMEOUT", "5")
    from capit import http, plugins, secretinput
    from capit.cli import _common

    monkeypatch.setattr(http, "sleep", lambda s: None)
    secretinput._env_cache.clear()
    plugins._loaded.clear()
    plugins._broken.clear()
    yield capit_home
    _reset_verbose(_common)


@pytest.fixture
def capit_home(isolated):
    return isolated


@pytest.fixture
def sandbox(monkeypatch):
    from capit.sandbox.server import Sandbox

    sb = Sandbox(cost=Decimal("0.25"), management_key=MGMT).start()
    validator = None
    try:
        from openapi_contract import get_doc, make_request_validator, spec_available

        if spec_available():
            validator = make_request_validator(get_doc())
            sb.request_validator = validator
    except ImportError:
        pass
    monkeypatch.setenv("CAPIT_OPENROUTER_BASE_URL", sb.base_url)
    yield sb
    sb.stop()
    if validator is not None:
        assert validator.violations == [], "capit sent requests the OpenAPI document forbids"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __repr__(self) -> str:
        return f"Result(code={self.code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def invoke(*args: str, input: str | None = None, env: dict | None = None) -> Result:
    from capit import secretinput
    from capit.cli import _common, main

    secretinput._env_cache.clear()
    _reset_verbose(_common)
    runner = CliRunner()
    code = 0
    with runner.isolation(input=input, env=env) as (out, err, *_):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        stdout = out.getvalue().decode()
        stderr = err.getvalue().decode()
    return Result(code, stdout, stderr)


def _reset_verbose(common) -> None:
    """Each invocation starts quiet, as a new process would (-v attaches a fresh handler)."""
    common.state["verbose"] = False
    logger = logging.getLogger("capit")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


@pytest.fixture
def run():
    return invoke


@pytest.fixture(scope="session")
def vault_template(tmp_path_factory):
    """A capit home whose vault (passphrase PASS) holds MGMT, made once with `keys add`:
    unsealing stays real in every test; the Argon2 of creating a vault is paid once."""
    from capit.sandbox.server import Sandbox

    root = tmp_path_factory.mktemp("template")
    with pytest.MonkeyPatch.context() as mp, Sandbox(management_key=MGMT) as sb:
        for name in list(os.environ):
            if name.startswith(ENV_PREFIXES):
                mp.delenv(name)
        mp.setenv("HOME", str(root))
        mp.setenv("CAPIT_HOME", str(root / "capit"))
        mp.setenv("CAPIT_OPENROUTER_BASE_URL", sb.base_url)
        result = invoke("keys", "add", "openrouter", input=f"{MGMT}\n{PASS}\n")
        assert result.code == 0, result
    return root / "capit"


@pytest.fixture
def stored_key(vault_template, capit_home, sandbox):
    """The sandbox, with its management key in this test's vault (passphrase PASS)."""
    import shutil

    shutil.copytree(vault_template, capit_home)
    return sandbox


def tree_snapshot(root: Path) -> dict[str, str]:
    """Path -> sha256 of every file under root (to prove 'no change on disk')."""
    if not root.exists():
        return {}
    snap = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != ".lock":
            snap[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return snap


def assert_one_line_error(result: Result, code: int) -> None:
    assert result.code == code, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("capit: error:")]
    assert len(errors) == 1, result
    assert "Traceback" not in result.output, result


@pytest.fixture
def bench(monkeypatch):
    """Emulated hardware tokens under the real yubikit/ykman and python-fido2 code
    (tests/emulators/): plug devices in with bench.yubikey(), bench.fido2(), bench.nfc()."""
    pytest.importorskip("ykman", reason="yubikey-manager (the test extra) is not installed")
    pytest.importorskip("fido2", reason="fido2 (the test extra) is not installed")
    from emulators.bench import Bench

    return Bench(monkeypatch)

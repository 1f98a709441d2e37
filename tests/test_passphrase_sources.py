"""Where the vault passphrase comes from in scripts: a file, a file descriptor, a command.

Exactly one of CAPIT_PASSPHRASE_FILE / _FD / _COMMAND, else one line of piped stdin (or a
hidden prompt).  A variable holding the passphrase itself is never read.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest
from conftest import PASS, assert_one_line_error, tree_snapshot

from capit.errors import ExitCode
from capit.secret import Secret

NEW_PASS = "a brand new passphrase"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    from capit.stores.vault import create

    path = tmp_path_factory.mktemp("template") / "capit" / "vault.json"
    create(path, Secret(PASS))
    return path.read_bytes()


@pytest.fixture
def vault(capit_home, template):
    capit_home.mkdir(mode=0o700, exist_ok=True)
    path = capit_home / "vault.json"
    path.write_bytes(template)
    path.chmod(0o600)
    return path


def n_slots(path) -> int:
    import json

    return len(json.loads(path.read_text())["slots"])


def unlock(run, env: dict, input: str | None = None):
    """A command that has to open the vault (and adds a recovery slot when it does)."""
    return run("vault", "enroll", "recovery", input=input, env=env)


def command(*argv: str) -> str:
    return shlex.join(argv)


def py(code: str) -> str:
    return command(sys.executable, "-c", code)


def assert_refused(result, capit_home, before, *words):
    assert_one_line_error(result, ExitCode.USAGE)
    for word in words:
        assert word in result.stderr, result
    assert PASS not in result.output
    assert tree_snapshot(capit_home) == before


# ------------------------------------------------------------------------- each source


@pytest.mark.parametrize("content", [
    f"{PASS}\n", f"{PASS}", f"{PASS}\r\n", f"{PASS}\nsecond line is ignored\n",
])
def test_passphrase_file(run, vault, tmp_path, content):
    secret = tmp_path / "pass"
    secret.write_bytes(content.encode())
    result = unlock(run, {"CAPIT_PASSPHRASE_FILE": str(secret)}, input="")
    assert result.code == 0, result
    assert n_slots(vault) == 3
    assert PASS not in result.output


def test_passphrase_file_with_tilde(run, vault, tmp_path):
    (tmp_path / "home" / "pass").write_text(PASS + "\n")
    result = unlock(run, {"CAPIT_PASSPHRASE_FILE": "~/pass"})
    assert result.code == 0, result


def test_passphrase_fd(run, vault):
    r, w = os.pipe()
    try:
        os.write(w, f"{PASS}\n".encode())
        os.close(w)
        result = unlock(run, {"CAPIT_PASSPHRASE_FD": str(r)}, input="")
    finally:
        os.close(r)
    assert result.code == 0, result
    assert n_slots(vault) == 3


def test_passphrase_fd_with_the_installed_capit(vault):
    capit = shutil.which("capit", path=os.path.dirname(sys.executable))
    assert capit, "the capit console script is not installed in the venv"
    r, w = os.pipe()
    try:
        os.write(w, f"{PASS}\n".encode())
        os.close(w)
        proc = subprocess.run(
            [capit, "vault", "enroll", "recovery"], pass_fds=(r,), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "CAPIT_PASSPHRASE_FD": str(r)},
        )
    finally:
        os.close(r)
    assert proc.returncode == 0, proc
    assert n_slots(vault) == 3
    assert PASS not in proc.stdout + proc.stderr


@pytest.mark.parametrize("cmd", [
    command("printf", "%s\\n", PASS),
    py(f"print({PASS!r})"),
])
def test_passphrase_command(run, vault, cmd):
    result = unlock(run, {"CAPIT_PASSPHRASE_COMMAND": cmd}, input="")
    assert result.code == 0, result
    assert n_slots(vault) == 3


def test_passphrase_command_runs_without_a_shell(run, vault, tmp_path):
    marker = tmp_path / "marker"
    # with a shell these would create the marker; without one they are arguments
    cmd = (py(f"print({PASS!r})") + f" ; touch {marker}1 && touch {marker}2 "
           f"| tee {marker}3 $(touch {marker}4) `touch {marker}5` > {marker}6")
    result = unlock(run, {"CAPIT_PASSPHRASE_COMMAND": cmd}, input="")
    assert result.code == 0, result
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("marker")) == []


def test_passphrase_command_does_not_get_capits_stdin(run, vault, capit_home):
    """The command's stdin is /dev/null: piped secrets are not handed to it."""
    before = tree_snapshot(capit_home)
    cmd = py("import sys; print(sys.stdin.readline().strip())")
    result = unlock(run, {"CAPIT_PASSPHRASE_COMMAND": cmd}, input=f"{PASS}\n")
    assert_refused(result, capit_home, before, "CAPIT_PASSPHRASE_COMMAND", "empty")


def test_wrong_passphrase_from_a_file_is_one_attempt(run, vault, tmp_path, capit_home):
    secret = tmp_path / "pass"
    secret.write_text("not the passphrase\n")
    before = tree_snapshot(capit_home)
    result = unlock(run, {"CAPIT_PASSPHRASE_FILE": str(secret)}, input=f"{PASS}\n")
    assert_one_line_error(result, ExitCode.UNLOCK)
    assert tree_snapshot(capit_home) == before


# ------------------------------------------------------------------------- misuse


@pytest.mark.parametrize("names", [
    ("CAPIT_PASSPHRASE_FILE", "CAPIT_PASSPHRASE_FD"),
    ("CAPIT_PASSPHRASE_FILE", "CAPIT_PASSPHRASE_COMMAND"),
    ("CAPIT_PASSPHRASE_FD", "CAPIT_PASSPHRASE_COMMAND"),
])
def test_two_sources_are_an_error(run, vault, tmp_path, capit_home, names):
    secret = tmp_path / "pass"
    secret.write_text(PASS + "\n")
    values = {"CAPIT_PASSPHRASE_FILE": str(secret), "CAPIT_PASSPHRASE_FD": "0",
              "CAPIT_PASSPHRASE_COMMAND": py(f"print({PASS!r})")}
    before = tree_snapshot(capit_home)
    result = unlock(run, {n: values[n] for n in names}, input=f"{PASS}\n")
    assert_refused(result, capit_home, before, *names)


def _bad_sources(tmp_path):
    empty_first = tmp_path / "empty-first"
    empty_first.write_text(f"\n{PASS}\n")
    empty = tmp_path / "empty"
    empty.write_text("")
    latin1 = tmp_path / "latin1"
    latin1.write_bytes(b"caf\xe9 passphrase\n")
    huge = tmp_path / "huge"
    huge.write_bytes(b"x" * (65 * 1024))
    return {
        "missing file": ({"CAPIT_PASSPHRASE_FILE": str(tmp_path / "nope")}, "cannot read"),
        "directory": ({"CAPIT_PASSPHRASE_FILE": str(tmp_path)}, "cannot read"),
        "empty first line": ({"CAPIT_PASSPHRASE_FILE": str(empty_first)}, "empty"),
        "empty file": ({"CAPIT_PASSPHRASE_FILE": str(empty)}, "empty"),
        "not utf-8": ({"CAPIT_PASSPHRASE_FILE": str(latin1)}, "UTF-8"),
        "too large": ({"CAPIT_PASSPHRASE_FILE": str(huge)}, "too large"),
        "fd not a number": ({"CAPIT_PASSPHRASE_FD": "three"}, "file descriptor"),
        "fd closed": ({"CAPIT_PASSPHRASE_FD": "987"}, "fd 987"),
        "command fails": ({"CAPIT_PASSPHRASE_COMMAND": py("import sys; sys.exit(3)")},
                          "status 3"),
        "command missing": ({"CAPIT_PASSPHRASE_COMMAND": "/nonexistent/pass-helper get"},
                            "cannot run"),
        "command prints nothing": ({"CAPIT_PASSPHRASE_COMMAND": py("pass")}, "empty"),
        "command unbalanced quote": ({"CAPIT_PASSPHRASE_COMMAND": "printf '%s\\n"},
                                     "CAPIT_PASSPHRASE_COMMAND"),
        "command only spaces": ({"CAPIT_PASSPHRASE_COMMAND": "   "}, "empty"),
    }


@pytest.mark.parametrize("case", [
    "missing file", "directory", "empty first line", "empty file", "not utf-8", "too large",
    "fd not a number", "fd closed", "command fails", "command missing",
    "command prints nothing", "command unbalanced quote", "command only spaces",
])
def test_bad_source_is_one_clear_line(run, vault, tmp_path, capit_home, case):
    env, word = _bad_sources(tmp_path)[case]
    before = tree_snapshot(capit_home)
    # the correct passphrase on stdin must not be used as a fallback
    result = unlock(run, env, input=f"{PASS}\n")
    name = next(iter(env))
    assert_refused(result, capit_home, before, word)
    if case != "command only spaces":
        assert name in result.stderr, result


def test_variables_holding_the_passphrase_itself_are_ignored(run, vault, capit_home):
    lookalikes = {"CAPIT_PASSPHRASE": PASS, "CAPIT_VAULT_PASSPHRASE": PASS,
                  "CAPIT_PASSWORD": PASS, "CAPIT_NEW_PASSPHRASE": PASS}
    before = tree_snapshot(capit_home)
    # nothing piped: capit asks for it rather than take the variable
    result = unlock(run, lookalikes, input="")
    assert_one_line_error(result, ExitCode.USAGE)
    assert "passphrase" in result.stderr and "needed" in result.stderr
    # a wrong passphrase piped: the variable does not rescue it
    result = unlock(run, lookalikes, input="not the passphrase\n")
    assert_one_line_error(result, ExitCode.UNLOCK)
    assert tree_snapshot(capit_home) == before
    # the piped passphrase wins over a wrong one in the variable
    result = unlock(run, {"CAPIT_PASSPHRASE": "not the passphrase"}, input=f"{PASS}\n")
    assert result.code == 0, result


# ------------------------------------------------------------------------- new passphrases


def test_new_passphrase_sources(run, vault, tmp_path, capit_home):
    current = tmp_path / "current"
    current.write_text(PASS + "\n")
    env = {"CAPIT_PASSPHRASE_FILE": str(current),
           "CAPIT_NEW_PASSPHRASE_COMMAND": command("printf", "%s\\n", NEW_PASS)}
    result = run("vault", "enroll", "passphrase", input="", env=env)
    assert result.code == 0, result
    assert n_slots(vault) == 3
    # the new passphrase opens the vault (slot 3; slot 1 is tried first and fails)
    new = tmp_path / "new"
    new.write_text(NEW_PASS + "\n")
    result = unlock(run, {"CAPIT_PASSPHRASE_FILE": str(new)})
    assert result.code == 0, result

    # the NEW_ variables never unlock; two NEW_ sources are an error
    before = tree_snapshot(capit_home)
    result = unlock(run, {"CAPIT_NEW_PASSPHRASE_FILE": str(current)}, input="")
    assert_one_line_error(result, ExitCode.USAGE)
    result = run("vault", "enroll", "passphrase", input="", env={
        "CAPIT_PASSPHRASE_FILE": str(current), "CAPIT_NEW_PASSPHRASE_FILE": str(new),
        "CAPIT_NEW_PASSPHRASE_FD": "0"})
    assert_refused(result, capit_home, before, "CAPIT_NEW_PASSPHRASE_FILE",
                   "CAPIT_NEW_PASSPHRASE_FD")

"""Reading secrets: a hidden prompt, piped stdin, or the documented file/fd/command variables.

A secret is never taken from a command-line argument or from an environment variable
holding the value itself.  For scripts, passphrases come (in the conventions of borg and
restic) from exactly one of:

* ``CAPIT_PASSPHRASE_FILE`` -- a file whose first line is the passphrase;
* ``CAPIT_PASSPHRASE_FD`` -- an open file descriptor to read it from;
* ``CAPIT_PASSPHRASE_COMMAND`` -- a command (split like a shell would, run without a
  shell) whose first output line is the passphrase.

``CAPIT_NEW_PASSPHRASE_{FILE,FD,COMMAND}`` supply a new passphrase when one is enrolled,
and ``CAPIT_PIN_{FILE,FD,COMMAND}`` the PIN of a FIDO2 security key.
Otherwise, when stdin is not a terminal, each secret is one line of stdin, in the order
capit asks for them; on a terminal, capit prompts with echo off.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import click

from capit.errors import CapitError, ExitCode
from capit.secret import Secret
from capit.ui import stdin_is_tty

MAX_SECRET = 64 * 1024
_env_cache: dict[str, Secret] = {}


def _first_line(data: bytes, where: str) -> str:
    if len(data) > MAX_SECRET:
        raise CapitError(f"{where} is too large to hold a secret", ExitCode.USAGE)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CapitError(f"{where} is not UTF-8 text", ExitCode.USAGE) from None
    line = text.split("\n", 1)[0].rstrip("\r")
    if not line:
        raise CapitError(f"{where} holds no secret (the first line is empty)", ExitCode.USAGE)
    return line


def _from_env(prefix: str) -> Secret | None:
    names = [f"{prefix}_FILE", f"{prefix}_FD", f"{prefix}_COMMAND"]
    set_names = [n for n in names if os.environ.get(n)]
    if not set_names:
        return None
    if len(set_names) > 1:
        raise CapitError(f"set only one of {', '.join(set_names)}", ExitCode.USAGE)
    name = set_names[0]
    if name in _env_cache:
        return _env_cache[name]
    value = os.environ[name]
    if name.endswith("_FILE"):
        try:
            with open(os.path.expanduser(value), "rb") as fh:
                data = fh.read(MAX_SECRET + 1)
        except OSError as exc:
            raise CapitError(f"{name}: cannot read {value}: {exc.strerror}",
                             ExitCode.USAGE) from None
        secret = Secret(_first_line(data, f"{name} ({value})"))
    elif name.endswith("_FD"):
        try:
            fd = int(value)
        except ValueError:
            raise CapitError(f"{name} must be a file descriptor number", ExitCode.USAGE) from None
        try:
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(MAX_SECRET + 1)
        except OSError as exc:
            raise CapitError(f"{name}: cannot read fd {fd}: {exc.strerror}",
                             ExitCode.USAGE) from None
        secret = Secret(_first_line(data, f"{name} (fd {fd})"))
    else:
        try:
            argv = shlex.split(value)
        except ValueError as exc:  # e.g. an unbalanced quote
            raise CapitError(f"{name} cannot be parsed: {exc}", ExitCode.USAGE) from None
        if not argv:
            raise CapitError(f"{name} is empty", ExitCode.USAGE)
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CapitError(f"{name}: cannot run {argv[0]}: {exc}", ExitCode.USAGE) from None
        if proc.returncode != 0:
            raise CapitError(f"{name}: {argv[0]} exited with status {proc.returncode}",
                             ExitCode.USAGE)
        secret = Secret(_first_line(proc.stdout, f"the output of {name}"))
    _env_cache[name] = secret
    return secret


def _from_stdin(what: str) -> Secret:
    line = sys.stdin.readline()
    if not line:
        raise CapitError(
            f"{what} is needed: type it at a terminal, or pipe it on standard input",
            ExitCode.USAGE,
        )
    line = line.rstrip("\n").rstrip("\r")
    if not line:
        raise CapitError(f"{what} is empty", ExitCode.USAGE)
    return Secret(line)


def _prompt(prompt: str) -> Secret:
    try:
        value = click.prompt(prompt, hide_input=True, err=True, show_default=False,
                             default="", type=str)
    except (click.Abort, EOFError):
        raise CapitError("cancelled; nothing was changed", ExitCode.CANCELLED) from None
    return Secret(value)


def read_passphrase(prompt: str = "Vault passphrase", *, new: bool = False,
                    confirm: bool = False, min_length: int = 0) -> Secret:
    """A passphrase from the CAPIT_[NEW_]PASSPHRASE_* variables, stdin, or a hidden prompt.

    At a terminal, a passphrase shorter than ``min_length`` is asked for again; from the
    other sources the caller's own check refuses it.
    """
    secret = _from_env("CAPIT_NEW_PASSPHRASE" if new else "CAPIT_PASSPHRASE")
    if secret is not None:
        return secret
    if not stdin_is_tty():
        return _from_stdin(prompt.lower())
    while True:
        secret = _prompt(prompt)
        if not secret:
            click.echo("The passphrase cannot be empty.", err=True)
            continue
        if len(secret) < min_length:
            click.echo(f"Use at least {min_length} characters.", err=True)
            continue
        if not confirm:
            return secret
        again = _prompt("Repeat to confirm")
        if again == secret:
            return secret
        click.echo("The two entries differ; try again.", err=True)


def read_pin(prompt: str = "PIN of the security key") -> Secret:
    """A security key's PIN: CAPIT_PIN_FILE/_FD/_COMMAND, stdin when piped, or a hidden
    prompt -- never a command-line argument."""
    secret = _from_env("CAPIT_PIN")
    if secret is not None:
        return secret
    if not stdin_is_tty():
        return _from_stdin(prompt.lower())
    while True:
        secret = _prompt(prompt)
        if secret:
            return secret
        click.echo("The PIN cannot be empty.", err=True)


def read_key(prompt: str) -> Secret:
    """A master key or other credential: stdin when piped, else a hidden prompt."""
    if not stdin_is_tty():
        secret = _from_stdin(prompt.lower())
    else:
        secret = _prompt(prompt)
    value = secret.reveal().strip()
    if not value:
        raise CapitError(f"{prompt.lower()} is empty; nothing was changed", ExitCode.USAGE)
    if any(c.isspace() or not c.isprintable() for c in value):
        raise CapitError(f"{prompt.lower()} contains spaces or control characters",
                         ExitCode.USAGE)
    return Secret(value)


def read_value(prompt: str) -> str:
    """A value that is not secret (an API id, a URL): stdin when piped, else a prompt."""
    if not stdin_is_tty():
        line = sys.stdin.readline()
        if not line.strip():
            raise CapitError(f"{prompt.lower()} is needed on standard input", ExitCode.USAGE)
        return line.strip()
    try:
        return click.prompt(prompt, err=True, type=str).strip()
    except (click.Abort, EOFError):
        raise CapitError("cancelled; nothing was changed", ExitCode.CANCELLED) from None


def interactive() -> bool:
    return stdin_is_tty()

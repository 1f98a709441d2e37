"""How capit talks to the person at the terminal: stderr for messages, stdout for results.

Core code (stores, issuing) asks questions through these functions so that the rules are
the same everywhere: a confirmation reads a line (a TTY or a pipe); at end of input it is
refused with a hint about ``-y``.
"""

from __future__ import annotations

import sys

import click

from capit.errors import CapitError, ExitCode


def info(message: str) -> None:
    click.echo(message, err=True)


def warn(message: str) -> None:
    click.echo(f"capit: warning: {message}", err=True)


def result(text: str) -> None:
    """A result meant for stdout (a key, a listing, JSON)."""
    click.echo(text)


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def confirm(question: str, *, assume_yes: bool = False, default: bool = False) -> None:
    """Ask a yes/no question; raise CANCELLED unless the answer is yes."""
    if assume_yes:
        return
    try:
        ok = click.confirm(question, default=default, err=True)
    except (click.Abort, EOFError):
        if not stdin_is_tty():
            click.echo("", err=True)  # end the prompt's line: nothing was typed
        raise CapitError(
            f"{question.rstrip('?')}: no answer (nothing was changed); pass -y to confirm",
            ExitCode.CANCELLED,
        ) from None
    if not stdin_is_tty():
        click.echo("", err=True)  # a piped answer is not echoed; end the prompt's line
    if not ok:
        raise CapitError("cancelled; nothing was changed", ExitCode.CANCELLED)

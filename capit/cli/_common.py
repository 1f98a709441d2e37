"""Shared pieces of the command line: options, the JSON envelope, verbose logging."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pathlib import Path

F = TypeVar("F", bound=Callable[..., Any])

JSON_VERSION = 1  # bump when a --json document changes incompatibly (tests/test_json_contract.py)

state = {"verbose": False}


def enable_verbose() -> None:
    import logging

    from capit.secret import scrub

    class _ScrubbingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return scrub(super().format(record))

    if state["verbose"]:
        return
    state["verbose"] = True
    handler = logging.StreamHandler()
    handler.setFormatter(_ScrubbingFormatter("capit: %(message)s"))
    logger = logging.getLogger("capit")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _verbose_callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        enable_verbose()


def verbose_option(f: F) -> F:
    return click.option(
        "-v", "--verbose", is_flag=True, expose_value=False, is_eager=True,
        callback=_verbose_callback,
        help="Log each provider request (method, path, status, time; secrets masked) and "
             "show tracebacks of unexpected errors.",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print a versioned JSON document instead of text.")(f)


def yes_option(f: F) -> F:
    return click.option("-y", "--yes", "assume_yes", is_flag=True,
                        help="Answer yes to confirmations.")(f)


def emit_json(kind: str, data: Any) -> None:
    """``{"capit_json": 1, "kind": ..., "data": ...}`` on stdout."""
    import json

    doc = {"capit_json": JSON_VERSION, "kind": kind, "data": data}
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


def home() -> Path:
    from capit.paths import capit_home

    return capit_home()

"""Local consumers: ``$CAPIT_HOME/consumers/NAME.py`` makes ``--agent NAME`` work.

This keeps capit 0.1.0's "copy example.py and edit it" workflow without editing the
installed package.  A file may define

* a :class:`capit.consumers.Consumer` subclass (or an instance of one), or
* the 0.1.0 function ``send(key, platform, spend_cap) -> str``: it is called with the
  new key (a plain string), the platform's name and the cap (``"5.00"``); a returned
  string other than the key itself is printed.

The agent's name is the file's name.  A file that fails to load, defines nothing usable,
or that other users could have changed (group/world-writable, someone else's) is
skipped with a warning naming it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from capit import ui
from capit.consumers import Consumer, Delivery
from capit.errors import CapitError, ExitCode
from capit.platforms import IssuedKey, Platform

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")
_GROUP = "capit.consumers.local"


def consumers_dir() -> Path:
    from capit.paths import capit_home

    return capit_home() / "consumers"


def local_names() -> list[str]:
    """Names of the local consumer files (without loading them)."""
    try:
        entries = sorted(consumers_dir().glob("*.py"))
    except OSError:
        return []
    return [p.stem for p in entries if _NAME.match(p.stem)]


class SendConsumer(Consumer):
    """A capit 0.1.0 style consumer: a ``send(key, platform, spend_cap)`` function."""

    def __init__(self, name: str, func: Callable[..., Any], path: Path) -> None:
        self.name = name
        self.title = name
        self.description = f"local consumer: send() in {path.name}"
        self.func = func
        self.path = path

    def supports(self, platform: Platform) -> bool:
        return True

    def where(self, platform: Platform | None = None) -> str:
        from capit.configedit.changes import display

        return f"calls send() in {display(self.path)}"

    def install(self, key: IssuedKey, platform: Platform, *, assume_yes: bool = False) -> Delivery:
        from capit.configedit.changes import display

        value = key.secret.reveal()
        try:
            result = self.func(value, platform.name, format(key.amount, "f"))
        except Exception as exc:  # noqa: BLE001 - the person's own code: report, do not crash
            raise CapitError(f"send() in {display(self.path)} failed: "
                             f"{type(exc).__name__}: {exc}", ExitCode.DELIVERY) from None
        output = result if isinstance(result, str) and result.strip() and result != value \
            else None
        return Delivery(self.name, f"{key.short_cap()} {platform.name} key handed to "
                                   f"{self.name} ({display(self.path)})", output=output)


def _unsafe(path: Path) -> str | None:
    if os.name != "posix":
        return None
    for item in (path.parent, path):
        st = os.stat(item)
        if st.st_uid not in (os.geteuid(), 0):
            return f"{item} belongs to another user"
        if stat.S_IMODE(st.st_mode) & 0o022:
            return f"{item} is writable by other users"
    return None


def _find(module: Any, name: str) -> Consumer | None:
    for value in vars(module).values():
        if isinstance(value, Consumer):
            return value
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Consumer) and value is not Consumer \
                and value.__module__ == module.__name__:
            return value()
    send = getattr(module, "send", None)
    if callable(send):
        return SendConsumer(name, send, Path(module.__file__))
    return None


def load_local(name: str) -> Consumer | None:
    """The consumer in ``$CAPIT_HOME/consumers/NAME.py``; None (after a warning) if unusable."""
    from capit import plugins

    key = (_GROUP, name)
    if key in plugins._loaded:
        return plugins._loaded[key]
    if key in plugins._broken or not _NAME.match(name):
        return None
    path = consumers_dir() / f"{name}.py"
    if not path.is_file():
        return None
    problem = _unsafe(path)
    if problem:
        ui.warn(f"local consumer {path} ignored: {problem}")
        plugins._broken.add(key)
        return None
    module_name = f"capit_local_consumers.{name.replace('-', '_')}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        consumer = _find(module, name)
    except Exception as exc:  # noqa: BLE001 - any failure in the person's file is a warning
        ui.warn(f"local consumer {path} failed to load: {type(exc).__name__}: {exc}")
        plugins._broken.add(key)
        return None
    if consumer is None:
        ui.warn(f"local consumer {path} defines neither a Consumer nor send(); ignored")
        plugins._broken.add(key)
        return None
    if not consumer.name:
        consumer.name = name
    if consumer.name != name:
        ui.warn(f"local consumer {path} is named {consumer.name!r}; rename the file to "
                f"{consumer.name}.py (ignored)")
        plugins._broken.add(key)
        return None
    plugins._loaded[key] = consumer
    return consumer

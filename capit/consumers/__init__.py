"""The consumer interface: hand a freshly minted key to the tool that will use it.

A consumer installs a key (prints instructions, writes a config file), and can say where
a key went.  Built-ins live in this package; third parties register a
``capit.consumers.v1`` entry point naming a :class:`Consumer` subclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capit.errors import CapitError, ExitCode
from capit.platforms import IssuedKey, Platform

GROUP = "capit.consumers.v1"
BUILTIN: dict[str, str] = {
    "env": "capit.consumers.env:EnvConsumer",
    "example": "capit.consumers.example:ExampleConsumer",
}


@dataclass
class Delivery:
    consumer: str
    summary: str  # one line for the person: "$5.00 openrouter key installed into claude"
    output: str | None = None  # text meant for stdout (instructions, an export line)
    location: str | None = None  # where the key went, if it was written somewhere


class Consumer:
    name: str = ""
    title: str = ""
    description: str = ""
    platforms: tuple[str, ...] | None = None  # None: any platform with an env_var

    def supports(self, platform: Platform) -> bool:
        return self.platforms is None or platform.name in self.platforms

    def detected(self) -> bool | None:
        """Whether the tool looks installed here; None when that makes no sense."""
        return None

    def where(self, platform: Platform | None = None) -> str:
        """Where an installed key would go, for ``capit --consumers``."""
        return "prints it"

    def install(self, key: IssuedKey, platform: Platform, *, assume_yes: bool = False) -> Delivery:
        raise NotImplementedError


def _is_consumer(obj: Any) -> bool:
    return isinstance(obj, Consumer) and bool(obj.name)


def get_consumer(name: str) -> Consumer | None:
    from capit.plugins import load_plugin

    return load_plugin(GROUP, name, BUILTIN, _is_consumer)


def consumer_names() -> list[str]:
    from capit.plugins import plugin_names

    return plugin_names(GROUP, BUILTIN)


def require_consumer(name: str) -> Consumer:
    consumer = get_consumer(name)
    if consumer is None:
        raise CapitError(
            f"unknown agent {name!r} (known: {', '.join(consumer_names())}); "
            "see: capit --consumers",
            ExitCode.USAGE,
        )
    return consumer

"""The consumer interface: hand a freshly minted key to the tool that will use it.

A consumer installs a key (writes it where the tool reads it, or prints exact steps), says
where a key went, and can take it out again (``capit uninstall --agent NAME``).  Built-ins
live in this package, one module per agent; third parties register a
``capit.consumers.v1`` entry point naming a :class:`Consumer` subclass or instance, and
quick local consumers are ``.py`` files in ``$CAPIT_HOME/consumers/``
(see docs/new-consumer.md).  A consumer that fails to load is a warning, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from capit.errors import CapitError, ExitCode
from capit.platforms import IssuedKey, Platform

GROUP = "capit.consumers.v1"
BUILTIN: dict[str, str] = {
    "claude": "capit.consumers.claude:ClaudeCode",
    "codex": "capit.consumers.codex:Codex",
    "openclaw": "capit.consumers.openclaw:OpenClaw",
    "opencode": "capit.consumers.opencode:OpenCode",
    "aider": "capit.consumers.aider:Aider",
    "continue": "capit.consumers.continuedev:Continue",
    "llm": "capit.consumers.llm:Llm",
    "goose": "capit.consumers.goose:Goose",
    "crush": "capit.consumers.crush:Crush",
    "gptme": "capit.consumers.gptme:Gptme",
    "cursor": "capit.consumers.instructions:Cursor",
    "windsurf": "capit.consumers.instructions:Windsurf",
    "zed": "capit.consumers.instructions:Zed",
    "cline": "capit.consumers.instructions:Cline",
    "env": "capit.consumers.env:EnvConsumer",
    "dotenv": "capit.consumers.dotenv:DotenvConsumer",
    "example": "capit.consumers.example:ExampleConsumer",
}


@dataclass
class Delivery:
    consumer: str
    summary: str  # one line for the person: "$5.00 openrouter key installed into claude"
    output: str | None = None  # text meant for stdout (instructions, an export line)
    location: str | None = None  # where the key went, if it was written somewhere
    record: dict[str, Any] | None = None  # what was written where (no secrets), for the ledger
    notes: list[str] = field(default_factory=list)  # things to tell the person (stderr)
    undo: Callable[[], None] | None = field(default=None, repr=False, compare=False)


@dataclass
class UninstallPlan:
    """What ``capit uninstall`` will change for one consumer (shown before it is done)."""

    changes: list[Any] = field(default_factory=list)  # capit.configedit.changes.Change
    notes: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)


class Consumer:
    name: str = ""
    title: str = ""
    description: str = ""
    platforms: tuple[str, ...] | None = None  # None: any platform with an env_var
    instructions_only: bool = False  # prints steps; writes nothing

    def supports(self, platform: Platform) -> bool:
        return self.platforms is None or platform.name in self.platforms

    def unsupported_reason(self, platform: Platform) -> str:
        """Why this consumer cannot use ``platform``'s keys (one clause)."""
        usable = ", ".join(self.platforms or ()) or "no platform capit knows"
        return f"it takes keys of {usable} only"

    def check(self, platform: Platform) -> None:
        """Refuse before anything is minted when delivery cannot work here (CapitError)."""

    def detected(self) -> bool | None:
        """Whether the tool looks installed here; None when that makes no sense."""
        return None

    def where(self, platform: Platform | None = None) -> str:
        """Where an installed key would go, for ``capit --consumers``."""
        return "prints it"

    def install(self, key: IssuedKey, platform: Platform, *, assume_yes: bool = False) -> Delivery:
        raise NotImplementedError

    def rollback(self, delivery: Delivery) -> None:
        """Undo a completed :meth:`install` (a later step of the same run failed)."""
        if delivery.undo is not None:
            delivery.undo()

    def plan_uninstall(self, records: list[dict[str, Any]]) -> UninstallPlan:
        """What to change to take out the keys of these deliveries (ledger records)."""
        return UninstallPlan(notes=[
            f"capit did not write {self.name}'s key anywhere; if you set it up by hand, "
            "remove it there too (it no longer works)"])


def _is_consumer(obj: Any) -> bool:
    return isinstance(obj, Consumer) and bool(obj.name)


def get_consumer(name: str) -> Consumer | None:
    from capit.plugins import load_plugin

    if name in BUILTIN:
        return load_plugin(GROUP, name, BUILTIN, _is_consumer)
    from capit.consumers.local import load_local

    local = load_local(name)
    if local is not None:
        return local
    return load_plugin(GROUP, name, BUILTIN, _is_consumer)


def consumer_names() -> list[str]:
    from capit.consumers.local import local_names
    from capit.plugins import plugin_names

    names = plugin_names(GROUP, BUILTIN)
    extra = [n for n in local_names() if n not in names]
    return names[:len(BUILTIN)] + sorted(extra + names[len(BUILTIN):])


def require_consumer(name: str) -> Consumer:
    consumer = get_consumer(name)
    if consumer is None:
        from capit.consumers.local import consumers_dir, local_names

        if name in local_names():
            raise CapitError(f"agent {name!r}: {consumers_dir() / (name + '.py')} cannot be "
                             "used (see the warning above)", ExitCode.USAGE)
        raise CapitError(
            f"unknown agent {name!r} (known: {', '.join(consumer_names())}); "
            "see: capit --consumers",
            ExitCode.USAGE,
        )
    return consumer

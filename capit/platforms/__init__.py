"""The platform interface: one adapter per provider that can mint capped keys.

An adapter creates, lists and deletes child keys with a master credential and maps the
provider's errors to :class:`capit.errors.CapitError`.  It never prints and never prompts.
Built-ins live in this package; third parties register a ``capit.platforms.v1`` entry
point naming a :class:`Platform` subclass (see docs/new-platform.md).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from capit.errors import CapitError, ExitCode
from capit.money import describe_cap
from capit.secret import Secret

GROUP = "capit.platforms.v1"
BUILTIN: dict[str, str] = {
    "openrouter": "capit.platforms.openrouter:OpenRouter",
}


@dataclass(frozen=True)
class MasterField:
    """One value ``capit keys add`` asks for (the key itself, an API id, a proxy URL)."""

    name: str
    prompt: str
    secret: bool = True


@dataclass
class MasterKey:
    platform: str
    secret: Secret
    meta: dict[str, str] = field(default_factory=dict)
    store: str = "vault"


@dataclass
class KeyRequest:
    name: str
    amount: Decimal
    period: str  # monthly | weekly | daily | none
    expires_at: dt.datetime | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class IssuedKey:
    platform: str
    secret: Secret
    hash: str
    name: str
    amount: Decimal
    period: str
    expires_at: str | None
    created_at: str | None
    unit: str = "USD"

    def short_cap(self) -> str:
        """``$5.00`` (the seed's wording), or ``100 credits`` for platforms counting calls."""
        if self.unit == "USD":
            from capit.money import format_usd

            return format_usd(self.amount)
        return f"{self.amount:f}".rstrip("0").rstrip(".") + f" {self.unit}"

    def describe_cap(self) -> str:
        return describe_cap(self.amount, self.period) if self.unit == "USD" else (
            f"{self.amount:g} {self.unit}" + ("" if self.period == "none" else f"/{self.period}")
        )


@dataclass
class RemoteKey:
    hash: str
    name: str
    limit: Decimal | None
    period: str
    usage: Decimal | None
    created_at: str | None
    expires_at: str | None
    disabled: bool
    remaining: Decimal | None = None

    @property
    def status(self) -> str:
        if self.disabled:
            return "disabled"
        if self.expires_at:
            try:
                when = dt.datetime.fromisoformat(self.expires_at.replace("Z", "+00:00"))
                if when.tzinfo is None:
                    when = when.replace(tzinfo=dt.timezone.utc)
                if when <= dt.datetime.now(dt.timezone.utc):
                    return "expired"
            except ValueError:
                pass
        return "active"


class Platform:
    """Base class of platform adapters."""

    name: str = ""
    title: str = ""
    cap_unit: str = "USD"
    cap_help: str = "a spending cap in US dollars"
    env_var: str | None = None  # the variable agents read this platform's key from
    default_base_url: str = ""
    console_url: str = ""  # where a person creates a master key
    master_label: str = "master key"

    def base_url(self) -> str:
        env = f"CAPIT_{self.name.upper().replace('-', '_')}_BASE_URL"
        return (os.environ.get(env) or self.default_base_url).rstrip("/")

    def master_fields(self) -> list[MasterField]:
        return [MasterField("key", f"{self.title} {self.master_label}", secret=True)]

    def validate_master(self, master: MasterKey) -> str:
        """Check the credential with the provider; return a short description of it."""
        raise NotImplementedError

    def issue(self, master: MasterKey, request: KeyRequest) -> IssuedKey:
        raise NotImplementedError

    def list_keys(self, master: MasterKey) -> list[RemoteKey]:
        raise NotImplementedError

    def delete_key(self, master: MasterKey, key_hash: str) -> None:
        raise NotImplementedError

    def resolve_key(self, keys: list[RemoteKey], query: str) -> RemoteKey:
        """A key by full hash, exact name, or unique hash prefix (at least 6 characters)."""
        q = query.strip()
        exact = [k for k in keys if k.hash.lower() == q.lower()]
        if exact:
            return exact[0]
        matches = {k.hash: k for k in keys if k.name == q}
        if len(q) >= 6:
            for k in keys:
                if k.hash.lower().startswith(q.lower()):
                    matches[k.hash] = k
        if not matches:
            hint = " (a hash prefix needs at least 6 characters)" if len(q) < 6 else ""
            raise CapitError(
                f"no {self.name} key matches {q!r}{hint}; see: capit keys list -r {self.name}",
                ExitCode.NOT_FOUND,
            )
        if len(matches) > 1:
            listed = "; ".join(f"{k.hash[:16]} {k.name}" for k in matches.values())
            raise CapitError(
                f"{q!r} matches {len(matches)} {self.name} keys ({listed}); "
                "give more of the hash; nothing was deleted",
                ExitCode.AMBIGUOUS,
            )
        return next(iter(matches.values()))


def _is_platform(obj: Any) -> bool:
    return isinstance(obj, Platform) and bool(obj.name)


def get_platform(name: str) -> Platform | None:
    from capit.plugins import load_plugin

    return load_plugin(GROUP, name, BUILTIN, _is_platform)


def platform_names() -> list[str]:
    from capit.plugins import plugin_names

    return plugin_names(GROUP, BUILTIN)


def require_platform(name: str) -> Platform:
    platform = get_platform(name)
    if platform is None:
        raise CapitError(
            f"unknown platform {name!r} (known: {', '.join(platform_names())}); "
            "see: capit --platforms",
            ExitCode.USAGE,
        )
    return platform

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
    "unkey": "capit.platforms.unkey:Unkey",
    "litellm": "capit.platforms.litellm:LiteLLM",
}

#: the platform-dependent options of ``capit PLATFORM AMOUNT`` (KeyRequest.options keys)
OPTION_FLAGS: dict[str, str] = {
    "period": "--period",
    "refill": "--refill",
    "rate": "--rate",
    "models": "--models",
    "rpm": "--rpm",
    "tpm": "--tpm",
}
RECHECK_WAITS = (1.0, 2.0)  # after an unanswered create, look again for the key this long

#: options every platform receives and may ignore (``prefix``: the raw --prefix value)
COMMON_OPTIONS = frozenset({"prefix"})


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
        return f"{self.amount:,f} {self.unit}"  # a count: "1,000 credits" (never "1 credits")

    def describe_cap(self) -> str:
        """``$5.00/month``; ``100 credits/month``; ``100 credits total``."""
        if self.unit == "USD":
            return describe_cap(self.amount, self.period)
        return describe_count(self.amount, self.unit, self.period)


def describe_count(amount: Decimal, unit: str, period: str | None) -> str:
    """A cap that counts something other than money: ``1,000 credits/month``."""
    from capit.money import PERIOD_SUFFIX

    return f"{amount:,f} {unit}{PERIOD_SUFFIX.get(period or 'none', ' total')}"


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
    unit: str = "USD"  # what limit, usage and remaining count: USD, or e.g. credits
    details: str = ""  # platform-specific extras for the listing (rate limits, refill day)

    def cap_text(self) -> str:
        """The cap for ``capit keys list -r``: ``$5.00/month``, ``100 credits/month``."""
        if self.limit is None:
            if self.unit != "USD" and self.remaining is not None:
                return f"{self.unit}, no refill"  # a one-off pool: see usage_text
            return "no cap"
        if self.unit == "USD":
            return describe_cap(self.limit, self.period)
        return describe_count(self.limit, self.unit, self.period)

    def usage_text(self) -> str:
        """What has been used or is left: ``used $1.25``, ``37 credits left``."""
        if self.unit == "USD":
            from capit.money import format_usd

            return f"used {format_usd(self.usage)}" if self.usage is not None else ""
        if self.remaining is not None:
            return f"{self.remaining:,f} {self.unit} left"
        return f"used {self.usage:,f} {self.unit}" if self.usage is not None else ""

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
    cap_note: str = ""  # shown after the cap when it is not money, e.g. "(not dollars)"
    #: platform-dependent options (OPTION_FLAGS keys) this platform takes
    options: frozenset[str] = frozenset({"period"})

    def base_url_env(self) -> str:
        return f"CAPIT_{self.name.upper().replace('-', '_')}_BASE_URL"

    def base_url(self) -> str:
        return (os.environ.get(self.base_url_env()) or self.default_base_url).rstrip("/")

    def describe_base_url(self) -> str:
        """Where the API is, for ``capit --platforms``."""
        return self.base_url()

    def parse_cap(self, text: str) -> Decimal:
        """AMOUNT of ``capit PLATFORM AMOUNT``; dollars unless the platform counts something
        else (Unkey: credits).  Bad input is a usage error."""
        from capit.money import parse_amount

        return parse_amount(text)

    def check_request(self, request: KeyRequest) -> None:
        """Refuse (usage error) options this platform does not take, before anything is sent.

        Subclasses call this, then check their own options' values and may normalise
        ``request.options`` and ``request.period`` in place.
        """
        for name, value in request.options.items():
            if name in COMMON_OPTIONS or name in self.options or value in (None, [], ()):
                continue
            flag = OPTION_FLAGS.get(name, name)
            takers = ", ".join(sorted(self._platforms_taking(name)))
            where = f" (it is for: {takers})" if takers else ""
            raise CapitError(
                f"{flag} does not apply to {self.name}{where}; nothing was sent",
                ExitCode.USAGE,
            )

    @staticmethod
    def _platforms_taking(option: str) -> list[str]:
        out = []
        for name in BUILTIN:
            plat = get_platform(name)
            if plat is not None and option in plat.options:
                out.append(name)
        return out

    def master_fields(self) -> list[MasterField]:
        return [MasterField("key", f"{self.title} {self.master_label}", secret=True)]

    # -- helpers shared by the adapters ------------------------------------------------

    @property
    def provider(self) -> str:
        """How messages name the provider: ``OpenRouter``, ``the LiteLLM proxy``."""
        return self.title or self.name

    def common_failure(self, exc: Any, doing: str, said: str) -> CapitError:
        """The mapping of an HTTP error status every provider shares (404, 429, 5xx, rest).

        ``exc`` is a :class:`capit.http.ProviderHTTPError`; ``said`` the provider's own
        words, formatted like `` (404: Resource not found)``.
        """
        status = exc.status
        if status == 404:
            return CapitError(f"{self.provider} could not {doing}: not found{said}",
                              ExitCode.NOT_FOUND)
        if status == 429:
            after = exc.retry_after
            when = f"in {after:.0f} s" if after is not None and after < 86400 else "later"
            return CapitError(f"{self.provider} is rate limiting capit{said}; try again {when}",
                              ExitCode.RATE_LIMITED)
        if status >= 500:
            return CapitError(f"{self.provider} failed to {doing}{said}; try again later",
                              ExitCode.PROVIDER)
        return CapitError(f"{self.provider} refused to {doing}{said}", ExitCode.PROVIDER)

    @staticmethod
    def gone_on_retry(exc: Any) -> bool:
        """A delete whose retry got 404: the unanswered first attempt most likely did it."""
        return exc.status == 404 and exc.attempts > 1

    @staticmethod
    def attempted(action: Any) -> bool:
        """Run ``action()`` (a best-effort clean-up, e.g. a delete); False if it failed."""
        try:
            action()
        except CapitError:
            return False
        return True

    def untrusted(self, problem: str, deleted: bool, key_ref: str) -> CapitError:
        """The error for a created key whose cap is not the one asked for."""
        fate = "it was deleted" if deleted else (
            f"capit could not delete it; delete it with: capit keys delete {self.name} {key_ref}")
        return CapitError(f"{self.provider} created a key capit cannot trust ({problem}); {fate}",
                          ExitCode.PROVIDER)

    def reconcile(self, reason: str, name: str, look: Any) -> CapitError:
        """After a create got no usable answer: find the key by its unique name, never
        create again.  ``look()`` lists the keys with that name (a CapitError if it cannot).
        """
        from capit import http

        who = self.provider
        try:
            found = look()
        except CapitError as err:
            return CapitError(
                f"{who} gave no usable answer to the create ({reason}) and capit could not "
                f"check whether key {name!r} exists ({err.message}); look for it with: "
                f"capit keys list -r {self.name}",
                ExitCode.UNCERTAIN,
            )
        for wait in RECHECK_WAITS:
            if found:
                break
            http.sleep(wait)  # a create still in flight at the provider may land a moment later
            try:
                found = look()
            except CapitError:
                break
        if not found:
            return CapitError(
                f"{who} gave no usable answer to the create ({reason}); no key named {name!r} "
                f"appeared, so most likely nothing was created; check with 'capit keys list "
                f"-r {self.name}' before trying again",
                ExitCode.UNCERTAIN,
            )
        ref = self.short_ref(found[0].hash)
        return CapitError(
            f"{who} gave no usable answer to the create ({reason}) but created key {name!r} "
            f"({ref}); its secret never arrived, so it is unusable and was not retried; "
            f"delete it with: capit keys delete {self.name} {ref}",
            ExitCode.UNCERTAIN,
        )

    def short_ref(self, key_hash: str) -> str:
        """How messages refer to a key: the first 16 characters of its hash."""
        return key_hash[:16]

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

"""A wrapper for secret strings whose repr, str and format never show the value.

Python cannot reliably wipe a ``str`` from memory; capit keeps secrets in as few places
as it can and never writes them anywhere but the vault's ciphertext and the agent config
the user asked for.  Every :class:`Secret` registers its value so that log records and
tracebacks can be scrubbed of it (:func:`scrub`), as a second line of defence.
"""

from __future__ import annotations

import threading

_registry: set[str] = set()
_lock = threading.Lock()


def mask(value: str) -> str:
    """``sk-or-v1-0e6f...1c96`` -> ``sk-or-v1-…1c96``: the visible prefix and last 4."""
    if len(value) < 12:
        return "…"
    prefix = ""
    parts = value.split("-")
    if len(parts) > 1:
        # keep short type prefixes such as sk-, sk-or-v1-, sk-ant- ...
        head = []
        for part in parts[:-1]:
            if len(part) <= 4:
                head.append(part)
            else:
                break
        rest = value[len("-".join(head)) + 1:]
        # ... but only in front of a long random part: a secret that is all short groups
        # (a recovery key "abcd-efgh-...") or a dashed phrase must not be shown group by group
        if head and len(head) <= 3 and len(parts[len(head)]) > 4 and len(rest) >= 16:
            prefix = "-".join(head) + "-"
    return f"{prefix}…{value[-4:]}"


class Secret:
    """A secret string. ``reveal()`` is the only way to get the value back."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value
        if len(value) >= 6:
            with _lock:
                _registry.add(value)

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        return mask(self._value)

    def __repr__(self) -> str:
        return f"Secret({self.masked()!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        raise TypeError("a Secret cannot be pickled")


def scrub(text: str) -> str:
    """Replace every registered secret value in ``text`` by its masked form."""
    with _lock:
        values = sorted(_registry, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, mask(value))
    return text

"""Shared plumbing of the provider shapes the sandbox serves beside OpenRouter's.

Each one (Unkey v2 under ``/unkey``, a LiteLLM proxy under ``/litellm``) is a
:class:`MountedService`: the sandbox hands it every request below its mount point and
turns the :class:`Answer` it returns into the HTTP response.  A service validates
requests with its own ``request_validator`` (tests install one built from the
provider's OpenAPI document), answers queued faults (``Sandbox.faults``, matched on the
full path, e.g. ``/unkey/v2/keys.createKey``) in its provider's error shape, and keeps
every answer it gave in ``exchanges`` so a test can check them against that document.

Standard library only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: (method, path below the mount point, query, body) -> a message for a violation, or None
MountValidator = Callable[[str, str, dict[str, list[str]], object], "str | None"]


@dataclass
class Answer:
    """One response: JSON ``payload`` (or ``raw`` bytes), status and extra headers."""

    status: int
    payload: object = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    raw: bytes | None = None
    delay: float = 0.0
    drop: bool = False  # close the connection instead of answering (after processing)


@dataclass(frozen=True)
class Exchange:
    """A request a service answered and what it answered (no credentials)."""

    method: str
    path: str  # below the mount point, e.g. /v2/keys.createKey
    query: dict[str, list[str]]
    body: object
    status: int
    payload: object
    content_type: str


class ProviderError(Exception):
    """Raised inside a service: answered in that provider's error shape."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


class MountedService:
    """Base of the services mounted below a path prefix of the sandbox."""

    mount: str = ""

    def __init__(self, lock: threading.RLock, clock: Callable[[], datetime]) -> None:
        self._lock = lock
        self.now = clock
        self.request_validator: MountValidator | None = None
        self.exchanges: list[Exchange] = []
        self.create_delay: float = 0.0  # seconds before answering a create
        self.drop_after_create: bool = False  # create the key, then drop the connection

    # -- the provider's shapes (subclasses) --------------------------------------------

    def error_answer(self, error: ProviderError) -> Answer:
        raise NotImplementedError

    def route(self, method: str, path: str, query: dict[str, list[str]], body: object,
              headers: dict[str, str]) -> Answer:
        raise NotImplementedError

    def invalid_json(self) -> ProviderError:
        return ProviderError(400, "the request body is not valid JSON")

    # -- the request cycle --------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: object,
               bad_json: bool, headers: dict[str, str], canned: Callable[[], Any]) -> Answer:
        """Validate, answer a queued fault if one matches, else route; record the answer."""
        answer = self._answer(method, path, query, body, bad_json, headers, canned)
        with self._lock:
            self.exchanges.append(Exchange(method, path, query, body, answer.status,
                                           answer.payload, answer.content_type))
        return answer

    def _answer(self, method: str, path: str, query: dict[str, list[str]], body: object,
                bad_json: bool, headers: dict[str, str], canned: Callable[[], Any]) -> Answer:
        validator = self.request_validator
        if validator is not None and not bad_json:
            problem = validator(method, path, query, body)
            if problem:
                return self.error_answer(ProviderError(400, problem, source="request_validator"))
        fault = canned()
        if fault is not None:
            if fault.raw is not None:
                answer = Answer(fault.status, None, dict(fault.headers),
                                "text/html; charset=utf-8", raw=fault.raw)
            elif fault.body is None:
                answer = self.error_answer(ProviderError(fault.status, "canned fault"))
                answer.headers.update(fault.headers)
            else:
                headers = {k: v for k, v in fault.headers.items()
                           if k.lower() != "content-type"}
                types = [v for k, v in fault.headers.items() if k.lower() == "content-type"]
                answer = Answer(fault.status, fault.body, headers,
                                types[0] if types else "application/json")
            answer.delay = fault.delay
            return answer
        if bad_json:
            return self.error_answer(self.invalid_json())
        try:
            return self.route(method, path, query, body, headers)
        except ProviderError as error:
            return self.error_answer(error)

    def created(self, answer: Answer) -> Answer:
        """Apply ``create_delay`` / ``drop_after_create`` to the answer of a create."""
        with self._lock:
            answer.delay = float(self.create_delay)
            answer.drop = bool(self.drop_after_create)
        return answer


def bearer(headers: dict[str, str]) -> tuple[str, str | None]:
    """('ok', token), ('missing', None) or ('malformed', None) for the Authorization header."""
    value = headers.get("authorization")
    if value is None or not value.strip():
        return "missing", None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
        return "malformed", None
    return "ok", token.strip()

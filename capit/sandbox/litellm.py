"""A LiteLLM-proxy-shaped key service for the sandbox, mounted at ``/litellm``.

capit's LiteLLM proxy URL for it is ``http://HOST:PORT/litellm``.  What it serves,
following LiteLLM 1.106 (shared/reference/unkey-litellm.md, section 2):

* ``POST /key/generate``, ``POST /key/delete``, ``GET /key/info``, ``GET /key/list``
  (``page``/``size`` paging, ``key_alias`` / ``key_hash`` filters,
  ``return_full_object``), authenticated with the proxy's master key as
  ``Authorization: Bearer`` or ``x-litellm-api-key``;
* billed ``POST /chat/completions`` and ``/v1/chat/completions`` for virtual keys: each
  call adds the sandbox's per-call cost to the key's ``spend``; once ``spend`` has
  reached ``max_budget`` the key is refused with LiteLLM's ``budget_exceeded`` error
  (HTTP 422, as in 1.106) until ``budget_duration`` resets it; ``models`` and
  ``rpm_limit`` are enforced too, and expired or blocked keys are refused;
* LiteLLM's error envelope ``{"error": {"message", "type", "param", "code"}}`` and
  FastAPI's 422 ``{"detail": [...]}`` for bodies that do not validate (fields this
  sandbox does not implement are refused that way too);
* ``database = False`` replays the answers a proxy without a database gives (observed
  live): virtual keys are then unavailable.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from capit.sandbox import completions
from capit.sandbox.mount import Answer, MountedService, ProviderError
from capit.sandbox.state import ApiError

MOUNT = "/litellm"
KEY_TYPES = ("llm_api", "management", "read_only", "default")
_DURATION = re.compile(r"^(\d+)(s|m|h|d|w|mo)$")


def hash_token(token: str) -> str:
    """LiteLLM's hash of a key (``token`` in its tables): sha256 hex of the whole key."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_duration(text: str, start: datetime) -> datetime:
    """``30s``, ``30m``, ``30h``, ``30d``, ``2w``, ``1mo`` after ``start``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(text)
    count, unit = int(match.group(1)), match.group(2)
    if unit == "mo":
        month = start.month - 1 + count
        year, month = start.year + month // 12, month % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day)
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    return start + timedelta(seconds=count * seconds)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat()


# ------------------------------------------------------------------ request bodies


def _is(kind: str, value: object) -> bool:
    if value is None:
        return True  # every field the sandbox takes is Optional[...] in LiteLLM
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    if kind == "strlist":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "object":
        return isinstance(value, dict)
    raise AssertionError(kind)


GENERATE_FIELDS = {
    "key_alias": "str", "duration": "str", "models": "list", "max_budget": "number",
    "budget_duration": "str", "rpm_limit": "int", "tpm_limit": "int", "metadata": "object",
    "key": "str", "user_id": "str", "team_id": "str", "blocked": "bool",
    "soft_budget": "number", "max_parallel_requests": "int", "tags": "strlist",
    "key_type": "str",
}
DELETE_FIELDS = {"keys": "strlist", "key_aliases": "strlist"}


def validation_error(loc: list[Any], msg: str, kind: str, value: object = None) -> ProviderError:
    return ProviderError(422, msg, detail=[{"type": kind, "loc": loc, "msg": msg,
                                            "input": value}])


def check_body(body: object, fields: dict[str, str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise validation_error(["body"], "Input should be a valid dictionary or object to "
                                         "extract fields from", "model_attributes_type", body)
    for name, value in body.items():
        kind = fields.get(name)
        if kind is None:
            raise validation_error(["body", name], "capit sandbox: this field is not "
                                                   "implemented", "extra_forbidden", value)
        if not _is(kind, value):
            raise validation_error(["body", name], f"Input should be a valid {kind}",
                                   f"{kind}_type", value)
    return body


# --------------------------------------------------------------------------- state


@dataclass
class VirtualKey:
    token: str  # the hash
    key_name: str
    key_alias: str | None
    created_at: datetime
    max_budget: Decimal | None = None
    budget_duration: str | None = None
    budget_reset_at: datetime | None = None
    expires: datetime | None = None
    models: list[Any] = field(default_factory=list)
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    team_id: str | None = None
    blocked: bool | None = None
    key_type: str = "default"
    tags: list[str] | None = None
    soft_budget: float | None = None
    max_parallel_requests: int | None = None
    spend: Decimal = Decimal(0)
    minute: tuple[int, int] = (0, 0)  # (minute number, requests in it) for rpm_limit

    def public(self) -> dict[str, Any]:
        """The key as ``/key/list?return_full_object=true`` and ``/key/info`` show it."""
        return {
            "token": self.token, "key_name": self.key_name, "key_alias": self.key_alias,
            "spend": float(self.spend), "max_budget": _money(self.max_budget),
            "expires": iso(self.expires), "models": list(self.models),
            "user_id": self.user_id, "team_id": self.team_id, "metadata": dict(self.metadata),
            "tpm_limit": self.tpm_limit, "rpm_limit": self.rpm_limit,
            "max_parallel_requests": self.max_parallel_requests,
            "budget_duration": self.budget_duration,
            "budget_reset_at": iso(self.budget_reset_at), "blocked": self.blocked,
            "key_type": self.key_type, "created_at": iso(self.created_at),
            "updated_at": iso(self.created_at),
        }


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class LiteLLMService(MountedService):
    """In-memory LiteLLM proxy: a master key, virtual keys with budgets, billed calls."""

    mount = MOUNT

    def __init__(self, lock: threading.RLock, clock: Callable[[], datetime],
                 cost: Callable[[], Decimal]) -> None:
        super().__init__(lock, clock)
        self.master_key = "sk-" + secrets.token_urlsafe(24)
        self.cost = cost
        self.database = True  # False: answer as a proxy without DATABASE_URL does
        self.keys: dict[str, VirtualKey] = {}
        #: per request: (path, User-Agent, had x-litellm-api-key, had Authorization)
        self.auth_seen: list[tuple[str, str, bool, bool]] = []

    # -- helpers for tests ---------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        """Every virtual key (full objects), oldest first."""
        with self._lock:
            now = self.now()
            out = []
            for key in self.keys.values():
                self._reset(key, now)
                out.append(key.public())
            return out

    # -- the provider's shapes -----------------------------------------------------------

    def error_answer(self, error: ProviderError) -> Answer:
        if "detail" in error.extra:  # FastAPI's request validation error
            return Answer(error.status, {"detail": error.extra["detail"]})
        kind = error.extra.get("type") or {
            400: "bad_request_error", 401: "auth_error", 403: "auth_error",
            404: "not_found_error", 429: "rate_limit_error", 500: "internal_server_error",
        }.get(error.status, "internal_server_error")
        param = error.extra.get("param")
        payload = {"error": {"message": error.message, "type": kind,
                             "param": None if param is None else str(param),
                             "code": str(error.status)}}
        return Answer(error.status, payload, dict(error.extra.get("headers") or {}))

    def invalid_json(self) -> ProviderError:
        return validation_error(["body", 0], "JSON decode error", "json_invalid")

    # -- routing -------------------------------------------------------------------------

    def route(self, method: str, path: str, query: dict[str, list[str]], body: object,
              headers: dict[str, str]) -> Answer:
        routes: dict[str, tuple[str, Callable[..., Answer]]] = {
            "/key/generate": ("POST", self._generate),
            "/key/delete": ("POST", self._delete),
            "/key/info": ("GET", self._info),
            "/key/list": ("GET", self._list),
            "/chat/completions": ("POST", self._chat),
            "/v1/chat/completions": ("POST", self._chat),
        }
        found = routes.get(path)
        if found is None:
            return Answer(404, {"detail": "Not Found"})
        if method != found[0]:
            return Answer(405, {"detail": "Method Not Allowed"}, {"Allow": found[0]})
        token = headers.get("x-litellm-api-key") or _bearer(headers.get("authorization"))
        with self._lock:
            self.auth_seen.append((path, headers.get("user-agent", ""),
                                   "x-litellm-api-key" in headers, "authorization" in headers))
            return found[1](token, query, body)

    def _admin(self, token: str | None, route: str) -> None:
        if not token:
            raise ProviderError(401, "Authentication Error, No api key passed in.",
                                type="auth_error", param="None")
        if not self.database and token != self.master_key:
            raise ProviderError(400, "No connected db.", type="no_db_connection", param="None")
        if token == self.master_key:
            return
        if hash_token(token) in self.keys:
            raise ProviderError(401, "Authentication Error - Only proxy admin can be used to "
                                     "generate, delete, update info for new keys/users/teams. "
                                     f"Route={route}.", type="auth_error", param="None")
        raise ProviderError(401, "Authentication Error, Invalid proxy server token passed. "
                                 "Unable to find token in cache or "
                                 "`LiteLLM_VerificationTokenTable`",
                            type="auth_error", param="None")

    def _lookup(self, value: str) -> VirtualKey | None:
        return self.keys.get(value) or self.keys.get(hash_token(value))

    # -- endpoints -----------------------------------------------------------------------

    def _generate(self, token: str | None, query: dict[str, list[str]], body: object) -> Answer:
        self._admin(token, "/key/generate")
        if not self.database:
            raise ProviderError(500, "{'error': 'DB not connected. This endpoint needs a "
                                     "database; set DATABASE_URL to a PostgreSQL connection "
                                     "string (postgresql://...)'}")
        data = check_body(body, GENERATE_FIELDS)
        now = self.now()
        alias = data.get("key_alias")
        if alias is not None and any(k.key_alias == alias for k in self.keys.values()):
            raise ProviderError(400, f"Unique key aliases across all keys are required. Key "
                                     f"alias '{alias}' already exists.", param="key_alias")
        raw = data.get("key") or "sk-" + secrets.token_urlsafe(16)
        if not raw.startswith("sk-"):
            raise ProviderError(400, "Invalid key format. LiteLLM Virtual Key must start with "
                                     "'sk-'.", param="key")
        if hash_token(raw) in self.keys:
            raise ProviderError(400, "Key already exists.", param="key")
        expires = budget_reset = None
        try:
            if data.get("duration") is not None:
                expires = parse_duration(data["duration"], now)
            if data.get("budget_duration") is not None:
                budget_reset = parse_duration(data["budget_duration"], now)
        except ValueError as exc:
            raise ProviderError(400, f"Invalid duration {exc}: use e.g. 30s, 30m, 30h, 30d, "
                                     "1w or 1mo") from None
        key_type = data.get("key_type") or "default"
        if key_type not in KEY_TYPES:
            raise validation_error(["body", "key_type"], "Input should be 'llm_api', "
                                   "'management', 'read_only' or 'default'", "enum", key_type)
        budget = data.get("max_budget")
        key = VirtualKey(
            token=hash_token(raw), key_name=f"sk-...{raw[-4:]}", key_alias=alias,
            created_at=now, max_budget=None if budget is None else Decimal(str(budget)),
            budget_duration=data.get("budget_duration"), budget_reset_at=budget_reset,
            expires=expires, models=list(data.get("models") or []),
            rpm_limit=data.get("rpm_limit"), tpm_limit=data.get("tpm_limit"),
            metadata=dict(data.get("metadata") or {}), user_id=data.get("user_id"),
            team_id=data.get("team_id"), blocked=data.get("blocked"), key_type=key_type,
            tags=data.get("tags"), soft_budget=data.get("soft_budget"),
            max_parallel_requests=data.get("max_parallel_requests"),
        )
        self.keys[key.token] = key
        answer = {
            "key": raw, "token_id": key.token, "key_alias": alias, "key_name": key.key_name,
            "expires": iso(expires), "max_budget": budget,
            "budget_duration": key.budget_duration, "models": list(key.models),
            "metadata": dict(key.metadata), "rpm_limit": key.rpm_limit,
            "tpm_limit": key.tpm_limit, "spend": 0.0, "user_id": key.user_id,
            "team_id": key.team_id, "blocked": key.blocked, "key_type": key_type,
            "tags": key.tags, "max_parallel_requests": key.max_parallel_requests,
            "created_at": iso(now), "updated_at": iso(now), "litellm_budget_table": None,
        }
        return self.created(Answer(200, answer))

    def _delete(self, token: str | None, query: dict[str, list[str]], body: object) -> Answer:
        self._admin(token, "/key/delete")
        if not self.database:
            raise ProviderError(500, "Not connected to DB!")
        data = check_body(body, DELETE_FIELDS)
        keys, aliases = data.get("keys") or [], data.get("key_aliases") or []
        if not keys and not aliases:
            raise ProviderError(400, "Either keys or key_aliases must be provided.",
                                param="keys")
        found = []
        for value in keys:
            key = self._lookup(value)
            if key is None:
                raise ProviderError(404, f"Failed to delete all keys. Key not found: "
                                         f"{value[:12]}...", type="not_found_error",
                                    param="keys")
            found.append(key)
        for alias in aliases:
            matches = [k for k in self.keys.values() if k.key_alias == alias]
            if not matches:
                raise ProviderError(404, f"Failed to delete all keys. No key with alias "
                                         f"'{alias}'.", type="not_found_error",
                                    param="key_aliases")
            found += matches
        for key in found:
            self.keys.pop(key.token, None)
        return Answer(200, {"deleted_keys": keys + aliases})

    def _info(self, token: str | None, query: dict[str, list[str]], body: object) -> Answer:
        self._admin(token, "/key/info")
        if not self.database:
            raise ProviderError(500, "Database not connected. Connect a database to your "
                                     "proxy - https://docs.litellm.ai/docs/simple_proxy"
                                     "#managing-auth---virtual-keys")
        wanted = (query.get("key") or [None])[0]
        key = self._lookup(wanted) if wanted else None
        if key is None:
            raise ProviderError(404, "Key not found in database.", type="not_found_error",
                                param="key")
        self._reset(key, self.now())
        info = key.public()
        info["status"] = self._status(key)
        return Answer(200, {"key": wanted, "info": info})

    def _list(self, token: str | None, query: dict[str, list[str]], body: object) -> Answer:
        self._admin(token, "/key/list")
        if not self.database:
            raise ProviderError(500, "Authentication Error, Database not connected")

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        try:
            page = int(one("page") or 1)
            size = int(one("size") or 10)
        except ValueError:
            raise validation_error(["query", "page"], "Input should be a valid integer",
                                   "int_parsing") from None
        if page < 1:
            raise validation_error(["query", "page"], "Input should be greater than or equal "
                                   "to 1", "greater_than_equal", page)
        if not 1 <= size <= 100:
            raise validation_error(["query", "size"], "Input should be between 1 and 100",
                                   "less_than_equal", size)
        now = self.now()
        keys = list(self.keys.values())
        if one("key_alias") is not None:
            keys = [k for k in keys if k.key_alias == one("key_alias")]
        if one("key_hash") is not None:
            keys = [k for k in keys if k.token == one("key_hash")]
        keys.sort(key=lambda k: k.created_at, reverse=one("sort_order") != "asc")
        total = len(keys)
        chosen = keys[(page - 1) * size: page * size]
        full = one("return_full_object") == "true"
        for key in chosen:
            self._reset(key, now)
        return Answer(200, {
            "keys": [k.public() if full else k.token for k in chosen],
            "total_count": total, "current_page": page,
            "total_pages": max(1, -(-total // size)),
        })

    def _chat(self, token: str | None, query: dict[str, list[str]], body: object) -> Answer:
        if not token:
            raise ProviderError(401, "Authentication Error, No api key passed in.",
                                type="auth_error", param="None")
        key = self.keys.get(hash_token(token))
        if key is None:
            raise ProviderError(401, "Authentication Error, Invalid proxy server token passed.",
                                type="auth_error", param="None")
        now = self.now()
        self._reset(key, now)
        if key.blocked:
            raise ProviderError(401, "Authentication Error, Key is blocked.", type="auth_error",
                                param="None")
        if key.expires is not None and key.expires <= now:
            raise ProviderError(401, f"Authentication Error - Expired Key. Key Expiry time "
                                     f"{iso(key.expires)} and current time {iso(now)}",
                                type="expired_key", param="None")
        try:
            request = completions.check_chat_request(body)
        except ApiError as exc:
            raise ProviderError(400, exc.message) from None
        model = request.get("model")
        if key.models and model not in key.models:
            raise ProviderError(401, "Authentication Error, API Key not allowed to access "
                                     f"model. This token can only access models={key.models}. "
                                     f"Tried to access {model}",
                                type="key_model_access_denied", param="model")
        if key.max_budget is not None and key.spend >= key.max_budget:
            raise ProviderError(422, f"Budget has been exceeded! Current cost: "
                                     f"{float(key.spend)}, Max budget: "
                                     f"{float(key.max_budget)}", type="budget_exceeded")
        minute = int(now.timestamp() // 60)
        used = key.minute[1] if key.minute[0] == minute else 0
        if key.rpm_limit is not None and used >= key.rpm_limit:
            raise ProviderError(429, f"Rate limit exceeded for key: rpm_limit={key.rpm_limit}",
                                type="rate_limit_error", headers={"Retry-After": "60"})
        key.minute = (minute, used + 1)
        cost = Decimal(self.cost())
        key.spend += cost
        if request.get("stream"):
            return Answer(200, None, {"Cache-Control": "no-cache"}, "text/event-stream",
                          raw=completions.chat_stream(request, cost))
        return Answer(200, completions.chat_result(request, cost))

    # -- budgets -------------------------------------------------------------------------

    def _reset(self, key: VirtualKey, now: datetime) -> None:
        """A budget period that has ended starts again at zero spend."""
        if key.budget_duration is None or key.budget_reset_at is None:
            return
        while key.budget_reset_at <= now:
            key.spend = Decimal(0)
            key.budget_reset_at = parse_duration(key.budget_duration, key.budget_reset_at)

    def _status(self, key: VirtualKey) -> str:
        if key.blocked:
            return "revoked"
        if key.expires is not None and key.expires <= self.now():
            return "expired"
        return "active"


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None

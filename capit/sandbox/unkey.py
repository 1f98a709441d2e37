"""An Unkey-v2-shaped key service for the sandbox, mounted at ``/unkey``.

capit's Unkey base URL for it is ``http://HOST:PORT/unkey``; capit then calls
``POST /unkey/v2/keys.createKey`` and so on, exactly as it calls ``https://api.unkey.com``.
What it serves, following Unkey's API v2 (shared/reference/unkey-litellm.md, section 1):

* ``keys.createKey``, ``keys.getKey``, ``keys.whoami``, ``keys.deleteKey`` (soft or
  permanent), ``apis.getApi``, ``apis.listKeys`` (cursor paging, ``revalidateKeysCache``),
  ``keys.verifyKey`` and ``GET /v2/liveness``;
* the envelopes ``{"meta": {"requestId"}, "data"}`` and ``{"meta", "error": {title, detail,
  status, type}}`` (plus ``errors: [{location, message}]`` on 400);
* Unkey's quirks: a missing or malformed ``Authorization`` header is **400**
  (``authentication/missing`` / ``malformed``), an unknown root key 401, missing
  permissions 403 (404 for ``apis.listKeys`` and ``keys.whoami``, so that existence does
  not leak), unknown body fields 400, and 412 when an API is not set up for keys or a
  recoverable key is asked for (this sandbox has no vault);
* enforcement: ``keys.verifyKey`` spends the key's credits (1 unless ``credits.cost``
  says otherwise) and answers ``USAGE_EXCEEDED`` once they are gone, applies the key's
  ``autoApply`` rate limits (fixed windows), ``EXPIRED`` and ``DISABLED``; refills
  (daily at 00:00 UTC, monthly on ``refillDay`` or the month's last day) reset
  ``remaining`` to the refill amount, as Unkey's refill job does.

The sandbox starts with one API (``api_id``) and one root key (``root_key``) holding
``api.*.create_key``, ``read_key``, ``read_api``, ``update_key``, ``delete_key`` and
``verify_key``; :meth:`UnkeyService.add_root_key` and :meth:`UnkeyService.add_api` make
others for tests.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from capit.sandbox.mount import Answer, MountedService, ProviderError, bearer

MOUNT = "/unkey"
DOCS = "https://unkey.com/docs/errors/unkey/"
MAX_EXPIRES = 4102444800000
ALL_ACTIONS = ("create_key", "read_key", "read_api", "update_key", "delete_key", "verify_key")

_ID = re.compile(r"^[a-zA-Z0-9_]+$")
_EXTERNAL = re.compile(r"^[a-zA-Z0-9_.-]+$")
_PERMISSION = re.compile(r"^[a-zA-Z0-9_:\-.*]+$")
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 412: "Precondition Failed",
    422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
    503: "Service Unavailable",
}
_CODES = {
    400: "application/invalid_input", 401: "authentication/key_not_found",
    403: "authorization/insufficient_permissions", 404: "data/key_not_found",
    405: "application/method_not_allowed", 409: "data/conflict", 410: "data/gone",
    412: "application/precondition_failed", 422: "application/unprocessable_entity",
    429: "application/rate_limited", 500: "application/unexpected_error",
    503: "application/service_unavailable",
}


def b58(nbytes: int) -> str:
    number = int.from_bytes(secrets.token_bytes(nbytes), "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = _B58[rest] + out
    return out or "1"


def new_id(prefix: str) -> str:
    return f"{prefix}_{b58(16)}"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# ------------------------------------------------------------------ body validation
# A small re-statement of the request schemas of the endpoints served (Unkey validates
# bodies against its OpenAPI document before any handler runs; unknown fields are 400).

Check = Callable[[object, str], list[dict[str, str]]]


def _err(location: str, message: str) -> list[dict[str, str]]:
    return [{"location": location, "message": message}]


def _string(min_len: int = 0, max_len: int | None = None,
            pattern: re.Pattern[str] | None = None) -> Check:
    def check(value: object, where: str) -> list[dict[str, str]]:
        if not isinstance(value, str):
            return _err(where, "must be a string")
        if len(value) < min_len:
            return _err(where, f"must be at least {min_len} characters long")
        if max_len is not None and len(value) > max_len:
            return _err(where, f"must be at most {max_len} characters long")
        if pattern is not None and not pattern.match(value):
            return _err(where, f"must match the pattern {pattern.pattern}")
        return []
    return check


def _integer(minimum: int | None = None, maximum: int | None = None,
             nullable: bool = False) -> Check:
    def check(value: object, where: str) -> list[dict[str, str]]:
        if value is None and nullable:
            return []
        if isinstance(value, bool) or not isinstance(value, int):
            return _err(where, "must be an integer")
        if minimum is not None and value < minimum:
            return _err(where, f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            return _err(where, f"must be at most {maximum}")
        return []
    return check


def _boolean(value: object, where: str) -> list[dict[str, str]]:
    return [] if isinstance(value, bool) else _err(where, "must be a boolean")


def _enum(*choices: str) -> Check:
    def check(value: object, where: str) -> list[dict[str, str]]:
        if value not in choices:
            return _err(where, f"must be one of {', '.join(choices)}")
        return []
    return check


def _free_object(max_props: int) -> Check:
    def check(value: object, where: str) -> list[dict[str, str]]:
        if not isinstance(value, dict):
            return _err(where, "must be an object")
        if len(value) > max_props:
            return _err(where, f"must have at most {max_props} properties")
        return []
    return check


def _array(item: Check, max_items: int) -> Check:
    def check(value: object, where: str) -> list[dict[str, str]]:
        if not isinstance(value, list):
            return _err(where, "must be an array")
        if len(value) > max_items:
            return _err(where, f"must have at most {max_items} items")
        out: list[dict[str, str]] = []
        for i, element in enumerate(value):
            out += item(element, f"{where}[{i}]")
        return out
    return check


def _object(fields: dict[str, Check], required: tuple[str, ...] = (),
            closed: bool = True) -> Check:
    def check(value: object, where: str) -> list[dict[str, str]]:
        if not isinstance(value, dict):
            return _err(where, "must be an object")
        out: list[dict[str, str]] = []
        for name in required:
            if name not in value:
                out += _err(f"{where}.{name}", "is required")
        for name, element in value.items():
            if name in fields:
                out += fields[name](element, f"{where}.{name}")
            elif closed:
                out += [{"location": f"{where}.{name}",
                         "message": f"additional property '{name}' is not allowed",
                         "fix": "remove it; see the request schema of this endpoint"}]
        return out
    return check


_REFILL = _object({"interval": _enum("daily", "monthly"), "amount": _integer(1),
                   "refillDay": _integer(1, 31)}, ("interval", "amount"))
_CREDITS = _object({"remaining": _integer(0, nullable=True), "refill": _REFILL}, ("remaining",))
_RATELIMIT = _object({"name": _string(3, 128), "limit": _integer(1), "duration": _integer(1000),
                      "autoApply": _boolean}, ("name", "limit", "duration", "autoApply"))

SCHEMAS: dict[str, Check] = {
    "/v2/keys.createKey": _object({
        "apiId": _string(3, 255, _ID), "prefix": _string(1, 16, _ID), "name": _string(1, 255),
        "byteLength": _integer(16, 255), "externalId": _string(1, 255, _EXTERNAL),
        "meta": _free_object(100), "roles": _array(_string(1, 255), 100),
        "permissions": _array(_string(1, 128, _PERMISSION), 1000),
        "expires": _integer(0, MAX_EXPIRES), "credits": _CREDITS,
        "ratelimits": _array(_RATELIMIT, 50), "enabled": _boolean, "recoverable": _boolean,
    }, ("apiId",)),
    "/v2/keys.getKey": _object({"keyId": _string(3, 255, _ID), "decrypt": _boolean}, ("keyId",)),
    "/v2/keys.whoami": _object({"key": _string(1, 512)}, ("key",)),
    "/v2/keys.deleteKey": _object({"keyId": _string(3, 255, _ID), "permanent": _boolean},
                                  ("keyId",)),
    "/v2/apis.getApi": _object({"apiId": _string(8, 255, _ID)}, ("apiId",)),
    "/v2/apis.listKeys": _object({
        "apiId": _string(1), "limit": _integer(1, 100), "cursor": _string(0),
        "externalId": _string(1), "decrypt": _boolean, "revalidateKeysCache": _boolean,
    }, ("apiId",)),
    "/v2/keys.verifyKey": _object({
        "key": _string(1, 512), "tags": _array(_string(1, 512), 20),
        "permissions": _string(1, 1000),
        "credits": _object({"cost": _integer(0, 10**12)}, ("cost",)),
        "ratelimits": _array(_object({"name": _string(3, 255), "cost": _integer(0),
                                      "limit": _integer(0), "duration": _integer(0)},
                                     ("name",), closed=False), 50),
        "migrationId": _string(0, 256),
    }, ("key",)),
}


# --------------------------------------------------------------------------- state


@dataclass
class Ratelimit:
    id: str
    name: str
    limit: int
    duration: int
    auto_apply: bool
    windows: dict[int, int] = field(default_factory=dict)  # window number -> uses

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "limit": self.limit,
                "duration": self.duration, "autoApply": self.auto_apply}


@dataclass
class UnkeyKey:
    key_id: str
    api_id: str
    secret_hash: str
    start: str
    name: str | None
    created_at: int
    seq: int
    meta: dict[str, Any] | None = None
    external_id: str | None = None
    expires: int | None = None
    enabled: bool = True
    has_credits: bool = False
    remaining: int | None = None
    refill: dict[str, Any] | None = None
    last_refill: int = 0
    ratelimits: list[Ratelimit] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)
    updated_at: int | None = None
    last_used_at: int | None = None
    deleted: bool = False

    def public(self) -> dict[str, Any]:
        """``KeyResponseData`` as keys.getKey / apis.listKeys return it."""
        data: dict[str, Any] = {"keyId": self.key_id, "start": self.start,
                                "enabled": self.enabled, "createdAt": self.created_at,
                                "permissions": list(self.permissions), "roles": list(self.roles)}
        if self.name is not None:
            data["name"] = self.name
        if self.meta is not None:
            data["meta"] = dict(self.meta)
        if self.updated_at is not None:
            data["updatedAt"] = self.updated_at
        if self.last_used_at is not None:
            data["lastUsedAt"] = self.last_used_at
        if self.expires is not None:
            data["expires"] = self.expires
        if self.has_credits:
            credits: dict[str, Any] = {"remaining": self.remaining}
            if self.refill is not None:
                credits["refill"] = dict(self.refill)
            data["credits"] = credits
        if self.external_id is not None:
            data["identity"] = {"id": "id_" + sha256(self.external_id)[:20],
                                "externalId": self.external_id, "meta": {}, "ratelimits": []}
        if self.ratelimits:
            data["ratelimits"] = [r.public() for r in self.ratelimits]
        return data


@dataclass
class RootKey:
    permissions: set[str]

    def allows(self, action: str, api_id: str) -> bool:
        return f"api.*.{action}" in self.permissions or \
            f"api.{api_id}.{action}" in self.permissions

    def allows_anywhere(self, action: str) -> bool:
        return any(p.startswith("api.") and p.endswith(f".{action}") for p in self.permissions)


def refill_moment(refill: dict[str, Any], now: datetime) -> datetime:
    """The latest scheduled refill at or before ``now`` (00:00 UTC of its day)."""
    today = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    if refill["interval"] == "daily":
        return today

    def on(year: int, month: int) -> datetime:
        last = calendar.monthrange(year, month)[1]
        return today.replace(year=year, month=month, day=min(int(refill["refillDay"]), last))

    this_month = on(today.year, today.month)
    if this_month <= now:
        return this_month
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return on(year, month)


class UnkeyService(MountedService):
    """In-memory Unkey: APIs, root keys with permissions, keys with credits."""

    mount = MOUNT

    def __init__(self, lock: threading.RLock, clock: Callable[[], datetime]) -> None:
        super().__init__(lock, clock)
        self.apis: dict[str, dict[str, Any]] = {}
        self.root_keys: dict[str, RootKey] = {}
        self.keys: dict[str, UnkeyKey] = {}
        self._by_hash: dict[str, str] = {}
        self._seq = 0
        #: > 0: apis.listKeys hides keys younger than this many seconds unless
        #: ``revalidateKeysCache`` is true (Unkey's list is served from a cache)
        self.list_cache_seconds: float = 0.0
        self.api_id = self.add_api("capit-sandbox")
        self.root_key = self.add_root_key([f"api.*.{a}" for a in ALL_ACTIONS])

    # -- helpers for tests and the CLI -----------------------------------------------

    def add_api(self, name: str, *, keyspace: bool = True) -> str:
        """A new API; ``keyspace=False``: not set up for keys (createKey answers 412)."""
        api_id = "api_" + b58(12)
        with self._lock:
            self.apis[api_id] = {"name": name, "keyspace": keyspace}
        return api_id

    def add_root_key(self, permissions: list[str]) -> str:
        token = "unkey_" + b58(24)
        with self._lock:
            self.root_keys[token] = RootKey(set(permissions))
        return token

    def snapshot(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every key as keys.getKey would show it, oldest first (``deleted`` added)."""
        with self._lock:
            now = self.now()
            out = []
            for key in sorted(self.keys.values(), key=lambda k: k.seq):
                if key.deleted and not include_deleted:
                    continue
                self._refill(key, now)
                out.append({**key.public(), "deleted": key.deleted, "apiId": key.api_id})
            return out

    def verify(self, key: str, cost: int = 1) -> dict[str, Any]:
        """What keys.verifyKey answers in ``data`` (spending credits), without HTTP."""
        with self._lock:
            return self._verify({"key": key, "credits": {"cost": cost}})

    # -- the provider's shapes -----------------------------------------------------------

    def _request_id(self) -> str:
        return "req_" + b58(12)

    def ok(self, data: object, **extra: Any) -> Answer:
        return Answer(200, {"meta": {"requestId": self._request_id()}, "data": data, **extra})

    def error_answer(self, error: ProviderError) -> Answer:
        status = error.status
        code = error.extra.get("code") or _CODES.get(status, "application/unexpected_error")
        body: dict[str, Any] = {"title": _TITLES.get(status, "Error"), "detail": error.message,
                                "status": status, "type": DOCS + code}
        if status == 400:
            body["errors"] = error.extra.get("errors") or [
                {"location": "body", "message": error.message}]
        content_type = "application/problem+json" if status == 429 else "application/json"
        return Answer(status, {"meta": {"requestId": self._request_id()}, "error": body},
                      dict(error.extra.get("headers") or {}), content_type)

    def invalid_json(self) -> ProviderError:
        return ProviderError(400, "The request body is not valid JSON.",
                             errors=[{"location": "body", "message": "invalid JSON"}])

    # -- routing -------------------------------------------------------------------------

    def route(self, method: str, path: str, query: dict[str, list[str]], body: object,
              headers: dict[str, str]) -> Answer:
        if path == "/v2/liveness":
            if method != "GET":
                raise ProviderError(405, "Use GET for /v2/liveness.")
            return self.ok({"message": "OK"})
        handler = {
            "/v2/keys.createKey": self._create,
            "/v2/keys.getKey": self._get,
            "/v2/keys.whoami": self._whoami,
            "/v2/keys.deleteKey": self._delete,
            "/v2/apis.getApi": self._get_api,
            "/v2/apis.listKeys": self._list,
            "/v2/keys.verifyKey": self._verify_endpoint,
        }.get(path)
        if handler is None:
            raise ProviderError(404, f"The capit sandbox does not serve {path}.",
                                code="data/route_not_found")
        if method != "POST":
            raise ProviderError(405, f"Use POST for {path}.")
        problems = SCHEMAS[path](body, "body")
        if problems:
            raise ProviderError(400, "The request is invalid: " + problems[0]["location"] + " "
                                + problems[0]["message"] + ".", errors=problems)
        assert isinstance(body, dict)
        root = self._root(headers)
        with self._lock:
            return handler(root, body)

    def _root(self, headers: dict[str, str]) -> RootKey:
        state, token = bearer(headers)
        if state == "missing":
            raise ProviderError(400, "Authorization header is missing, but required.",
                                code="authentication/missing",
                                errors=[{"location": "header.Authorization",
                                         "message": "is required",
                                         "fix": "send Authorization: Bearer <root key>"}])
        if state == "malformed" or token is None:
            raise ProviderError(400, "Authorization header is malformed: use 'Bearer <root key>'.",
                                code="authentication/malformed",
                                errors=[{"location": "header.Authorization",
                                         "message": "must be 'Bearer <root key>'"}])
        root = self.root_keys.get(token)
        if root is None:
            raise ProviderError(401, "The provided root key is invalid.",
                                code="authentication/key_not_found")
        return root

    @staticmethod
    def _forbidden(*needed: str) -> ProviderError:
        return ProviderError(403, "Missing one of these permissions: " + ", ".join(needed) + ".",
                             code="authorization/insufficient_permissions")

    def _api(self, api_id: str) -> dict[str, Any]:
        api = self.apis.get(api_id)
        if api is None:
            raise ProviderError(404, "The requested API does not exist or has been deleted.",
                                code="data/api_not_found")
        return api

    def _key(self, key_id: str) -> UnkeyKey:
        key = self.keys.get(key_id)
        if key is None or key.deleted:
            raise ProviderError(404, "The requested key does not exist or has been deleted.",
                                code="data/key_not_found")
        return key

    # -- endpoints -----------------------------------------------------------------------

    def _create(self, root: RootKey, body: dict[str, Any]) -> Answer:
        api_id = body["apiId"]
        if not root.allows("create_key", api_id):
            raise self._forbidden("api.*.create_key", f"api.{api_id}.create_key")
        api = self._api(api_id)
        if not api["keyspace"]:
            raise ProviderError(412, "The requested API is not set up to handle keys.")
        if body.get("recoverable"):
            raise ProviderError(412, "Vault hasn't been set up for this workspace, so the key "
                                     "cannot be stored recoverably.")
        credits = body.get("credits")
        refill = None
        if credits is not None and credits.get("refill") is not None:
            refill = dict(credits["refill"])
            if credits.get("remaining") is None:
                raise ProviderError(400, "`credits.remaining` must be provided when "
                                         "`credits.refill` is set.",
                                    errors=[{"location": "body.credits.remaining",
                                             "message": "must be provided with a refill"}])
            if refill["interval"] == "monthly" and "refillDay" not in refill:
                raise ProviderError(400, "`refillDay` must be provided when the refill "
                                         "interval is `monthly`.",
                                    errors=[{"location": "body.credits.refill.refillDay",
                                             "message": "is required for monthly refills"}])
            if refill["interval"] == "daily":
                refill.pop("refillDay", None)  # createKey ignores it for daily refills
        names = [r["name"] for r in body.get("ratelimits") or []]
        if len(set(names)) != len(names):
            raise ProviderError(400, "Ratelimit names must be unique.",
                                errors=[{"location": "body.ratelimits",
                                         "message": "duplicate name"}])
        prefix = body.get("prefix")
        secret = b58(int(body.get("byteLength", 16)))
        plaintext = f"{prefix}_{secret}" if prefix else secret
        now = ms(self.now())
        self._seq += 1
        key = UnkeyKey(
            key_id=new_id("key"), api_id=api_id, secret_hash=sha256(plaintext),
            start=plaintext[: (len(prefix) + 1 if prefix else 0) + 4], name=body.get("name"),
            created_at=now, seq=self._seq, meta=body.get("meta"),
            external_id=body.get("externalId"), expires=body.get("expires"),
            enabled=body.get("enabled", True), has_credits=credits is not None,
            remaining=None if credits is None else credits.get("remaining"), refill=refill,
            last_refill=now,
            ratelimits=[Ratelimit(new_id("rl"), r["name"], r["limit"], r["duration"],
                                  r["autoApply"]) for r in body.get("ratelimits") or []],
            roles=list(body.get("roles") or []), permissions=list(body.get("permissions") or []),
        )
        self.keys[key.key_id] = key
        self._by_hash[key.secret_hash] = key.key_id
        return self.created(self.ok({"keyId": key.key_id, "key": plaintext}))

    def _get(self, root: RootKey, body: dict[str, Any]) -> Answer:
        key = self.keys.get(body["keyId"])
        if key is not None and not root.allows("read_key", key.api_id):
            raise self._forbidden("api.*.read_key", f"api.{key.api_id}.read_key")
        if body.get("decrypt"):
            raise ProviderError(412, "Vault hasn't been set up for this workspace, so keys "
                                     "cannot be decrypted.")
        key = self._key(body["keyId"])
        self._refill(key, self.now())
        return self.ok(key.public())

    def _whoami(self, root: RootKey, body: dict[str, Any]) -> Answer:
        key_id = self._by_hash.get(sha256(body["key"]))
        key = self.keys.get(key_id) if key_id else None
        if key is None or key.deleted or not root.allows("read_key", key.api_id):
            raise ProviderError(404, "The requested key does not exist or has been deleted.",
                                code="data/key_not_found")
        self._refill(key, self.now())
        return self.ok(key.public())

    def _delete(self, root: RootKey, body: dict[str, Any]) -> Answer:
        key = self.keys.get(body["keyId"])
        if key is not None and not root.allows("delete_key", key.api_id):
            raise self._forbidden("api.*.delete_key", f"api.{key.api_id}.delete_key")
        key = self._key(body["keyId"])
        if body.get("permanent"):
            del self.keys[key.key_id]
            self._by_hash.pop(key.secret_hash, None)
        else:
            key.deleted = True
        return self.ok({})

    def _get_api(self, root: RootKey, body: dict[str, Any]) -> Answer:
        api_id = body["apiId"]
        if not root.allows("read_api", api_id):
            raise self._forbidden("api.*.read_api", f"api.{api_id}.read_api")
        api = self._api(api_id)
        return self.ok({"id": api_id, "name": api["name"]})

    def _list(self, root: RootKey, body: dict[str, Any]) -> Answer:
        api_id = body["apiId"]
        if not (root.allows("read_key", api_id) and root.allows("read_api", api_id)):
            # Unkey answers 404 here rather than reveal that the API exists
            raise ProviderError(404, "The requested API does not exist or has been deleted.",
                                code="data/api_not_found")
        self._api(api_id)
        if body.get("decrypt"):
            raise ProviderError(412, "Vault hasn't been set up for this workspace, so keys "
                                     "cannot be decrypted.")
        after = 0
        cursor = body.get("cursor")
        if cursor is not None:
            if not re.fullmatch(r"cursor_\d+", cursor):
                raise ProviderError(400, "The cursor is invalid or has expired.",
                                    errors=[{"location": "body.cursor", "message": "invalid"}])
            after = int(cursor.split("_")[1])
        now = self.now()
        hide_after = None
        if self.list_cache_seconds > 0 and not body.get("revalidateKeysCache"):
            hide_after = ms(now) - int(self.list_cache_seconds * 1000)
        keys = [k for k in sorted(self.keys.values(), key=lambda k: k.seq)
                if k.api_id == api_id and not k.deleted and k.seq > after
                and (hide_after is None or k.created_at <= hide_after)
                and (body.get("externalId") is None or k.external_id == body["externalId"])]
        limit = int(body.get("limit", 100))
        page, more = keys[:limit], len(keys) > limit
        for key in page:
            self._refill(key, now)
        pagination: dict[str, Any] = {"hasMore": more}
        if more:
            pagination["cursor"] = f"cursor_{page[-1].seq}"
        return self.ok([k.public() for k in page], pagination=pagination)

    def _verify_endpoint(self, root: RootKey, body: dict[str, Any]) -> Answer:
        if not root.allows_anywhere("verify_key"):
            raise self._forbidden("api.*.verify_key")
        key_id = self._by_hash.get(sha256(body["key"]))
        key = self.keys.get(key_id) if key_id else None
        if key is not None and not root.allows("verify_key", key.api_id):
            return self.ok({"valid": False, "code": "NOT_FOUND"})
        return self.ok(self._verify(body))

    # -- enforcement ---------------------------------------------------------------------

    def _refill(self, key: UnkeyKey, now: datetime) -> None:
        if key.refill is None or key.remaining is None:
            return
        moment = ms(refill_moment(key.refill, now))
        if key.last_refill < moment:
            key.remaining = int(key.refill["amount"])
            key.last_refill = ms(now)

    def _verify(self, body: dict[str, Any]) -> dict[str, Any]:
        key_id = self._by_hash.get(sha256(body["key"]))
        key = self.keys.get(key_id) if key_id else None
        if key is None or key.deleted:
            return {"valid": False, "code": "NOT_FOUND"}
        now = self.now()
        now_ms = ms(now)
        self._refill(key, now)
        cost = int((body.get("credits") or {}).get("cost", 1))
        asked = {r["name"]: int(r.get("cost", 1)) for r in body.get("ratelimits") or []}
        checked = []
        code = "VALID"
        if not key.enabled:
            code = "DISABLED"
        elif key.expires is not None and key.expires <= now_ms:
            code = "EXPIRED"
        else:
            pending = []
            for rl in key.ratelimits:
                if not (rl.auto_apply or rl.name in asked):
                    continue
                window = now_ms // rl.duration
                used = rl.windows.get(window, 0)
                take = asked.get(rl.name, 1)
                exceeded = used + take > rl.limit
                reset = max(1000, (window + 1) * rl.duration - now_ms)
                checked.append({**rl.public(), "exceeded": exceeded, "reset": reset,
                                "remaining": max(0, rl.limit - used - (0 if exceeded else take))})
                pending.append((rl, window, used + take))
                if exceeded:
                    code = "RATE_LIMITED"
            if code == "VALID" and key.remaining is not None and key.remaining < cost:
                code = "USAGE_EXCEEDED"
            if code == "VALID":
                for rl, window, total in pending:
                    rl.windows = {window: total}
                if key.remaining is not None:
                    key.remaining -= cost
                key.last_used_at = now_ms
        data: dict[str, Any] = {"valid": code == "VALID", "code": code, "keyId": key.key_id,
                                "enabled": key.enabled, "permissions": list(key.permissions),
                                "roles": list(key.roles)}
        if key.name is not None:
            data["name"] = key.name
        if key.meta is not None:
            data["meta"] = dict(key.meta)
        if key.expires is not None:
            data["expires"] = key.expires
        if key.remaining is not None:
            data["credits"] = key.remaining
        if checked:
            data["ratelimits"] = checked
        return data


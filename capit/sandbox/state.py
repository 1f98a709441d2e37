"""In-memory account state of the sandbox provider: keys, usage, credits.

Pure logic, no HTTP. Every public method takes the state lock, so the HTTP
handler threads can call them concurrently. Money is kept as ``Decimal`` and
converted to ``float`` only when rendered as JSON.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

KEY_PREFIX = "sk-or-v1-"
PAGE_SIZE = 100
LIMIT_RESETS = ("daily", "weekly", "monthly")
DEFAULT_CREATOR = "user_capit_sandbox"

Clock = Callable[[], datetime]

_EXPIRES_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z$")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

CREATE_FIELDS = (
    "name",
    "limit",
    "limit_reset",
    "include_byok_in_limit",
    "expires_at",
    "workspace_id",
    "creator_user_id",
)
UPDATE_FIELDS = ("name", "disabled", "limit", "limit_reset", "include_byok_in_limit")
LIST_QUERY = ("include_disabled", "offset", "workspace_id")


class ApiError(Exception):
    """An error answer: HTTP status, message and optional metadata."""

    def __init__(
        self,
        status: int,
        message: str,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.metadata = metadata
        self.headers = headers or {}


def invalid(errors: list[dict[str, Any]]) -> ApiError:
    """400 ``Invalid request parameters`` with the details in metadata."""
    return ApiError(400, "Invalid request parameters", {"errors": errors})


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def to_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def iso(moment: datetime) -> str:
    """``2025-08-24T10:30:00Z`` (milliseconds only when non-zero)."""
    moment = to_utc(moment)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


def period_start(limit_reset: str | None, now: datetime) -> datetime | None:
    """Start of the current UTC period (weeks run Monday to Sunday); None = lifetime."""
    day = to_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    if limit_reset == "daily":
        return day
    if limit_reset == "weekly":
        return day - timedelta(days=day.weekday())
    if limit_reset == "monthly":
        return day.replace(day=1)
    return None


def mask_key(key: str) -> str:
    """The label OpenRouter shows for a key: ``sk-or-v1-0e6...1c96``."""
    return f"{key[:12]}...{key[-4:]}"


def new_key_string() -> str:
    return KEY_PREFIX + secrets.token_hex(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


# --------------------------------------------------------------------- fields


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class _FieldError(Exception):
    pass


def _want(value: object, *types: str) -> None:
    if _type_name(value) not in types:
        raise _FieldError(f"Expected {' or '.join(types)}, received {_type_name(value)}")


def _name(value: object) -> str:
    _want(value, "string")
    assert isinstance(value, str)
    if not value:
        raise _FieldError("String must contain at least 1 character(s)")
    return value


def _bool(value: object) -> bool:
    _want(value, "boolean")
    return bool(value)


def _limit(value: object) -> Decimal | None:
    _want(value, "number", "null")
    if value is None:
        return None
    amount = Decimal(str(value))
    if amount < 0:
        raise _FieldError("Number must be greater than or equal to 0")
    return amount


def _limit_reset(value: object) -> str | None:
    _want(value, "string", "null")
    if value is not None and value not in LIMIT_RESETS:
        raise _FieldError("Invalid enum value. Expected 'daily' | 'weekly' | 'monthly'")
    return value  # type: ignore[return-value]


def _uuid(value: object) -> str:
    _want(value, "string")
    assert isinstance(value, str)
    if not _UUID_RE.match(value):
        raise _FieldError("Invalid uuid")
    return value.lower()


def _creator(value: object) -> str | None:
    _want(value, "string", "null")
    if value == "":
        raise _FieldError("String must contain at least 1 character(s)")
    return value  # type: ignore[return-value]


def parse_expires_at(value: object, now: datetime) -> datetime | None:
    _want(value, "string", "null")
    if value is None:
        return None
    assert isinstance(value, str)
    match = _EXPIRES_RE.match(value)
    if not match:
        raise _FieldError(
            "expires_at must be a UTC timestamp with seconds, "
            "YYYY-MM-DDTHH:MM:SSZ (fractional seconds allowed)"
        )
    *parts, fraction = match.groups()
    try:
        moment = datetime(
            *(int(p) for p in parts),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=timezone.utc,
        )
    except ValueError as exc:
        raise _FieldError(f"Invalid date-time: {exc}") from None
    if moment <= now:
        raise _FieldError("expires_at must be in the future")
    return moment


def _check_object(body: object, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid([{"path": [], "message": "Request body must be a JSON object"}])
    unknown = sorted(k for k in body if k not in allowed)
    if unknown:
        raise invalid([{"path": [k], "message": f"Unrecognized key: '{k}'"} for k in unknown])
    return body


# ----------------------------------------------------------------------- keys


@dataclass
class KeyRecord:
    secret: str
    hash: str
    name: str
    created_at: datetime
    seq: int
    workspace_id: str
    creator_user_id: str | None = DEFAULT_CREATOR
    management: bool = False
    disabled: bool = False
    limit: Decimal | None = None
    limit_reset: str | None = None
    include_byok_in_limit: bool = False
    expires_at: datetime | None = None
    updated_at: datetime | None = None
    charges: list[tuple[datetime, Decimal]] = field(default_factory=list)

    def usage_since(self, start: datetime | None) -> Decimal:
        return sum(
            (amount for when, amount in self.charges if start is None or when >= start),
            Decimal(0),
        )

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass
class _Usage:
    total: Decimal
    daily: Decimal
    weekly: Decimal
    monthly: Decimal
    period: Decimal
    remaining: Decimal | None


class SandboxState:
    """Account of one sandbox: a management key, inference keys, credits."""

    def __init__(
        self,
        cost: Decimal,
        credits: Decimal,
        management_key: str | None,
        clock: Clock | None,
        lock: threading.RLock | None = None,
    ) -> None:
        self.lock = lock or threading.RLock()
        self.cost = Decimal(str(cost))
        self.total_credits = Decimal(str(credits))
        self.total_usage = Decimal(0)
        self._clock = clock or utc_now
        self.default_workspace_id = str(uuid.uuid4())
        self._seq = 0
        secret = management_key if management_key is not None else new_key_string()
        self.management = KeyRecord(
            secret=secret,
            hash=key_hash(secret),
            name="Sandbox management key",
            created_at=self.now(),
            seq=0,
            workspace_id=self.default_workspace_id,
            management=True,
        )
        self._keys: dict[str, KeyRecord] = {}  # hash -> inference key

    # ------------------------------------------------------------ basics
    def now(self) -> datetime:
        return to_utc(self._clock())

    def _usage(self, rec: KeyRecord, now: datetime) -> _Usage:
        period = rec.usage_since(period_start(rec.limit_reset, now))
        remaining = None if rec.limit is None else max(rec.limit - period, Decimal(0))
        return _Usage(
            total=rec.usage_since(None),
            daily=rec.usage_since(period_start("daily", now)),
            weekly=rec.usage_since(period_start("weekly", now)),
            monthly=rec.usage_since(period_start("monthly", now)),
            period=period,
            remaining=remaining,
        )

    def _usage_fields(self, rec: KeyRecord, now: datetime) -> dict[str, Any]:
        use = self._usage(rec, now)
        return {
            "limit": money(rec.limit),
            "limit_remaining": money(use.remaining),
            "limit_reset": rec.limit_reset,
            "include_byok_in_limit": rec.include_byok_in_limit,
            "usage": float(use.total),
            "usage_daily": float(use.daily),
            "usage_weekly": float(use.weekly),
            "usage_monthly": float(use.monthly),
            "byok_usage": 0.0,
            "byok_usage_daily": 0.0,
            "byok_usage_weekly": 0.0,
            "byok_usage_monthly": 0.0,
        }

    def api_key(self, rec: KeyRecord, now: datetime | None = None) -> dict[str, Any]:
        """The ApiKey object as GET /keys and friends return it."""
        now = now or self.now()
        return {
            "hash": rec.hash,
            "name": rec.name,
            "label": mask_key(rec.secret),
            "disabled": rec.disabled,
            **self._usage_fields(rec, now),
            "created_at": iso(rec.created_at),
            "updated_at": None if rec.updated_at is None else iso(rec.updated_at),
            "expires_at": None if rec.expires_at is None else iso(rec.expires_at),
            "creator_user_id": rec.creator_user_id,
            "workspace_id": rec.workspace_id,
        }

    def current_key(self, rec: KeyRecord) -> dict[str, Any]:
        """The CurrentKey object of GET /key."""
        now = self.now()
        return {
            "label": mask_key(rec.secret),
            **self._usage_fields(rec, now),
            "is_free_tier": False,
            "is_management_key": rec.management,
            "is_provisioning_key": rec.management,
            "creator_user_id": rec.creator_user_id,
            "expires_at": None if rec.expires_at is None else iso(rec.expires_at),
            "rate_limit": {
                "requests": -1,
                "interval": "10s",
                "note": "This field is deprecated and safe to ignore.",
            },
        }

    # ------------------------------------------------------------- auth
    def authenticate(self, token: str | None) -> KeyRecord:
        """The key a bearer token names, or ApiError 401."""
        if not token:
            raise ApiError(401, "Missing Authentication header")
        with self.lock:
            if secrets.compare_digest(token, self.management.secret):
                return self.management
            rec = self._keys.get(key_hash(token))
            if rec is None or not secrets.compare_digest(rec.secret, token):
                raise ApiError(401, "User not found.")
            if rec.disabled:
                raise ApiError(401, "API key is disabled")
            if rec.expired(self.now()):
                raise ApiError(401, "API key has expired")
            return rec

    # ------------------------------------------------------- management
    def create_key(self, body: object) -> tuple[KeyRecord, dict[str, Any]]:
        """Validate a POST /keys body and create the key; returns (record, 201 body)."""
        data = _check_object(body, CREATE_FIELDS)
        with self.lock:
            now = self.now()
            parsers: dict[str, Callable[[object], Any]] = {
                "name": _name,
                "limit": _limit,
                "limit_reset": _limit_reset,
                "include_byok_in_limit": _bool,
                "expires_at": lambda v: parse_expires_at(v, now),
                "workspace_id": _uuid,
                "creator_user_id": _creator,
            }
            values = _parse_fields(data, parsers, required=("name",))
            secret = new_key_string()
            self._seq += 1
            rec = KeyRecord(
                secret=secret,
                hash=key_hash(secret),
                name=values["name"],
                created_at=now,
                seq=self._seq,
                workspace_id=values.get("workspace_id", self.default_workspace_id),
                creator_user_id=values.get("creator_user_id", DEFAULT_CREATOR),
                limit=values.get("limit"),
                limit_reset=values.get("limit_reset"),
                include_byok_in_limit=values.get("include_byok_in_limit", False),
                expires_at=values.get("expires_at"),
            )
            self._keys[rec.hash] = rec
            return rec, {"data": self.api_key(rec, now), "key": secret}

    def list_keys(self, query: dict[str, list[str]]) -> dict[str, Any]:
        unknown = sorted(k for k in query if k not in LIST_QUERY)
        errors: list[dict[str, Any]] = [
            {"path": [k], "message": f"Unrecognized query parameter: '{k}'"} for k in unknown
        ]
        for name, values in query.items():
            if name in LIST_QUERY and len(values) != 1:
                errors.append({"path": [name], "message": "Expected a single value"})
        if errors:
            raise invalid(errors)
        include_disabled = query.get("include_disabled", ["false"])[0]
        if include_disabled not in ("true", "false"):
            raise invalid([{"path": ["include_disabled"], "message": "Expected 'true' or 'false'"}])
        offset_text = query.get("offset", ["0"])[0]
        if not re.fullmatch(r"\d+", offset_text):
            raise invalid(
                [{"path": ["offset"], "message": "Expected an integer greater than or equal to 0"}]
            )
        offset = int(offset_text)
        workspace = self.default_workspace_id
        if "workspace_id" in query:
            try:
                workspace = _uuid(query["workspace_id"][0])
            except _FieldError as exc:
                raise invalid([{"path": ["workspace_id"], "message": str(exc)}]) from None
        with self.lock:
            now = self.now()
            keys = [
                rec
                for rec in self._keys.values()
                if rec.workspace_id == workspace
                and (include_disabled == "true" or not rec.disabled)
            ]
            keys.sort(key=lambda r: (r.created_at, r.seq), reverse=True)
            page = keys[offset : offset + PAGE_SIZE]
            return {"data": [self.api_key(rec, now) for rec in page]}

    def _find(self, key_id: str) -> KeyRecord:
        rec = self._keys.get(key_id)
        if rec is None:
            raise ApiError(404, "Resource not found")
        return rec

    def get_key(self, key_id: str) -> dict[str, Any]:
        with self.lock:
            return {"data": self.api_key(self._find(key_id))}

    def update_key(self, key_id: str, body: object) -> dict[str, Any]:
        with self.lock:
            rec = self._find(key_id)
            data = _check_object(body, UPDATE_FIELDS)
            values = _parse_fields(
                data,
                {
                    "name": _name,
                    "disabled": _bool,
                    "limit": _limit,
                    "limit_reset": _limit_reset,
                    "include_byok_in_limit": _bool,
                },
            )
            for name, value in values.items():
                setattr(rec, name, value)
            rec.updated_at = self.now()
            return {"data": self.api_key(rec)}

    def delete_key(self, key_id: str) -> dict[str, Any]:
        with self.lock:
            self._find(key_id)
            del self._keys[key_id]
            return {"deleted": True}

    def credits(self) -> dict[str, Any]:
        with self.lock:
            return {
                "data": {
                    "total_credits": float(self.total_credits),
                    "total_usage": float(self.total_usage),
                }
            }

    def snapshot(self) -> list[dict[str, Any]]:
        """All inference keys (every workspace, disabled too), oldest first."""
        with self.lock:
            now = self.now()
            keys = sorted(self._keys.values(), key=lambda r: (r.created_at, r.seq))
            return [self.api_key(rec, now) for rec in keys]

    # ---------------------------------------------------------- billing
    def charge(self, rec: KeyRecord) -> Decimal:
        """Charge one call to ``rec``; ApiError 402 (nothing charged) if it would overspend."""
        with self.lock:
            now = self.now()
            cost = self.cost
            if rec.limit is not None:
                use = self._usage(rec, now)
                if use.period + cost > rec.limit:
                    raise ApiError(
                        402,
                        "Key limit exceeded: this request would take the key past its "
                        f"{'lifetime' if rec.limit_reset is None else rec.limit_reset} "
                        "spending limit. Manage it using https://openrouter.ai/settings/keys",
                        {
                            "limit_source": "openrouter_key_limit",
                            "error_type": "payment_required",
                            "limit": float(rec.limit),
                            "limit_remaining": money(use.remaining),
                            "limit_reset": rec.limit_reset,
                        },
                    )
            if self.total_usage + cost > self.total_credits:
                raise ApiError(
                    402,
                    "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
                    {
                        "limit_source": "openrouter_credits",
                        "error_type": "payment_required",
                        "total_credits": float(self.total_credits),
                        "total_usage": float(self.total_usage),
                    },
                )
            rec.charges.append((now, cost))
            self.total_usage += cost
            return cost


def _parse_fields(
    data: dict[str, Any],
    parsers: dict[str, Callable[[object], Any]],
    required: tuple[str, ...] = (),
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    errors: list[dict[str, Any]] = [
        {"path": [name], "message": "Required"} for name in required if name not in data
    ]
    for name, value in data.items():
        try:
            values[name] = parsers[name](value)
        except _FieldError as exc:
            errors.append({"path": [name], "message": str(exc)})
    if errors:
        raise invalid(errors)
    return values

"""LiteLLM proxy: virtual keys with a dollar budget that your own proxy enforces.

``POST /key/generate`` with ``max_budget`` (USD), ``budget_duration`` (from ``--period``),
``duration`` (from ``--expires``), ``key_alias`` (capit's unique key name) and, when
given, ``models``, ``rpm_limit`` and ``tpm_limit`` mints the key; once its ``spend``
reaches ``max_budget`` the proxy refuses it (``budget_exceeded``) until the budget resets.
Keys are listed with ``GET /key/list``, read with ``GET /key/info`` and revoked with
``POST /key/delete``, always by the key's sha256 hash (LiteLLM's ``token``), so no key
travels in a URL.

The master credential is the proxy's master key plus the proxy's URL; both are kept in
the vault (``CAPIT_LITELLM_BASE_URL`` overrides the URL).  Virtual keys need a proxy with
a database: one without answers "DB not connected", which capit reports as such.  Facts
and sources: shared/reference/unkey-litellm.md, section 2; requests are checked against
LiteLLM's OpenAPI document by tests/test_platform_contract.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
from decimal import Decimal, InvalidOperation
from typing import Any

from capit.errors import CapitError, ExitCode, usage
from capit.http import OutcomeUnknown, ProviderClient, ProviderHTTPError
from capit.money import format_time
from capit.platforms import IssuedKey, KeyRequest, MasterField, MasterKey, Platform, RemoteKey
from capit.secret import Secret, scrub

PAGE_SIZE = 100  # /key/list allows size 1..100
MAX_PAGES = 1000
EXPIRY_TOLERANCE = 600  # seconds between the expiry asked for and the proxy's (clock skew)
BUDGET_DURATIONS = {"monthly": "1mo", "weekly": "1w", "daily": "1d"}
PERIOD_OF_DURATION = {"1mo": "monthly", "30d": "monthly", "1w": "weekly", "7d": "weekly",
                      "1d": "daily", "24h": "daily"}
NO_DATABASE = ("db not connected", "database not connected", "not connected to db",
               "no connected db")


class LiteLLM(Platform):
    name = "litellm"
    title = "LiteLLM"
    cap_unit = "USD"
    cap_help = ("a budget in US dollars (max_budget) that your LiteLLM proxy enforces: it "
                "refuses the key once its spend reaches the budget")
    env_var = "LITELLM_PROXY_API_KEY"
    default_base_url = "http://localhost:4000"  # where `litellm` listens by default
    console_url = "https://docs.litellm.ai/docs/proxy/virtual_keys"
    master_label = "master key"
    options = frozenset({"period", "models", "rpm", "tpm"})

    def master_fields(self) -> list[MasterField]:
        return [MasterField("key", "LiteLLM proxy master key", secret=True),
                MasterField("base_url", "LiteLLM proxy URL (e.g. https://litellm.example.com)",
                            secret=False)]

    def describe_base_url(self) -> str:
        if os.environ.get(self.base_url_env()):
            return self.base_url()
        return f"the proxy URL stored with the master key (default {self.default_base_url})"

    def proxy_url(self, master: MasterKey) -> str:
        """``CAPIT_LITELLM_BASE_URL``, else the URL stored with the master key."""
        from capit.http import check_base_url

        url = os.environ.get(self.base_url_env()) or (master.meta or {}).get("base_url") \
            or self.default_base_url
        return check_base_url(url.strip(), self.name)

    # -- the request -------------------------------------------------------------------

    def check_request(self, request: KeyRequest) -> None:
        super().check_request(request)
        self._body(request)

    def _body(self, request: KeyRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"key_alias": request.name,
                                "max_budget": _number(request.amount)}
        if request.period != "none":
            body["budget_duration"] = BUDGET_DURATIONS[request.period]
        if request.expires_at is not None:
            seconds = math.ceil((request.expires_at - dt.datetime.now(dt.timezone.utc))
                                .total_seconds())
            if seconds <= 0:
                raise usage("--expires is in the past")
            body["duration"] = f"{seconds}s"
        models = request.options.get("models")
        if models is not None:
            names = [m.strip() for m in str(models).split(",") if m.strip()]
            if not names:
                raise usage("--models needs at least one model name, e.g. gpt-4o,claude-3-5")
            body["models"] = names
        for option, field in (("rpm", "rpm_limit"), ("tpm", "tpm_limit")):
            value = request.options.get(option)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise usage(f"--{option} must be a whole number of at least 1")
                body[field] = value
        return body

    # -- plumbing ------------------------------------------------------------------------

    @property
    def provider(self) -> str:
        return "the LiteLLM proxy"

    def _client(self, master: MasterKey, url: str | None = None) -> ProviderClient:
        # the credential also goes in x-litellm-api-key, the scheme LiteLLM's OpenAPI
        # document declares (the proxy accepts that and Authorization: Bearer alike)
        return ProviderClient(self.name, url or self.proxy_url(master), master.secret,
                              token_headers=("x-litellm-api-key",))

    def _fail(self, exc: ProviderHTTPError, doing: str, url: str) -> CapitError:
        status = exc.status
        kind, message = _error(exc.response.data)
        message = message or exc.message
        said = f" ({status}{' ' + kind if kind else ''}: {message})" if message else \
            f" (HTTP {status})"
        if _no_database(kind, message):
            return _no_db_error(url, said)
        if kind == "budget_exceeded":
            return CapitError(f"the LiteLLM proxy refused to {doing}: a budget is used up{said}",
                              ExitCode.PAYMENT)
        if status in (401, 403):
            return CapitError(
                f"the LiteLLM proxy at {url} rejected the master key{said}; give the proxy's "
                "master key (general_settings.master_key or LITELLM_MASTER_KEY)",
                ExitCode.AUTH,
            )
        return self.common_failure(exc, doing, said)

    def _get(self, client: ProviderClient, path: str, params: dict[str, Any], doing: str,
             url: str) -> dict[str, Any]:
        try:
            resp = client.request("GET", path, params=params)
        except ProviderHTTPError as exc:
            raise self._fail(exc, doing, url) from None
        if not isinstance(resp.data, dict):
            raise CapitError(f"the LiteLLM proxy's answer to GET {path} is not what its API "
                             "documents", ExitCode.PROVIDER)
        return resp.data

    # -- operations ----------------------------------------------------------------------

    def validate_master(self, master: MasterKey) -> str:
        """Check the key against the URL typed with it (which is what gets stored)."""
        from capit.http import check_base_url

        typed = (master.meta or {}).get("base_url") or self.default_base_url
        url = check_base_url(typed.strip(), self.name)
        master.meta = {**(master.meta or {}), "base_url": url}
        with self._client(master, url) as client:
            data = self._get(client, "/key/list", {"page": 1, "size": 1}, "list keys", url)
        count = data.get("total_count")
        counted = f", {count} virtual keys" if isinstance(count, int) else ""
        return f"master key of the proxy at {url}{counted}"

    def issue(self, master: MasterKey, request: KeyRequest) -> IssuedKey:
        url = self.proxy_url(master)
        body = self._body(request)
        with self._client(master) as client:
            try:
                resp = client.request("POST", "/key/generate", json_body=body)
            except ProviderHTTPError as exc:
                raise self._fail(exc, "create a key", url) from None
            except OutcomeUnknown as exc:
                if exc.response is not None:
                    kind, message = _error(exc.response.data)
                    if _no_database(kind, message):  # certain: nothing was created
                        raise _no_db_error(url, f" ({exc.response.status}: {message})") \
                            from None
                raise self._reconcile(client, url, request.name, exc) from None
            data = resp.data if isinstance(resp.data, dict) else {}
            key = data.get("key")
            if not isinstance(key, str) or not key:
                raise self._reconcile(client, url, request.name,
                                      OutcomeUnknown("the answer carried no key")) from None
            secret = Secret(key)
            token = data.get("token_id")
            if not isinstance(token, str) or not token:
                token = hash_token(key)
            # read the key back (by its hash: the key itself never goes into a URL) and
            # check that the proxy holds the budget asked for
            try:
                info = self._get(client, "/key/info", {"key": token}, "read the new key",
                                 url).get("info")
            except CapitError as err:
                info, problem = None, f"capit could not read it back: {err.message}"
            else:
                problem = _mismatch(info, body, request.expires_at)
            if problem:
                deleted = self.attempted(lambda: self._delete(client, token, ""))
                raise self.untrusted(problem, deleted, self.short_ref(token))
        assert isinstance(info, dict)
        expires = _iso(info.get("expires")) or (
            format_time(request.expires_at) if request.expires_at else None)
        return IssuedKey(
            platform=self.name,
            secret=secret,
            hash=token,
            name=str(info.get("key_alias") or request.name),
            amount=request.amount,
            period=request.period,
            expires_at=expires,
            created_at=_iso(info.get("created_at") or data.get("created_at")),
        )

    def _delete(self, client: ProviderClient, token: str, url: str) -> None:
        try:
            client.request("POST", "/key/delete", json_body={"keys": [token]}, idempotent=True)
        except ProviderHTTPError as exc:
            if self.gone_on_retry(exc):
                return
            raise self._fail(exc, "delete the key", url) from None

    def _reconcile(self, client: ProviderClient, url: str, name: str,
                   exc: OutcomeUnknown) -> CapitError:
        """After an unanswered create: is there a key with our unique alias? Never re-create."""
        def look() -> list[RemoteKey]:
            data = self._get(client, "/key/list", {"page": 1, "size": PAGE_SIZE,
                                                   "key_alias": name,
                                                   "return_full_object": "true"},
                             "list keys", url)
            return [k for k in map(_remote, data.get("keys") or []) if k and k.name == name]

        return self.reconcile(exc.reason, name, look)

    def list_keys(self, master: MasterKey) -> list[RemoteKey]:
        url = self.proxy_url(master)
        keys: list[RemoteKey] = []
        seen: set[str] = set()
        with self._client(master) as client:
            for page in range(1, MAX_PAGES + 1):
                data = self._get(client, "/key/list", {"page": page, "size": PAGE_SIZE,
                                                       "return_full_object": "true"},
                                 "list keys", url)
                items = data.get("keys")
                if not isinstance(items, list):
                    raise CapitError("the LiteLLM proxy's key list is not a list",
                                     ExitCode.PROVIDER)
                fresh = 0
                for item in items:
                    key = _remote(item)
                    if key is not None and key.hash not in seen:
                        seen.add(key.hash)
                        keys.append(key)
                        fresh += 1
                pages = data.get("total_pages")
                if fresh == 0 or len(items) < PAGE_SIZE or (
                        isinstance(pages, int) and page >= pages):
                    break
        return keys

    def delete_key(self, master: MasterKey, key_hash: str) -> None:
        url = self.proxy_url(master)
        with self._client(master) as client:
            self._delete(client, key_hash, url)


# ---------------------------------------------------------------------------- helpers


def hash_token(key: str) -> str:
    """LiteLLM's identifier of a virtual key: the sha256 hex digest of the whole key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _no_database(kind: str, message: str) -> bool:
    text = message.lower()
    return kind == "no_db_connection" or any(marker in text for marker in NO_DATABASE)


def _no_db_error(url: str, said: str) -> CapitError:
    return CapitError(
        f"the LiteLLM proxy at {url} has no database, so virtual keys are unavailable{said}; "
        "connect one (DATABASE_URL, PostgreSQL): https://docs.litellm.ai/docs/proxy/virtual_keys",
        ExitCode.PROVIDER,
    )


def _error(data: Any) -> tuple[str, str]:
    """(type, message) of LiteLLM's ``{"error": {...}}`` or FastAPI's ``{"detail": ...}``."""
    if not isinstance(data, dict):
        return "", ""
    kind, message = "", ""
    err = data.get("error")
    if isinstance(err, dict):
        kind = str(err.get("type") or "")
        message = str(err.get("message") or "")
    detail = data.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = ".".join(str(p) for p in first.get("loc") or [])
        message = f"{loc}: {first.get('msg', '')}".strip(": ")
        kind = kind or "validation_error"
    elif isinstance(detail, (str, dict)) and not message:
        message = str(detail.get("error") if isinstance(detail, dict) else detail)
    message = " ".join(scrub(message).split())
    kind = kind if kind.replace("_", "").isalnum() else ""
    return kind, message[:200] + ("…" if len(message) > 200 else "")


def _number(amount: Decimal) -> int | float:
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when


def _iso(value: Any) -> str | None:
    """The proxy's time (aware or naive-UTC ISO 8601) as ``2026-03-11T12:00:00.123Z``."""
    when = _when(value)
    if when is None:
        return None
    when = when.astimezone(dt.timezone.utc)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond // 1000:03d}"
    return text + "Z"


def _mismatch(data: Any, body: dict[str, Any],
              expires_at: dt.datetime | None) -> str | None:
    """Why the key the proxy describes is not the one asked for (None: it is)."""
    if not isinstance(data, dict):
        return "its details are not what LiteLLM's API documents"
    budget = _dec(data.get("max_budget"))
    if budget is None or abs(budget - Decimal(str(body["max_budget"]))) >= Decimal("0.005"):
        return f"the key came back with max_budget {data.get('max_budget')!r}"
    if data.get("budget_duration") != body.get("budget_duration"):
        return f"the key came back with budget_duration {data.get('budget_duration')!r}"
    if data.get("key_alias") not in (None, body["key_alias"]):
        return f"the key came back with key_alias {data.get('key_alias')!r}"
    for field in ("models", "rpm_limit", "tpm_limit"):
        if field in body and data.get(field) != body[field]:
            return f"the key came back with {field} {data.get(field)!r}"
    if expires_at is not None:
        got = _when(data.get("expires"))
        if got is None or abs((got - expires_at).total_seconds()) > EXPIRY_TOLERANCE:
            return f"the key came back with expires {data.get('expires')!r}"
    return None


def _remote(item: Any) -> RemoteKey | None:
    if isinstance(item, str) and item:
        item = {"token": item}
    if not isinstance(item, dict) or not isinstance(item.get("token"), str):
        return None
    duration = item.get("budget_duration")
    period = "none"
    details = []
    if isinstance(duration, str) and duration:
        period = PERIOD_OF_DURATION.get(duration, "none")
        if duration not in PERIOD_OF_DURATION:
            details.append(f"budget resets every {duration}")
    limit = _dec(item.get("max_budget"))
    spend = _dec(item.get("spend"))
    remaining = None
    if limit is not None:
        remaining = max(Decimal(0), limit - (spend or Decimal(0)))
    models = item.get("models")
    if isinstance(models, list) and models:
        details.append("models " + ",".join(str(m) for m in models))
    for field, label in (("rpm_limit", "rpm"), ("tpm_limit", "tpm")):
        if isinstance(item.get(field), int):
            details.append(f"{label} {item[field]}")
    expires_at = _iso(item.get("expires"))
    if expires_at:
        details.append(f"expires {expires_at[:16].replace('T', ' ')}")
    return RemoteKey(
        hash=item["token"],
        name=str(item.get("key_alias") or ""),
        limit=limit,
        period=period,
        usage=spend,
        created_at=_iso(item.get("created_at")),
        expires_at=expires_at,
        disabled=item.get("blocked") is True,
        remaining=remaining,
        details=", ".join(details),
    )

"""OpenRouter: child keys with a per-key spending limit that OpenRouter enforces.

One ``POST /keys`` with ``name``, ``limit`` (USD), ``limit_reset`` and, when asked,
``expires_at`` mints the key; the capped key is the response's top-level ``key``.
Facts and sources: shared/reference/openrouter.md; the official OpenAPI document is
checked against these requests by tests/test_contract_openrouter.py.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from capit.errors import CapitError, ExitCode
from capit.http import OutcomeUnknown, ProviderClient, ProviderHTTPError
from capit.money import format_time
from capit.platforms import IssuedKey, KeyRequest, MasterKey, Platform, RemoteKey

PAGE_SIZE = 100  # GET /keys returns at most 100 keys a page; page with offset until short
MAX_PAGES = 1000


class OpenRouter(Platform):
    name = "openrouter"
    title = "OpenRouter"
    cap_unit = "USD"
    cap_help = "a spending cap in US dollars, enforced by OpenRouter (HTTP 402 once spent)"
    env_var = "OPENROUTER_API_KEY"
    default_base_url = "https://openrouter.ai/api/v1"
    console_url = "https://openrouter.ai/settings/management-keys"
    master_label = "management key"

    # -- plumbing -----------------------------------------------------------------------

    def _client(self, master: MasterKey) -> ProviderClient:
        return ProviderClient(self.name, self.base_url(), master.secret)

    def _fail(self, exc: ProviderHTTPError, doing: str) -> CapitError:
        status, msg = exc.status, exc.message
        said = f" ({status}: {msg})" if msg else f" (HTTP {status})"
        if status == 401:
            return CapitError(
                f"OpenRouter rejected the management key{said}; check it or create one at "
                f"{self.console_url}",
                ExitCode.AUTH,
            )
        if status == 403:
            return CapitError(
                f"OpenRouter refused to {doing}{said}: this needs a management key, created at "
                f"{self.console_url}",
                ExitCode.AUTH,
            )
        if status == 402:
            return CapitError(
                f"OpenRouter wants payment before it will {doing}{said}; add credits at "
                "https://openrouter.ai/settings/credits",
                ExitCode.PAYMENT,
            )
        return self.common_failure(exc, doing, said)

    def _call(self, client: ProviderClient, method: str, path: str, doing: str,
              **kwargs: Any) -> Any:
        try:
            resp = client.request(method, path, **kwargs)
        except ProviderHTTPError as exc:
            raise self._fail(exc, doing) from None
        return resp.data

    @staticmethod
    def _body(data: Any, doing: str) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("data"), (dict, list)):
            raise CapitError(
                f"OpenRouter's answer to {doing} is not what its API documents", ExitCode.PROVIDER
            )
        return data

    # -- operations ---------------------------------------------------------------------

    def validate_master(self, master: MasterKey) -> str:
        with self._client(master) as client:
            data = self._body(self._call(client, "GET", "/key", "check the key"), "GET /key")
            info = data["data"]
            is_mgmt = info.get("is_management_key")
            if is_mgmt is None:
                is_mgmt = info.get("is_provisioning_key")
            if is_mgmt is None:
                # an older answer without the flag: a management-only call settles it
                self._call(client, "GET", "/credits", "read the account's credits")
                is_mgmt = True
        if not is_mgmt:
            raise CapitError(
                "this is an OpenRouter API key for inference, not a management key; create a "
                f"management key at {self.console_url}",
                ExitCode.AUTH,
            )
        label = info.get("label")
        return f"management key {label}" if isinstance(label, str) and label else "management key"

    def issue(self, master: MasterKey, request: KeyRequest) -> IssuedKey:
        body: dict[str, Any] = {"name": request.name, "limit": _number(request.amount)}
        if request.period != "none":
            body["limit_reset"] = request.period
        if request.expires_at is not None:
            body["expires_at"] = format_time(request.expires_at)
        with self._client(master) as client:
            try:
                resp = client.request("POST", "/keys", json_body=body, ok=(200, 201))
            except ProviderHTTPError as exc:
                raise self._fail(exc, "create a key") from None
            except OutcomeUnknown as exc:
                raise self._reconcile(client, request.name, exc) from None
            data = resp.data if isinstance(resp.data, dict) else {}
            info = data.get("data") if isinstance(data.get("data"), dict) else {}
            key = data.get("key") or info.get("key")
            key_hash = info.get("hash")
            if not isinstance(key_hash, str) or not key_hash:
                raise self._reconcile(
                    client, request.name, OutcomeUnknown("the answer carried no key hash")
                ) from None
            problem = None
            if not isinstance(key, str) or not key:
                problem = "the answer carried no key"
            elif not _same_amount(info.get("limit"), request.amount):
                problem = f"the key came back with limit {info.get('limit')!r}"
            elif info.get("limit_reset") != body.get("limit_reset"):
                problem = f"the key came back with limit_reset {info.get('limit_reset')!r}"
            elif "expires_at" in body and not _same_time(
                    info.get("expires_at", body["expires_at"]), body["expires_at"]):
                problem = f"the key came back with expires_at {info.get('expires_at')!r}"
            if problem:
                # never hand out a key whose cap is not the one asked for
                deleted = self.attempted(lambda: self._delete(client, key_hash))
                raise self.untrusted(problem, deleted, self.short_ref(key_hash))
        from capit.secret import Secret

        return IssuedKey(
            platform=self.name,
            secret=Secret(key),
            hash=key_hash,
            name=str(info.get("name") or request.name),
            amount=request.amount,
            period=request.period,
            expires_at=info.get("expires_at") or body.get("expires_at"),
            created_at=info.get("created_at"),
        )

    def _delete(self, client: ProviderClient, key_hash: str) -> None:
        try:
            client.request("DELETE", f"/keys/{key_hash}")
        except ProviderHTTPError as exc:
            if self.gone_on_retry(exc):
                return
            raise self._fail(exc, "delete the key") from None

    def _reconcile(self, client: ProviderClient, name: str, exc: OutcomeUnknown) -> CapitError:
        """After an unanswered create: is there a key with our unique name? Never re-create."""
        return self.reconcile(exc.reason, name,
                              lambda: [k for k in self._list(client) if k.name == name])

    def _list(self, client: ProviderClient) -> list[RemoteKey]:
        keys: list[RemoteKey] = []
        seen: set[str] = set()
        for page in range(MAX_PAGES):
            params = {"include_disabled": "true", "offset": page * PAGE_SIZE}
            data = self._body(
                self._call(client, "GET", "/keys", "list keys", params=params), "GET /keys"
            )
            items = data["data"]
            if not isinstance(items, list):
                raise CapitError("OpenRouter's key list is not a list", ExitCode.PROVIDER)
            fresh = 0
            for item in items:
                key = _remote(item)
                if key is not None and key.hash not in seen:
                    seen.add(key.hash)
                    keys.append(key)
                    fresh += 1
            if len(items) < PAGE_SIZE:
                break
            if fresh == 0:
                raise CapitError(
                    "OpenRouter's key list repeats the same page; it cannot be listed reliably "
                    "right now",
                    ExitCode.PROVIDER,
                )
        return keys

    def list_keys(self, master: MasterKey) -> list[RemoteKey]:
        with self._client(master) as client:
            return self._list(client)

    def delete_key(self, master: MasterKey, key_hash: str) -> None:
        with self._client(master) as client:
            self._delete(client, key_hash)


def _number(amount: Decimal) -> int | float:
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _same_amount(value: Any, amount: Decimal) -> bool:
    got = _dec(value)
    return got is not None and abs(got - amount) < Decimal("0.005")


def _same_time(value: Any, wanted: str) -> bool:
    """Whether the provider's ``expires_at`` is the instant capit asked for."""
    if not isinstance(value, str):
        return False
    try:
        got = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        want = dt.datetime.fromisoformat(wanted.replace("Z", "+00:00"))
    except ValueError:
        return False
    if got.tzinfo is None:
        got = got.replace(tzinfo=dt.timezone.utc)
    return got == want


def _remote(item: Any) -> RemoteKey | None:
    if not isinstance(item, dict) or not isinstance(item.get("hash"), str):
        return None
    period = str(item.get("limit_reset") or "none")
    usage_field = {"monthly": "usage_monthly", "weekly": "usage_weekly", "daily": "usage_daily"}
    return RemoteKey(
        hash=item["hash"],
        name=str(item.get("name") or ""),
        limit=_dec(item.get("limit")),
        period=period,
        usage=_dec(item.get(usage_field.get(period, "usage"), item.get("usage"))),
        created_at=item.get("created_at"),
        expires_at=item.get("expires_at"),
        disabled=bool(item.get("disabled")),
        remaining=_dec(item.get("limit_remaining")),
    )

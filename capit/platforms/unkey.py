"""Unkey (API v2): keys whose usage cap is a number of verifications (credits).

``POST /v2/keys.createKey`` with ``credits.remaining`` = AMOUNT (optionally a daily or
monthly ``refill``), ``ratelimits`` from ``--rate``, ``expires`` in Unix ms and Unkey's own
key ``prefix`` mints the key under the API whose id is stored with the root key.  Unkey
spends one credit per ``keys.verifyKey`` of the key and answers ``USAGE_EXCEEDED`` once
they are gone: the cap counts verifications, not dollars.

Every endpoint is a ``POST`` with a JSON body, even reads.  capit reads status with
``keys.getKey`` and ``apis.listKeys`` only, never ``keys.verifyKey`` (that spends a
credit).  Facts, quirks and sources: shared/reference/unkey-litellm.md, section 1; the
requests are checked against Unkey's OpenAPI document by tests/test_platform_contract.py.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from capit.errors import CapitError, ExitCode, usage
from capit.http import OutcomeUnknown, ProviderClient, ProviderHTTPError
from capit.money import format_time
from capit.platforms import IssuedKey, KeyRequest, MasterField, MasterKey, Platform, RemoteKey
from capit.secret import Secret, scrub

PAGE_SIZE = 100  # apis.listKeys returns at most 100 keys a page; follow the cursor
MAX_PAGES = 1000
MAX_CREDITS = 10**12
MAX_RATE = 1_000_000  # Unkey's largest rate limit
MAX_EXPIRES_MS = 4102444800000  # 2100-01-01, the largest expiry createKey accepts
RATE_WINDOWS = {"s": (1000, "per_second"), "m": (60_000, "per_minute"),
                "h": (3_600_000, "per_hour")}
UNIT_OF_MS = {ms: unit for unit, (ms, _name) in RATE_WINDOWS.items()}

_ID_RE = re.compile(r"^[a-zA-Z0-9_]+$")
_PREFIX_RE = re.compile(r"^[a-zA-Z0-9_]{1,16}$")
_RATE_RE = re.compile(r"^(\d+)/([smh])$")
_REFILL_RE = re.compile(r"^(daily|monthly)(?::(.*))?$")

#: what each operation needs of the root key (Unkey's legacy permission names)
PERMISSIONS = {
    "read the API": ("read_api",),
    "list keys": ("read_key", "read_api"),
    "create a key": ("create_key",),
    "read the new key": ("read_key",),
    "delete the key": ("delete_key",),
}


@dataclass
class _Plan:
    """What ``keys.createKey`` will be asked for."""

    credits: dict[str, Any]
    ratelimits: list[dict[str, Any]]
    prefix: str | None
    expires_ms: int | None
    period: str  # the refill interval, or "none"


class Unkey(Platform):
    name = "unkey"
    title = "Unkey"
    cap_unit = "credits"
    cap_help = ("a number of verifications (credits), not dollars: each keys.verifyKey of the "
                "key spends one and Unkey refuses it once they are used up")
    cap_note = " (credits count verifications, not dollars)"
    env_var = "UNKEY_KEY"
    default_base_url = "https://api.unkey.com"
    console_url = "https://app.unkey.com/settings/root-keys"
    master_label = "root key"
    options = frozenset({"refill", "rate"})

    def master_fields(self) -> list[MasterField]:
        return [MasterField("key", "Unkey root key", secret=True),
                MasterField("api_id", "Unkey API id (api_...)", secret=False)]

    # -- the request -------------------------------------------------------------------

    def parse_cap(self, text: str) -> Decimal:
        """A whole number of credits: ``100``, ``1,000`` -- never dollars."""
        return Decimal(_credits(text, "amount"))

    def check_request(self, request: KeyRequest) -> None:
        if "period" in request.options:
            raise usage("--period does not apply to unkey: its credits refill with --refill "
                        "daily|monthly[:N] (default: monthly) or --refill none; nothing was sent")
        super().check_request(request)
        request.period = self._plan(request).period

    def _plan(self, request: KeyRequest) -> _Plan:
        amount = int(request.amount)
        credits: dict[str, Any] = {"remaining": amount}
        text = request.options.get("refill")
        interval: str | None = "monthly"  # the seed's "100 credits/month"
        refill_amount = amount
        if text is not None:
            value = str(text).strip().lower()
            match = _REFILL_RE.match(value)
            if value in ("none", "never", "off"):
                interval = None
            elif match is None:
                hint = (" (Unkey refills daily or monthly only)"
                        if value.startswith("weekly") else "")
                raise usage(f"--refill must be daily, monthly, daily:N, monthly:N or none, "
                            f"got {text!r}{hint}")
            else:
                interval = match.group(1)
                if match.group(2) is not None:
                    refill_amount = _credits(match.group(2), "--refill amount")
        if interval is not None:
            refill: dict[str, Any] = {"interval": interval, "amount": refill_amount}
            if interval == "monthly":  # Unkey requires the day; default: today's
                refill["refillDay"] = dt.datetime.now(dt.timezone.utc).day
            credits["refill"] = refill

        ratelimits = []
        seen: dict[str, str] = {}
        for raw in request.options.get("rate") or ():
            match = _RATE_RE.match("".join(str(raw).split()).lower())
            if match is None:
                raise usage(f"--rate must look like 10/s, 100/m or 1000/h, got {raw!r}")
            limit, unit = int(match.group(1)), match.group(2)
            if not 1 <= limit <= MAX_RATE:
                raise usage(f"--rate {raw!r}: the limit must be between 1 and {MAX_RATE:,}")
            duration, name = RATE_WINDOWS[unit]
            if name in seen:
                raise usage(f"--rate {seen[name]!r} and {raw!r} limit the same window; give one")
            seen[name] = str(raw)
            ratelimits.append({"name": name, "limit": limit, "duration": duration,
                               "autoApply": True})

        prefix = request.options.get("prefix")
        if prefix is not None and not _PREFIX_RE.match(str(prefix)):
            raise usage(f"--prefix {prefix!r}: Unkey key prefixes may hold letters, digits and "
                        "'_' (1 to 16)")
        expires_ms = None
        if request.expires_at is not None:
            expires_ms = int(request.expires_at.timestamp()) * 1000
            if expires_ms > MAX_EXPIRES_MS:
                raise usage("--expires: Unkey keys cannot expire after 2100-01-01")
        return _Plan(credits, ratelimits, str(prefix) if prefix else None, expires_ms,
                     interval or "none")

    # -- plumbing ------------------------------------------------------------------------

    def _client(self, master: MasterKey) -> ProviderClient:
        return ProviderClient(self.name, self.base_url(), master.secret)

    def _api_id(self, master: MasterKey) -> str:
        api_id = (master.meta or {}).get("api_id")
        if not api_id:
            raise CapitError(
                "the stored unkey root key has no API id (capit 0.1.0 kept only the key); "
                "store both with: capit keys add unkey",
                ExitCode.NOT_FOUND,
            )
        return check_api_id(api_id)

    def _fail(self, exc: ProviderHTTPError, doing: str, api_id: str) -> CapitError:
        status = exc.status
        kind, detail = _error_kind(exc.response.data)
        message = exc.message + (f" ({detail})" if detail else "")
        said = f" ({status}{' ' + kind if kind else ''}: {message})" if message else \
            f" (HTTP {status})"
        if status == 400 and kind.startswith("authentication/"):
            return CapitError(
                f"Unkey did not accept the root key's Authorization header{said}; check the "
                "root key (capit keys add unkey)",
                ExitCode.AUTH,
            )
        if status == 401:
            return CapitError(
                f"Unkey rejected the root key{said}; check it or create one at "
                f"{self.console_url}",
                ExitCode.AUTH,
            )
        if status == 403:
            needed = " and ".join(f"api.{api_id}.{p}" for p in PERMISSIONS.get(doing, ()))
            return CapitError(
                f"the Unkey root key may not {doing}{said}"
                + (f"; give it {needed}" if needed else ""),
                ExitCode.AUTH,
            )
        if status == 404:
            if "key_not_found" in kind:
                return CapitError(f"Unkey could not {doing}: no such key{said}",
                                  ExitCode.NOT_FOUND)
            return CapitError(
                f"Unkey found no API {api_id} this root key may use{said}; check the API id, "
                f"or give the root key api.{api_id}.read_key and api.{api_id}.read_api",
                ExitCode.NOT_FOUND,
            )
        if status == 412:
            return CapitError(f"Unkey refused to {doing}: a precondition failed{said}",
                              ExitCode.PROVIDER)
        return self.common_failure(exc, doing, said)

    def _read(self, client: ProviderClient, operation: str, body: dict[str, Any], doing: str,
              api_id: str) -> dict[str, Any]:
        """A read (a POST in Unkey's API, so marked idempotent: retried when unanswered)."""
        try:
            resp = client.request("POST", f"/v2/{operation}", json_body=body, idempotent=True)
        except ProviderHTTPError as exc:
            raise self._fail(exc, doing, api_id) from None
        data = resp.data
        if not isinstance(data, dict) or not isinstance(data.get("data"), (dict, list)):
            raise CapitError(f"Unkey's answer to {operation} is not what its API documents",
                             ExitCode.PROVIDER)
        return data

    # -- operations ----------------------------------------------------------------------

    def validate_master(self, master: MasterKey) -> str:
        api_id = self._api_id(master)
        with self._client(master) as client:
            api = self._read(client, "apis.getApi", {"apiId": api_id}, "read the API", api_id)
            # the read capit needs for listing and reconciling (read_key as well as read_api)
            self._read(client, "apis.listKeys", {"apiId": api_id, "limit": 1}, "list keys",
                       api_id)
        name = api["data"].get("name") if isinstance(api["data"], dict) else None
        return f"root key for API {name!r} ({api_id})" if name else f"root key for {api_id}"

    def issue(self, master: MasterKey, request: KeyRequest) -> IssuedKey:
        api_id = self._api_id(master)
        plan = self._plan(request)
        body: dict[str, Any] = {"apiId": api_id, "name": request.name, "credits": plan.credits}
        if plan.prefix:
            body["prefix"] = plan.prefix
        if plan.expires_ms is not None:
            body["expires"] = plan.expires_ms
        if plan.ratelimits:
            body["ratelimits"] = plan.ratelimits
        with self._client(master) as client:
            try:
                resp = client.request("POST", "/v2/keys.createKey", json_body=body)
            except ProviderHTTPError as exc:
                raise self._fail(exc, "create a key", api_id) from None
            except OutcomeUnknown as exc:
                raise self._reconcile(client, api_id, request.name, exc) from None
            data = resp.data.get("data") if isinstance(resp.data, dict) else None
            data = data if isinstance(data, dict) else {}
            key_id, key = data.get("keyId"), data.get("key")
            if not isinstance(key_id, str) or not _ID_RE.match(key_id):
                raise self._reconcile(client, api_id, request.name,
                                      OutcomeUnknown("the answer carried no key id")) from None
            if not isinstance(key, str) or not key:
                raise self._untrusted(client, key_id, "the answer carried no key")
            secret = Secret(key)
            try:
                info = self._read(client, "keys.getKey", {"keyId": key_id},
                                  "read the new key", api_id)["data"]
            except CapitError as err:
                raise self._untrusted(client, key_id, "capit could not read it back to check "
                                      f"its cap: {err.message}") from None
            problem = _mismatch(info, body)
            if problem:
                raise self._untrusted(client, key_id, problem)
        return IssuedKey(
            platform=self.name,
            secret=secret,
            hash=key_id,
            name=str(info.get("name") or request.name),
            amount=request.amount,
            period=plan.period,
            expires_at=format_time(request.expires_at) if request.expires_at else None,
            created_at=_iso_ms(info.get("createdAt")),
            unit=self.cap_unit,
        )

    def _untrusted(self, client: ProviderClient, key_id: str, problem: str) -> CapitError:
        """Never hand out a key whose cap is not the one asked for: delete it."""
        deleted = self.attempted(lambda: self._delete(client, key_id, ""))
        return self.untrusted(problem, deleted, key_id)

    def _delete(self, client: ProviderClient, key_id: str, api_id: str) -> None:
        try:
            client.request("POST", "/v2/keys.deleteKey", json_body={"keyId": key_id},
                           idempotent=True)
        except ProviderHTTPError as exc:
            if self.gone_on_retry(exc):
                return
            raise self._fail(exc, "delete the key", api_id) from None

    def short_ref(self, key_hash: str) -> str:
        return key_hash  # Unkey key ids are short; the whole id is the reference

    def _reconcile(self, client: ProviderClient, api_id: str, name: str,
                   exc: OutcomeUnknown) -> CapitError:
        """After an unanswered create: is there a key with our unique name? Never re-create."""
        return self.reconcile(
            exc.reason, name,
            lambda: [k for k in self._list(client, api_id, fresh=True) if k.name == name])

    def _list(self, client: ProviderClient, api_id: str, *, fresh: bool = False
              ) -> list[RemoteKey]:
        body: dict[str, Any] = {"apiId": api_id, "limit": PAGE_SIZE}
        if fresh:  # bypass Unkey's cache, so a key created moments ago shows up
            body["revalidateKeysCache"] = True
        keys: list[RemoteKey] = []
        seen: set[str] = set()
        cursors: set[str] = set()
        for _page in range(MAX_PAGES):
            data = self._read(client, "apis.listKeys", body, "list keys", api_id)
            items = data["data"]
            if not isinstance(items, list):
                raise CapitError("Unkey's key list is not a list", ExitCode.PROVIDER)
            for item in items:
                key = _remote(item)
                if key is not None and key.hash not in seen:
                    seen.add(key.hash)
                    keys.append(key)
            pagination = data.get("pagination")
            if not isinstance(pagination, dict) or not pagination.get("hasMore"):
                break
            cursor = pagination.get("cursor")
            if not isinstance(cursor, str) or not cursor or cursor in cursors:
                raise CapitError("Unkey's key list says there is more but gave no new cursor",
                                 ExitCode.PROVIDER)
            cursors.add(cursor)
            body["cursor"] = cursor
        return keys

    def list_keys(self, master: MasterKey) -> list[RemoteKey]:
        api_id = self._api_id(master)
        with self._client(master) as client:
            return self._list(client, api_id)

    def delete_key(self, master: MasterKey, key_hash: str) -> None:
        """``keys.deleteKey`` (a soft delete: the key stops verifying at once)."""
        api_id = self._api_id(master)
        if not (3 <= len(key_hash) <= 255 and _ID_RE.match(key_hash)):
            raise usage(f"{key_hash!r} is not an Unkey key id (key_...)")
        with self._client(master) as client:
            self._delete(client, key_hash, api_id)


# ---------------------------------------------------------------------------- helpers


def check_api_id(text: str) -> str:
    value = text.strip()
    if not (8 <= len(value) <= 255 and _ID_RE.match(value)):
        raise usage(f"{text!r} is not an Unkey API id: they look like api_1234abcd (letters, "
                    "digits and '_')")
    return value


def _credits(text: str, what: str) -> int:
    raw = text.strip()
    if not raw:
        raise usage(f"{what} is empty: give a number of credits (verifications), e.g. 100")
    if "$" in raw or raw.lower().endswith("usd"):
        raise usage(f"{what} {text!r}: Unkey caps are credits (verifications), not dollars; "
                    "give a whole number, e.g. 100")
    body = raw
    if "," in raw:
        if not re.fullmatch(r"\d{1,3}(?:,\d{3})+", raw):
            raise usage(f"{what} {text!r} is not a number of credits: use digits, e.g. 1000 "
                        "or 1,000")
        body = raw.replace(",", "")
    if re.fullmatch(r"-\d+(\.\d*)?", body):
        raise usage(f"{what} must be at least 1 credit, got {text!r}")
    if not re.fullmatch(r"\d+", body):
        if re.fullmatch(r"\d*\.\d*", body):
            raise usage(f"{what} {text!r}: Unkey credits are whole verifications, not dollars; "
                        "give a whole number, e.g. 100")
        raise usage(f"{what} {text!r} is not a number of credits: use digits, e.g. 100")
    value = int(body)
    if value < 1:
        raise usage(f"{what} must be at least 1 credit, got {text!r}")
    if value > MAX_CREDITS:
        raise usage(f"{what} {text!r} is larger than capit allows ({MAX_CREDITS:,} credits)")
    return value


def _error_kind(data: Any) -> tuple[str, str]:
    """(``authentication/missing``-style kind from the error's ``type`` URI, the first
    validation error as ``location: message``) of an Unkey error envelope."""
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return "", ""
    kind = ""
    if isinstance(err.get("type"), str):
        kind = err["type"].rsplit("/errors/", 1)[-1].removeprefix("unkey/")
        kind = kind if re.fullmatch(r"[a-z_]+(/[a-z_]+)*", kind) else ""
    detail = ""
    errors = err.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        detail = f"{first.get('location', '')}: {first.get('message', '')}".strip(": ")
        detail = " ".join(scrub(detail).split())[:160]
    return kind, detail


def _iso_ms(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    try:
        when = dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if value % 1000:
        text += f".{value % 1000:03d}"
    return text + "Z"


def _mismatch(info: Any, body: dict[str, Any]) -> str | None:
    """Why the key Unkey reports is not the one asked for (None: it is)."""
    if not isinstance(info, dict):
        return "its details are not what Unkey's API documents"
    credits = info.get("credits") if isinstance(info.get("credits"), dict) else {}
    wanted = body["credits"]
    if credits.get("remaining") != wanted["remaining"]:
        return f"the key came back with {credits.get('remaining')!r} credits"
    got_refill = credits.get("refill") if isinstance(credits.get("refill"), dict) else None
    want_refill = wanted.get("refill")
    if (got_refill is None) != (want_refill is None) or (want_refill and any(
            got_refill.get(k) != v for k, v in want_refill.items())):  # type: ignore[union-attr]
        return f"the key came back with refill {got_refill!r}"
    got_rates = {(r.get("name"), r.get("limit"), r.get("duration"), r.get("autoApply"))
                 for r in info.get("ratelimits") or [] if isinstance(r, dict)}
    want_rates = {(r["name"], r["limit"], r["duration"], r["autoApply"])
                  for r in body.get("ratelimits", [])}
    if got_rates != want_rates:
        return "the key came back with other rate limits"
    if info.get("expires") != body.get("expires"):
        return f"the key came back with expires {info.get('expires')!r}"
    return None


def _dec(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return Decimal(value)


def _remote(item: Any) -> RemoteKey | None:
    if not isinstance(item, dict) or not isinstance(item.get("keyId"), str):
        return None
    credits = item.get("credits") if isinstance(item.get("credits"), dict) else None
    refill = credits.get("refill") if credits and isinstance(credits.get("refill"), dict) \
        else None
    remaining = _dec(credits.get("remaining")) if credits else None
    interval = refill.get("interval") if refill else None
    details = []
    if refill and interval == "monthly" and isinstance(refill.get("refillDay"), int):
        details.append(f"refills on day {refill['refillDay']}")
    for rl in item.get("ratelimits") or []:
        if isinstance(rl, dict) and isinstance(rl.get("duration"), int):
            unit = UNIT_OF_MS.get(rl["duration"], f"{rl['duration']}ms")
            details.append(f"rate {rl.get('limit')}/{unit}")
    expires_at = _iso_ms(item.get("expires"))
    if expires_at:
        details.append(f"expires {expires_at[:16].replace('T', ' ')}")
    return RemoteKey(
        hash=item["keyId"],
        name=str(item.get("name") or ""),
        limit=_dec(refill.get("amount")) if refill and remaining is not None else None,
        period=interval if interval in ("daily", "monthly") and remaining is not None
        else "none",
        usage=None,
        created_at=_iso_ms(item.get("createdAt")),
        expires_at=expires_at,
        disabled=item.get("enabled") is False,
        remaining=remaining,
        unit="credits",
        details=", ".join(details),
    )

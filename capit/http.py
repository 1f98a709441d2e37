"""A small HTTP client for provider APIs: timeouts, bounded retries, masked logging.

httpx is imported when the first request is made, never at start-up.  Failures are
classified for the platform adapters:

* :class:`ProviderHTTPError` -- the provider answered with an error status;
* :class:`OutcomeUnknown` -- a non-idempotent request may have been processed but no
  usable answer arrived (timeout after sending, connection reset, 5xx, a body that is
  not JSON); the adapter reconciles instead of retrying blindly;
* :class:`CapitError` with ``NETWORK`` -- the request certainly did not reach the provider.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from capit import __version__
from capit.errors import CapitError, ExitCode
from capit.secret import Secret, scrub

log = logging.getLogger("capit.http")

DEFAULT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
MAX_ATTEMPTS = 3  # first try + two retries, for 5xx on idempotent calls and 429s
MAX_RETRY_AFTER = 10.0  # a longer Retry-After is reported to the user instead of waited out
MAX_TOTAL_WAIT = 20.0
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

sleep = time.sleep  # replaced by tests that check Retry-After handling


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    data: Any  # parsed JSON, or None when the body was empty or not JSON
    is_json: bool


class OutcomeUnknown(Exception):
    """A request that changes state may or may not have taken effect."""

    def __init__(self, reason: str, response: Response | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.response = response


class ProviderHTTPError(Exception):
    """The provider answered with an error status (after any retries)."""

    def __init__(self, status: int, message: str, response: Response, attempts: int = 1) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.response = response
        self.retry_after = _retry_after(response.headers)
        # >1: an earlier attempt went unanswered and may have taken effect (a DELETE whose
        # retry gets 404 was most likely done by the lost first attempt)
        self.attempts = attempts


def timeout_setting() -> float:
    raw = os.environ.get("CAPIT_HTTP_TIMEOUT")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise CapitError(
            f"CAPIT_HTTP_TIMEOUT must be a number of seconds, got {raw!r}", ExitCode.USAGE
        ) from None
    if not 0 < value <= 600:
        raise CapitError("CAPIT_HTTP_TIMEOUT must be between 0 and 600 seconds", ExitCode.USAGE)
    return value


def check_base_url(url: str, platform: str) -> str:
    """Refuse base URLs that would send a master key in clear text off this machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise CapitError(f"{platform} base URL {url!r} is not an http(s) URL", ExitCode.USAGE)
    if parts.username or parts.password:
        raise CapitError(f"{platform} base URL must not carry credentials", ExitCode.USAGE)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise CapitError(
            f"refusing to send a {platform} master key over plain http to {parts.hostname}; "
            "use https (plain http is allowed only for localhost)",
            ExitCode.USAGE,
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def error_message(resp: Response) -> str:
    """The provider's own error text, on one line, secrets masked, bounded in length."""
    data = resp.data
    message = ""
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("detail") or err.get("code") or "")
        elif isinstance(err, str):
            message = err
        if not message:
            message = str(data.get("message") or data.get("detail") or "")
    if not message and resp.body and not resp.is_json:
        message = "the answer was not JSON"
    message = " ".join(scrub(message).split())
    return message[:200] + ("…" if len(message) > 200 else "")


class ProviderClient:
    """Calls one provider's API with one credential."""

    def __init__(self, platform: str, base_url: str, token: Secret, *,
                 token_headers: tuple[str, ...] = ()) -> None:
        """``token_headers``: headers that carry the credential too (besides the bearer)."""
        self.platform = platform
        self.base_url = check_base_url(base_url, platform)
        self._token = token
        self._token_headers = token_headers
        self._client: Any = None

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            timeout = timeout_setting()
            self._client = httpx.Client(
                timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
                headers={"User-Agent": f"capit/{__version__}", "Accept": "application/json"},
                follow_redirects=False,
                trust_env=True,
            )
        return self._client

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        ok: tuple[int, ...] = (200,),
        idempotent: bool | None = None,
    ) -> Response:
        """Send one request; retry only where that cannot create a duplicate.

        ``idempotent`` defaults to the method's nature; pass True for a POST that only
        reads or that may safely be repeated (APIs whose every call is a POST).
        """
        import httpx

        if idempotent is None:
            idempotent = method in IDEMPOTENT
        url = f"{self.base_url}{path}"
        shown = path + (("?" + "&".join(f"{k}={v}" for k, v in params.items())) if params else "")
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            headers = {"Authorization": f"Bearer {self._token.reveal()}"}
            for name in self._token_headers:
                headers[name] = self._token.reveal()
            if json_body is not None:
                headers["Content-Type"] = "application/json"
            content = json.dumps(json_body).encode() if json_body is not None else None
            try:
                raw = self._http().request(method, url, params=params, headers=headers,
                                           content=content)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                self._log(method, shown, "not connected", started)
                raise CapitError(
                    f"cannot reach {self.platform} at {self.base_url}: {_reason(exc)}",
                    ExitCode.NETWORK,
                ) from None
            except httpx.TimeoutException as exc:
                self._log(method, shown, "timed out", started)
                if not idempotent:
                    raise OutcomeUnknown(f"no answer within the timeout ({_reason(exc)})") from None
                if attempt < MAX_ATTEMPTS:
                    continue
                raise CapitError(
                    f"{self.platform} did not answer within {timeout_setting():g} s "
                    f"({method} {path}); try again later",
                    ExitCode.NETWORK,
                ) from None
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                self._log(method, shown, "connection lost", started)
                if not idempotent:
                    raise OutcomeUnknown(f"the connection was lost ({_reason(exc)})") from None
                if attempt < MAX_ATTEMPTS:
                    continue
                raise CapitError(
                    f"the connection to {self.platform} kept failing: {_reason(exc)}",
                    ExitCode.NETWORK,
                ) from None
            except httpx.HTTPError as exc:
                self._log(method, shown, "failed", started)
                raise CapitError(
                    f"cannot talk to {self.platform} at {self.base_url}: {_reason(exc)}",
                    ExitCode.NETWORK,
                ) from None
            resp = _wrap(raw)
            self._log(method, shown, str(resp.status), started)
            if resp.status in ok:
                if resp.body and not resp.is_json:
                    if not idempotent:
                        raise OutcomeUnknown("the answer was not JSON", resp)
                    raise CapitError(
                        f"{self.platform} answered {method} {path} with a body that is not JSON "
                        f"(HTTP {resp.status}, {resp.headers.get('content-type', 'no type')})",
                        ExitCode.PROVIDER,
                    )
                return resp
            if resp.status == 429 and attempt < MAX_ATTEMPTS:
                wait = _retry_after(resp.headers)
                wait = 1.0 * attempt if wait is None else wait
                if wait <= MAX_RETRY_AFTER and waited + wait <= MAX_TOTAL_WAIT:
                    log.info("rate limited; waiting %.1f s before retrying", wait)
                    sleep(wait)
                    waited += wait
                    continue
            if resp.status >= 500:
                if not idempotent:
                    raise OutcomeUnknown(f"HTTP {resp.status}", resp)
                if attempt < MAX_ATTEMPTS:
                    wait = 0.5 * (2 ** (attempt - 1))
                    sleep(wait)
                    waited += wait
                    continue
            raise ProviderHTTPError(resp.status, error_message(resp), resp, attempt)

    def _log(self, method: str, path: str, outcome: str, started: float) -> None:
        if log.isEnabledFor(logging.INFO):
            ms = (time.monotonic() - started) * 1000
            log.info("%s %s %s -> %s (%.0f ms)", self.platform, method, path, outcome, ms)


def _wrap(raw: Any) -> Response:
    body = raw.content
    headers = {k.lower(): v for k, v in raw.headers.items()}
    data = None
    is_json = False
    if body:
        try:
            data = json.loads(body)
            is_json = True
        except (ValueError, UnicodeDecodeError):
            data = None
    return Response(raw.status_code, headers, body, data, is_json)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(scrub(text).split())[:200]

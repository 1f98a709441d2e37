"""A local OpenRouter-compatible provider for demos, agent authors and tests.

Serves the key-management API (``/api/v1/key``, ``/keys``, ``/keys/{hash}``,
``/credits``) and two billed completion endpoints (``/api/v1/chat/completions``
in OpenAI style, ``/api/v1/messages`` in Anthropic style) that enforce each
key's spending limit the way the provider does: a call that would take a key
past its cap is refused with 402 before anything is charged.

Beside it, below ``/unkey`` an Unkey-v2-shaped key service (credits spent by
``keys.verifyKey``; :mod:`capit.sandbox.unkey`) and below ``/litellm`` a LiteLLM-proxy-shaped
one (budgets spent by billed ``/chat/completions``; :mod:`capit.sandbox.litellm`).

Standard library only, so ``capit sandbox`` starts instantly::

    with Sandbox(cost=Decimal("0.25")).start() as sb:
        httpx.post(f"{sb.base_url}/keys", headers=..., json={"name": "a", "limit": 1})
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from capit.sandbox import completions
from capit.sandbox.litellm import LiteLLMService
from capit.sandbox.mount import Answer, MountedService
from capit.sandbox.state import ApiError, KeyRecord, SandboxState
from capit.sandbox.unkey import UnkeyService

API_PREFIX = "/api/v1"

RequestValidator = Callable[[str, str, dict[str, list[str]], object], str | None]

_STANDARD_MESSAGES = {
    400: "Invalid request parameters",
    401: "Missing Authentication header",
    402: "Insufficient credits",
    403: "Forbidden",
    404: "Resource not found",
    405: "Method not allowed",
    408: "Request timeout",
    413: "Payload too large",
    429: "Rate limit exceeded",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    524: "Edge network timeout",
    529: "Provider overloaded",
}

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_SECRET_HEADERS = ("authorization", "x-api-key", "x-litellm-api-key")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the sandbox received (credential headers removed)."""

    method: str
    path: str
    query: dict[str, list[str]]
    json: object | None
    headers: dict[str, str]


@dataclass
class CannedResponse:
    """A queued fault: the next matching request(s) get this instead of processing."""

    method: str
    path_prefix: str
    status: int
    body: object | None = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    delay: float = 0.0
    raw: bytes | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        relative = path[len(API_PREFIX) :] if path.startswith(API_PREFIX + "/") else path
        return path.startswith(self.path_prefix) or relative.startswith(self.path_prefix)


class Faults:
    """Fault injection for timeouts, dropped connections and canned error answers."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self._lock = lock or threading.RLock()
        self.create_delay: float = 0.0
        self.drop_after_create: bool = False
        self._queue: list[CannedResponse] = []

    def queue(
        self,
        method: str,
        path_prefix: str,
        status: int,
        body: object | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        delay: float = 0.0,
        raw: bytes | None = None,
    ) -> None:
        """Answer the next ``times`` requests matching ``method`` ("*" = any) and
        ``path_prefix`` (full, e.g. ``/api/v1/keys``, or relative, ``/keys``) with
        ``status``. ``body`` is sent as JSON (default: the provider's error shape);
        ``raw`` bytes are sent as text/html instead. ``delay`` seconds pass first.
        Matching is a plain string prefix: ``/key`` also matches ``/keys``."""
        if times < 1:
            raise ValueError("times must be >= 1")
        canned = CannedResponse(
            method=method.upper(),
            path_prefix=path_prefix,
            status=status,
            body=body,
            headers=dict(headers or {}),
            times=times,
            delay=delay,
            raw=raw,
        )
        with self._lock:
            self._queue.append(canned)

    def clear(self) -> None:
        """Forget queued answers and reset ``create_delay`` / ``drop_after_create``."""
        with self._lock:
            self._queue.clear()
            self.create_delay = 0.0
            self.drop_after_create = False

    @property
    def pending(self) -> list[CannedResponse]:
        with self._lock:
            return list(self._queue)

    def take(self, method: str, path: str) -> CannedResponse | None:
        with self._lock:
            for canned in self._queue:
                if canned.matches(method, path):
                    canned.times -= 1
                    if canned.times <= 0:
                        self._queue.remove(canned)
                    return canned
        return None


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


def _json_bytes(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _json_reply(status: int, payload: object, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, _json_bytes(payload), headers=dict(headers or {}))


def _error_payload(status: int, message: str, metadata: object, anthropic: bool) -> object:
    if anthropic:
        kind = _ANTHROPIC_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": None}
    return {"error": {"code": status, "message": message, "metadata": metadata}}


def _error_reply(error: ApiError, anthropic: bool = False) -> _Reply:
    payload = _error_payload(error.status, error.message, error.metadata, anthropic)
    return _json_reply(error.status, payload, error.headers)


def _invalid_json(_value: str) -> object:
    raise ValueError("non-finite number")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sandbox: Sandbox

    def handle_error(self, request: object, client_address: object) -> None:
        self.sandbox._log_line(f"error while handling a request from {client_address}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "capit-sandbox"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        try:  # headers and body go out in separate writes: don't let Nagle delay them
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.sandbox._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sandbox._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        self.server.sandbox._log_line(format % args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the sandbox logs one line per request itself

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        sandbox = self.server.sandbox
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            reply = _json_reply(400, _error_payload(400, "Malformed request body", None, False))
            self._write(reply)
            return
        try:
            reply = sandbox._handle(self.command, self.path, dict(self.headers.items()), raw)
        except Exception as exc:  # never let a bug kill the connection silently
            sandbox._log_line(f"internal error: {exc!r}")
            reply = _json_reply(500, _error_payload(500, "Internal Server Error", None, False))
        outcome = "dropped" if reply.drop else reply.status
        sandbox._log_line(f"{self.command} {self.path} -> {outcome}")
        self._write(reply)

    def _write(self, reply: _Reply) -> None:
        try:
            if reply.delay:
                time.sleep(reply.delay)
            if reply.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:  # client went away (e.g. after its read timeout)
            self.close_connection = True


class Sandbox:
    """A local OpenRouter-compatible provider with enforced spending caps.

    ``cost`` is charged per completion call; ``credits`` is the account's
    total; ``management_key`` defaults to a fresh ``sk-or-v1-`` key; ``clock``
    returns an aware UTC datetime (for period-reset tests); ``log`` receives
    one line per request (silent by default).
    """

    def __init__(
        self,
        cost: Decimal | str | float = Decimal("0.25"),
        credits: Decimal | str | float = Decimal("100"),
        management_key: str | None = None,
        clock: Callable[[], datetime] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.state = SandboxState(
            Decimal(str(cost)), Decimal(str(credits)), management_key, clock, self._lock
        )
        self.faults = Faults(self._lock)
        # Unkey-v2-shaped keys below /unkey, a LiteLLM-shaped proxy below /litellm
        self.unkey = UnkeyService(self._lock, self.state.now)
        self.litellm = LiteLLMService(self._lock, self.state.now, lambda: self.state.cost)
        self._mounts: tuple[MountedService, ...] = (self.unkey, self.litellm)
        self.requests: list[RecordedRequest] = []
        self.request_validator: RequestValidator | None = None
        self._log = log
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # ---------------------------------------------------------- properties
    @property
    def management_key(self) -> str:
        return self.state.management.secret

    @property
    def cost(self) -> Decimal:
        return self.state.cost

    @cost.setter
    def cost(self, value: Decimal | str | float) -> None:
        with self._lock:
            self.state.cost = Decimal(str(value))

    @property
    def total_credits(self) -> Decimal:
        return self.state.total_credits

    @total_credits.setter
    def total_credits(self, value: Decimal | str | float) -> None:
        with self._lock:
            self.state.total_credits = Decimal(str(value))

    @property
    def total_usage(self) -> Decimal:
        return self.state.total_usage

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def host(self) -> str:
        if self._server is None:
            raise RuntimeError("sandbox is not running")
        host = str(self._server.server_address[0])
        if host in ("0.0.0.0", ""):  # noqa: S104 - rendering a bound wildcard, not binding
            return "127.0.0.1"
        if host == "::":
            return "[::1]"
        return f"[{host}]" if ":" in host else host

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("sandbox is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (no path)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenRouter-style base, ``http://HOST:PORT/api/v1``."""
        return self.url + API_PREFIX

    @property
    def unkey_base_url(self) -> str:
        """capit's Unkey base URL for the sandbox: ``http://HOST:PORT/unkey``."""
        return self.url + self.unkey.mount

    @property
    def litellm_base_url(self) -> str:
        """The LiteLLM proxy URL of the sandbox: ``http://HOST:PORT/litellm``."""
        return self.url + self.litellm.mount

    @property
    def anthropic_base_url(self) -> str:
        """What ``ANTHROPIC_BASE_URL`` should be; clients call ``{this}/v1/messages``."""
        return self.url + "/api"

    # ------------------------------------------------------------ lifecycle
    def _bind(self, host: str, port: int) -> _Server:
        if self._server is not None:
            raise RuntimeError("sandbox is already running")
        server_class = _Server
        if ":" in host:
            server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        server = server_class((host, port), _Handler)
        server.sandbox = self
        self._server = server
        return server

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        """Serve in a daemon thread (port 0 = ephemeral); returns self."""
        server = self._bind(host, port)
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"capit-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        ready: Callable[[Sandbox], None] | None = None,
    ) -> None:
        """Serve in the calling thread until ``stop()`` or an exception (Ctrl-C).

        ``ready`` is called once the socket is bound (to print the URLs)."""
        server = self._bind(host, port)
        try:
            if ready is not None:
                ready(self)
            server.serve_forever(poll_interval=0.05)
        finally:
            self._close(server)

    def stop(self) -> None:
        """Stop serving and close every open connection. Idempotent."""
        server = self._server
        if server is None:
            return
        if self._thread is not None:
            self._shutdown(server)
            self._thread.join(timeout=5)
            self._thread = None
            self._close(server)
        else:  # serve_forever() in another thread: ask it to return
            self._shutdown(server)

    def _shutdown(self, server: _Server) -> None:
        """``server.shutdown()`` without waiting out the poll interval: poke the
        listening socket until the serving loop has noticed the request."""
        address = (self.host.strip("[]"), self.port)
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        while stopper.is_alive():
            try:
                socket.create_connection(address, timeout=0.2).close()
            except OSError:
                pass
            stopper.join(0.005)

    def _close(self, server: _Server) -> None:
        server.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
            if self._server is server:
                self._server = None
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> Sandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _log_line(self, line: str) -> None:
        if self._log is not None:
            self._log(line)

    # --------------------------------------------------------- test helpers
    def keys_snapshot(self) -> list[dict[str, Any]]:
        """Every inference key as the API would return it (disabled too), oldest first."""
        return self.state.snapshot()

    def create_key(self, name: str, **fields: Any) -> dict[str, Any]:
        """Create a key directly (no HTTP); returns the POST /keys 201 body."""
        _rec, payload = self.state.create_key({"name": name, **fields})
        return payload

    # ------------------------------------------------------------- requests
    def _handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> _Reply:
        split = urlsplit(target)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        body: object | None = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw, parse_constant=_invalid_json)
            except ValueError:
                bad_json = True
        lowered = {k.lower(): v for k, v in headers.items()}
        recorded = RecordedRequest(
            method=method,
            path=path,
            query=query,
            json=body,
            headers={k: v for k, v in lowered.items() if k not in _SECRET_HEADERS},
        )
        with self._lock:
            self.requests.append(recorded)

        for service in self._mounts:
            if path == service.mount or path.startswith(service.mount + "/"):
                answer = service.handle(
                    method, path[len(service.mount):] or "/", query, body, bad_json, lowered,
                    lambda: self.faults.take(method, path),
                )
                return self._from_answer(answer)

        relative = path[len(API_PREFIX) :] if path.startswith(API_PREFIX + "/") else None
        anthropic = relative == "/messages"

        validator = self.request_validator
        if validator is not None and not bad_json:
            problem = validator(method, path, query, body)
            if problem:
                error = ApiError(400, problem, {"source": "request_validator"})
                return _error_reply(error, anthropic)

        canned = self.faults.take(method, path)
        if canned is not None:
            return self._canned(canned, anthropic)

        if bad_json:
            return _error_reply(ApiError(400, "Invalid JSON body"), anthropic)

        try:
            return self._route(method, relative, query, body, lowered)
        except ApiError as error:
            return _error_reply(error, anthropic)

    @staticmethod
    def _from_answer(answer: Answer) -> _Reply:
        body = answer.raw if answer.raw is not None else _json_bytes(answer.payload)
        return _Reply(answer.status, body, answer.content_type, dict(answer.headers),
                      answer.delay, answer.drop)

    def _canned(self, canned: CannedResponse, anthropic: bool) -> _Reply:
        if canned.raw is not None:
            reply = _Reply(canned.status, canned.raw, "text/html; charset=utf-8")
        else:
            payload = canned.body
            if payload is None:
                message = _STANDARD_MESSAGES.get(canned.status, "Error")
                payload = _error_payload(canned.status, message, None, anthropic)
            reply = _Reply(canned.status, _json_bytes(payload))
        reply.headers.update(canned.headers)
        reply.delay = canned.delay
        return reply

    def _route(
        self,
        method: str,
        relative: str | None,
        query: dict[str, list[str]],
        body: object,
        headers: dict[str, str],
    ) -> _Reply:
        handlers: dict[str, Callable[[], _Reply]]
        if relative == "/key":
            handlers = {"GET": lambda: self._current_key(query, headers)}
        elif relative == "/keys":
            handlers = {
                "GET": lambda: self._list_keys(query, headers),
                "POST": lambda: self._create(query, body, headers),
            }
        elif relative == "/credits":
            handlers = {"GET": lambda: self._credits(query, headers)}
        elif relative == "/chat/completions":
            handlers = {"POST": lambda: self._chat(body, headers)}
        elif relative == "/messages":
            handlers = {"POST": lambda: self._messages(body, headers)}
        elif relative is not None and relative.startswith("/keys/") and relative.count("/") == 2:
            key_id = relative[len("/keys/") :]
            if not key_id:
                raise ApiError(404, "Not Found")
            handlers = {
                "GET": lambda: self._key(key_id, query, headers),
                "PATCH": lambda: self._update(key_id, query, body, headers),
                "DELETE": lambda: self._delete(key_id, query, headers),
            }
        else:
            raise ApiError(404, "Not Found")
        handler = handlers.get(method)
        if handler is None:
            raise ApiError(405, "Method not allowed", None, {"Allow": ", ".join(handlers)})
        return handler()

    # ------------------------------------------------------------ auth helpers
    @staticmethod
    def _bearer(headers: dict[str, str]) -> str | None:
        value = headers.get("authorization", "").strip()
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def _management(self, headers: dict[str, str]) -> KeyRecord:
        rec = self.state.authenticate(self._bearer(headers))
        if not rec.management:
            raise ApiError(403, "Only management keys can perform this operation")
        return rec

    def _inference(self, token: str | None) -> KeyRecord:
        rec = self.state.authenticate(token)
        if rec.management:
            raise ApiError(
                403,
                "Management keys cannot be used for completion requests; "
                "use an API key created with this management key",
            )
        return rec

    @staticmethod
    def _no_query(query: dict[str, list[str]]) -> None:
        if query:
            raise ApiError(
                400,
                "Invalid request parameters",
                {
                    "errors": [
                        {"path": [name], "message": f"Unrecognized query parameter: '{name}'"}
                        for name in sorted(query)
                    ]
                },
            )

    # --------------------------------------------------------------- endpoints
    def _current_key(self, query: dict[str, list[str]], headers: dict[str, str]) -> _Reply:
        rec = self.state.authenticate(self._bearer(headers))
        self._no_query(query)
        with self._lock:
            return _json_reply(200, {"data": self.state.current_key(rec)})

    def _list_keys(self, query: dict[str, list[str]], headers: dict[str, str]) -> _Reply:
        self._management(headers)
        return _json_reply(200, self.state.list_keys(query))

    def _create(self, query: dict[str, list[str]], body: object, headers: dict[str, str]) -> _Reply:
        self._management(headers)
        self._no_query(query)
        _rec, payload = self.state.create_key(body)
        reply = _json_reply(201, payload)
        with self._lock:
            reply.delay = float(self.faults.create_delay)
            reply.drop = bool(self.faults.drop_after_create)
        return reply

    def _key(self, key_id: str, query: dict[str, list[str]], headers: dict[str, str]) -> _Reply:
        self._management(headers)
        self._no_query(query)
        return _json_reply(200, self.state.get_key(key_id))

    def _update(
        self, key_id: str, query: dict[str, list[str]], body: object, headers: dict[str, str]
    ) -> _Reply:
        self._management(headers)
        self._no_query(query)
        return _json_reply(200, self.state.update_key(key_id, body))

    def _delete(self, key_id: str, query: dict[str, list[str]], headers: dict[str, str]) -> _Reply:
        self._management(headers)
        self._no_query(query)
        return _json_reply(200, self.state.delete_key(key_id))

    def _credits(self, query: dict[str, list[str]], headers: dict[str, str]) -> _Reply:
        self._management(headers)
        self._no_query(query)
        return _json_reply(200, self.state.credits())

    def _chat(self, body: object, headers: dict[str, str]) -> _Reply:
        rec = self._inference(self._bearer(headers))
        request = completions.check_chat_request(body)
        cost = self.state.charge(rec)
        if request.get("stream"):
            return _Reply(
                200,
                completions.chat_stream(request, cost),
                "text/event-stream",
                {"Cache-Control": "no-cache"},
            )
        return _json_reply(200, completions.chat_result(request, cost))

    def _messages(self, body: object, headers: dict[str, str]) -> _Reply:
        token = self._bearer(headers) or headers.get("x-api-key") or None
        rec = self._inference(token)
        request = completions.check_messages_request(body)
        cost = self.state.charge(rec)
        if request.get("stream"):
            return _Reply(
                200,
                completions.messages_stream(request, cost),
                "text/event-stream",
                {"Cache-Control": "no-cache"},
            )
        return _json_reply(200, completions.messages_result(request, cost))

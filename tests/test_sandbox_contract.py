"""The sandbox against OpenRouter's official OpenAPI document (skipped when absent).

Every response the sandbox produces for the key-management and completion
endpoints is validated against the document; the requests these tests send
(the shapes capit sends) are validated STRICTLY through the sandbox's
``request_validator`` hook.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

try:
    from openapi_contract import (
        OpenAPIDoc,
        get_doc,
        make_request_validator,
        parse_sse,
        require_spec,
        spec_available,
    )
except ImportError:  # tests/ became a package
    from tests.openapi_contract import (
        OpenAPIDoc,
        get_doc,
        make_request_validator,
        parse_sse,
        require_spec,
        spec_available,
    )

from capit.sandbox import Sandbox

require_spec()  # skips the whole module when the document is absent

UTC = timezone.utc
CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}
MESSAGES = {
    "model": "anthropic/claude-sonnet-4",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Hello!"}],
}

# Statuses the sandbox (like the real service) returns but the document does not
# list for that operation; their bodies are checked against the named schema.
UNDOCUMENTED = {
    ("GET", "/keys", 403): "ForbiddenResponse",
    ("GET", "/keys/{hash}", 403): "ForbiddenResponse",
    ("PATCH", "/keys/{hash}", 403): "ForbiddenResponse",
    ("DELETE", "/keys/{hash}", 403): "ForbiddenResponse",
    ("POST", "/messages", 402): "AnthropicMessagesErrorResponse",
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def doc() -> OpenAPIDoc:
    return get_doc()


class Exchange:
    """Calls the sandbox and remembers every (request, response) for validation."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.seen: list[tuple[str, str, int, str, bytes]] = []
        self.http = httpx.Client(timeout=5, verify=False)

    def __call__(self, method: str, path: str, key: str | None = None, **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key:
            headers["Authorization"] = f"Bearer {key}"
        r = self.http.request(method, self.sb.base_url + path, headers=headers, **kwargs)
        self.seen.append(
            (
                method,
                "/api/v1" + path.split("?")[0],
                r.status_code,
                r.headers.get("content-type", ""),
                r.content,
            )
        )
        return r

    def statuses(self) -> set[tuple[str, str, int]]:
        return {(m, p, s) for m, p, s, _, _ in self.seen}


def validate_exchange(doc: OpenAPIDoc, seen) -> list[str]:
    problems: list[str] = []
    for method, path, status, content_type, raw in seen:
        template, _ = doc.match(path)
        if content_type.startswith("text/event-stream"):
            for event in parse_sse(raw.decode()):
                if event["data"] == "[DONE]":
                    continue
                payload = {"data": json.loads(event["data"])}
                if "event" in event:
                    payload["event"] = event["event"]
                problems += doc.validate_response(method, path, status, payload, content_type)
            continue
        body = json.loads(raw)
        fallback = UNDOCUMENTED.get((method, template, status))
        if fallback:
            found = doc.validate_response(method, path, status, body)
            assert len(found) == 1 and "is not documented" in found[0], found
            problems += doc.validate_component(fallback, body)
        else:
            problems += doc.validate_response(method, path, status, body)
    return problems


@pytest.fixture
def world(doc):
    clock = Clock()
    with Sandbox(cost=Decimal("0.25"), credits=Decimal("2"), clock=clock).start() as sb:
        ex = Exchange(sb)
        yield sb, ex, clock
        ex.http.close()


def test_valid_flow_requests_and_responses_follow_the_document(doc, world):
    sb, call, clock = world
    validator = make_request_validator(doc)
    sb.request_validator = validator
    m = sb.management_key

    assert call("GET", "/key", m).status_code == 200
    created = call(
        "POST",
        "/keys",
        m,
        json={
            "name": "capit-claude-1",
            "limit": 1,
            "limit_reset": "monthly",
            "expires_at": "2027-12-31T23:59:59Z",
            "include_byok_in_limit": False,
        },
    )
    assert created.status_code == 201
    key, h = created.json()["key"], created.json()["data"]["hash"]
    assert call("POST", "/keys", m, json={"name": "plain"}).status_code == 201
    assert call("GET", "/keys", m).status_code == 200
    r = call(
        "GET",
        "/keys",
        m,
        params={
            "include_disabled": "true",
            "offset": "0",
            "workspace_id": sb.state.default_workspace_id,
        },
    )
    assert len(r.json()["data"]) == 2
    assert call("GET", f"/keys/{h}", m).status_code == 200
    assert call("PATCH", f"/keys/{h}", m, json={"name": "renamed", "limit": 1.0}).status_code == 200
    assert call("GET", "/credits", m).status_code == 200
    assert call("GET", "/key", key).status_code == 200

    statuses = []
    for _ in range(2):
        statuses.append(call("POST", "/chat/completions", key, json=CHAT).status_code)
        statuses.append(call("POST", "/messages", key, json=MESSAGES).status_code)
    statuses.append(call("POST", "/chat/completions", key, json=CHAT).status_code)
    statuses.append(call("POST", "/messages", key, json=MESSAGES).status_code)
    assert statuses == [200, 200, 200, 200, 402, 402]

    clock.now += timedelta(days=31)  # next month: the monthly cap has reset
    r = call("POST", "/chat/completions", key, json={**CHAT, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    r = call("POST", "/messages", key, json={**MESSAGES, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")

    assert call("PATCH", f"/keys/{h}", m, json={"disabled": True}).status_code == 200
    assert call("POST", "/chat/completions", key, json=CHAT).status_code == 401
    assert call("DELETE", f"/keys/{h}", m).status_code == 200

    assert validator.violations == []
    assert validator.checked == len(sb.requests)
    assert validate_exchange(doc, call.seen) == []


def test_error_responses_follow_the_document(doc, world):
    sb, call, clock = world
    m = sb.management_key
    created = call("POST", "/keys", m, json={"name": "child", "limit": 0.25}).json()
    key, h = created["key"], created["data"]["hash"]
    unknown = "sk-or-v1-" + "0" * 64
    missing = "0" * 64

    # 400
    call("POST", "/keys", m, json={"name": "x", "guardrail_id": "g"})
    call("POST", "/keys", m, json={"name": ""})
    call("POST", "/keys", m, content=b"{oops")
    call("GET", "/keys", m, params={"include_expired": "true"})
    call("PATCH", f"/keys/{h}", m, json={"limit": "lots"})
    call("POST", "/chat/completions", key, json={"model": "x"})
    call("POST", "/messages", key, json={"model": "x"})
    # 401
    for path in ("/key", "/keys", f"/keys/{h}", "/credits"):
        call("GET", path)
        call("GET", path, unknown)
    call("POST", "/keys", json={"name": "x"})
    call("PATCH", f"/keys/{h}", json={"name": "x"})
    call("DELETE", f"/keys/{h}")
    call("POST", "/chat/completions", json=CHAT)
    call("POST", "/messages", json=MESSAGES)
    # 403
    call("GET", "/keys", key)
    call("POST", "/keys", key, json={"name": "x"})
    call("GET", f"/keys/{h}", key)
    call("PATCH", f"/keys/{h}", key, json={"name": "x"})
    call("DELETE", f"/keys/{h}", key)
    call("GET", "/credits", key)
    call("POST", "/chat/completions", m, json=CHAT)
    call("POST", "/messages", m, json=MESSAGES)
    # 404
    call("GET", f"/keys/{missing}", m)
    call("PATCH", f"/keys/{missing}", m, json={"name": "x"})
    call("DELETE", f"/keys/{missing}", m)
    # 402 (key limit, then account credits)
    call("POST", "/chat/completions", key, json=CHAT)
    call("POST", "/chat/completions", key, json=CHAT)
    call("POST", "/messages", key, json=MESSAGES)
    sb.total_credits = Decimal("0.25")
    rich = call("POST", "/keys", m, json={"name": "rich"}).json()["key"]
    call("POST", "/chat/completions", rich, json=CHAT)
    call("POST", "/messages", rich, json=MESSAGES)
    # 401 for disabled and expired keys
    call("PATCH", f"/keys/{h}", m, json={"disabled": True})
    call("POST", "/chat/completions", key, json=CHAT)
    call("POST", "/messages", key, json=MESSAGES)
    expiring = call(
        "POST", "/keys", m, json={"name": "e", "expires_at": "2026-03-11T12:00:01Z"}
    ).json()["key"]
    clock.now += timedelta(seconds=5)
    call("GET", "/key", expiring)
    # canned faults on documented statuses
    sb.faults.queue("POST", "/keys", 429, headers={"Retry-After": "1"})
    sb.faults.queue("GET", "/keys", 500)
    sb.faults.queue("POST", "/chat/completions", 503)
    sb.faults.queue("POST", "/messages", 529)
    call("POST", "/keys", m, json={"name": "x"})
    call("GET", "/keys", m)
    call("POST", "/chat/completions", rich, json=CHAT)
    call("POST", "/messages", rich, json=MESSAGES)

    produced = call.statuses()
    for expected in [
        ("POST", "/api/v1/keys", 400),
        ("GET", "/api/v1/keys", 400),
        ("POST", "/api/v1/chat/completions", 400),
        ("POST", "/api/v1/messages", 400),
        ("GET", "/api/v1/credits", 401),
        ("POST", "/api/v1/chat/completions", 401),
        ("POST", "/api/v1/messages", 401),
        ("POST", "/api/v1/keys", 403),
        ("GET", "/api/v1/credits", 403),
        ("POST", "/api/v1/chat/completions", 403),
        ("POST", "/api/v1/messages", 403),
        ("POST", "/api/v1/chat/completions", 402),
        ("POST", "/api/v1/messages", 402),
        ("POST", "/api/v1/keys", 429),
        ("GET", "/api/v1/keys", 500),
        ("POST", "/api/v1/chat/completions", 503),
        ("POST", "/api/v1/messages", 529),
        ("GET", "/api/v1/key", 401),
    ]:
        assert expected in produced, expected
    assert validate_exchange(doc, call.seen) == []


def test_unknown_route_and_method_bodies_use_the_error_schema(doc, world):
    sb, call, _ = world
    for method, path, status in (("GET", "/nothing-here", 404), ("PUT", "/keys", 405)):
        r = call(method, path, sb.management_key)
        assert r.status_code == status
        component = "NotFoundResponse" if status == 404 else "BadRequestResponse"
        assert doc.validate_component(component, r.json()) == []


# ------------------------------------------------------------ the helper itself


def test_spec_is_located(doc):
    assert spec_available()
    assert doc.prefix == "/api/v1"
    assert doc.match("/api/v1/keys/abc") == ("/keys/{hash}", {"hash": "abc"})
    assert doc.match("/keys") is None  # the server prefix is required


def test_validate_request_accepts_a_valid_create_body(doc):
    body = {
        "name": "capit-1",
        "limit": 5,
        "limit_reset": "monthly",
        "expires_at": "2027-12-31T23:59:59Z",
    }
    assert doc.validate_request("POST", "/api/v1/keys", {}, body) == []
    assert doc.validate_request("POST", "/api/v1/keys", {}, {"name": "a", "limit": None}) == []


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "needle"),
    [
        ("POST", "/api/v1/keys", {}, {"name": "a", "guardrail_id": "g"}, "guardrail_id"),
        ("POST", "/api/v1/keys", {}, {"name": "a", "limit": "5"}, "limit"),
        ("POST", "/api/v1/keys", {}, {"limit": 5}, "'name' is a required property"),
        ("POST", "/api/v1/keys", {}, {"name": "a", "limit_reset": "yearly"}, "limit_reset"),
        ("POST", "/api/v1/keys", {}, {"name": "a", "expires_at": "tomorrow"}, "date-time"),
        ("POST", "/api/v1/keys", {}, None, "request body is required"),
        ("PATCH", "/api/v1/keys/abc", {}, {"name": "a", "expires_at": None}, "expires_at"),
        ("GET", "/api/v1/keys", {"limit": ["10"]}, None, "unknown query parameter 'limit'"),
        ("GET", "/api/v1/keys", {"include_disabled": ["yes"]}, None, "include_disabled"),
        ("GET", "/api/v1/keys", {"offset": ["-1"]}, None, "offset"),
        ("GET", "/api/v1/keys", {"workspace_id": ["nope"]}, None, "workspace_id"),
        ("GET", "/api/v1/keys", {}, {"name": "a"}, "takes no request body"),
        ("PUT", "/api/v1/keys", {}, None, "method not documented"),
        ("POST", "/api/v1/guardrails/x/assign", {}, {}, "matches no path"),
        ("GET", "/keys", {}, None, "matches no path"),
        (
            "POST",
            "/api/v1/chat/completions",
            {},
            {"messages": [{"role": "user", "content": "hi", "extra": 1}]},
            "extra",
        ),
        ("POST", "/api/v1/messages", {}, {**MESSAGES, "bogus": True}, "bogus"),
    ],
)
def test_validate_request_flags_violations(doc, method, path, query, body, needle):
    problems = doc.validate_request(method, path, query, body)
    assert problems, (method, path, query, body)
    assert any(needle in p for p in problems), problems


def test_validate_request_accepts_completion_bodies(doc):
    assert (
        doc.validate_request("POST", "/api/v1/chat/completions", {}, {**CHAT, "stream": True}) == []
    )
    assert doc.validate_request("POST", "/api/v1/messages", {}, MESSAGES) == []
    blocks = {
        **MESSAGES,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    assert doc.validate_request("POST", "/api/v1/messages", {}, blocks) == []


def test_validate_response_is_not_vacuous(doc):
    assert (
        doc.validate_response(
            "GET", "/api/v1/credits", 200, {"data": {"total_credits": 1, "total_usage": 0}}
        )
        == []
    )
    assert doc.validate_response("GET", "/api/v1/credits", 200, {"data": {"total_credits": 1}})
    assert doc.validate_response("GET", "/api/v1/keys", 200, {"data": [{"hash": "x"}]})
    assert doc.validate_response("DELETE", "/api/v1/keys/x", 200, {"deleted": "yes"})
    problems = doc.validate_response("GET", "/api/v1/keys", 418, {})
    assert problems and "not documented" in problems[0]
    # responses are not strict: an extra field is fine
    assert (
        doc.validate_response(
            "GET",
            "/api/v1/credits",
            200,
            {"data": {"total_credits": 1, "total_usage": 0, "new": 1}},
        )
        == []
    )


def test_request_validator_plugs_into_the_sandbox(doc, world):
    sb, call, _ = world
    validator = make_request_validator(doc)
    sb.request_validator = validator
    r = call("POST", "/keys", sb.management_key, json={"name": "x", "guardrail_id": "g"})
    assert r.status_code == 400 and "guardrail_id" in r.json()["error"]["message"]
    assert sb.keys_snapshot() == []
    assert len(validator.violations) == 1 and "guardrail_id" in validator.violations[0]

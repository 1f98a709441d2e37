"""The sandbox provider: management API, auth rules, caps, periods, faults, streaming."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from capit.sandbox import Sandbox
from capit.sandbox.completions import REPLY

UTC = timezone.utc
KEY_RE = re.compile(r"^sk-or-v1-[0-9a-f]{64}$")
CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}
MESSAGES = {
    "model": "anthropic/claude-sonnet-4",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Hello!"}],
}


class FakeClock:
    """An injectable clock: ``clock()`` -> aware UTC datetime; move it by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 3, 11, 12, 0, tzinfo=UTC))  # a Wednesday


@pytest.fixture
def sandbox(clock):
    with Sandbox(clock=clock).start() as sb:
        yield sb


def client(sb: Sandbox, key: str | None, **kwargs) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    # verify=False: plain http; skips loading the CA bundle (tens of ms per client)
    return httpx.Client(base_url=sb.base_url, headers=headers, timeout=5, verify=False, **kwargs)


@pytest.fixture
def mgmt(sandbox):
    with client(sandbox, sandbox.management_key) as c:
        yield c


def make_key(mgmt: httpx.Client, **fields) -> dict:
    r = mgmt.post("/keys", json={"name": "agent", **fields})
    assert r.status_code == 201, r.text
    return r.json()


def error(r: httpx.Response) -> dict:
    return r.json()["error"]


# ------------------------------------------------------------------ lifecycle


def test_urls_and_context_manager():
    sb = Sandbox(management_key="sk-or-v1-" + "ab" * 32)
    with sb.start() as running:
        assert running is sb
        assert sb.base_url == f"http://127.0.0.1:{sb.port}/api/v1"
        assert sb.anthropic_base_url == f"http://127.0.0.1:{sb.port}/api"
        assert sb.management_key == "sk-or-v1-" + "ab" * 32
        r = httpx.get(
            f"{sb.base_url}/key", headers={"Authorization": f"Bearer {sb.management_key}"}
        )
        assert r.status_code == 200
        port = sb.port
    assert not sb.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/api/v1/key", timeout=2)
    sb.stop()  # idempotent


def test_generated_management_key_and_entering_starts():
    with Sandbox() as sb:
        assert KEY_RE.match(sb.management_key)
        assert sb.running


def test_stop_closes_kept_alive_connections(sandbox):
    c = client(sandbox, sandbox.management_key)
    assert c.get("/credits").status_code == 200  # connection now pooled
    sandbox.stop()
    with pytest.raises(httpx.TransportError):
        c.get("/credits")
    c.close()


def test_serve_forever_blocks_until_stopped():
    sb = Sandbox()
    ready = threading.Event()
    thread = threading.Thread(
        target=sb.serve_forever, kwargs={"ready": lambda s: ready.set()}, daemon=True
    )
    thread.start()
    assert ready.wait(5)
    assert httpx.get(f"{sb.base_url}/key").status_code == 401
    sb.stop()
    thread.join(5)
    assert not thread.is_alive() and not sb.running


def test_quiet_by_default_and_log_hook(capfd, clock):
    lines: list[str] = []
    with Sandbox(clock=clock).start() as quiet, Sandbox(log=lines.append).start() as loud:
        httpx.get(f"{quiet.base_url}/nowhere")
        httpx.get(f"{loud.base_url}/nowhere")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert lines == ["GET /api/v1/nowhere -> 404"]


# ----------------------------------------------------------------- management


def test_create_key(sandbox, mgmt, clock):
    body = make_key(
        mgmt,
        name="claude-1",
        limit=5,
        limit_reset="monthly",
        include_byok_in_limit=True,
        expires_at="2027-12-31T23:59:59Z",
    )
    key, data = body["key"], body["data"]
    assert KEY_RE.match(key)
    assert data["hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert data["label"] == f"{key[:12]}...{key[-4:]}"
    assert data["label"].startswith("sk-or-v1-") and len(data["label"]) == 19
    assert data["name"] == "claude-1" and data["disabled"] is False
    assert data["limit"] == 5 and data["limit_remaining"] == 5 and data["limit_reset"] == "monthly"
    assert data["include_byok_in_limit"] is True
    assert data["expires_at"] == "2027-12-31T23:59:59Z"
    assert data["created_at"] == "2026-03-11T12:00:00Z" and data["updated_at"] is None
    for field in ("usage", "usage_daily", "usage_weekly", "usage_monthly", "byok_usage"):
        assert data[field] == 0
    assert sandbox.keys_snapshot() == [data]


def test_create_minimal_key_is_unlimited(mgmt):
    data = make_key(mgmt)["data"]
    assert data["limit"] is None and data["limit_remaining"] is None
    assert data["limit_reset"] is None and data["expires_at"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": 5},
        {"name": "a", "guardrail_id": "x"},  # the field capit 0.1.0 invented
        {"name": "a", "limit": "5"},
        {"name": "a", "limit": True},
        {"name": "a", "limit": -1},
        {"name": "a", "limit_reset": "yearly"},
        {"name": "a", "include_byok_in_limit": "yes"},
        {"name": "a", "expires_at": "2027-12-31T23:59Z"},  # no seconds
        {"name": "a", "expires_at": "2027-12-31T23:59:59+02:00"},  # not UTC
        {"name": "a", "expires_at": "2027-12-31"},
        {"name": "a", "expires_at": "2026-03-11T11:59:59Z"},  # in the past
        {"name": "a", "workspace_id": "not-a-uuid"},
        ["name", "a"],
    ],
)
def test_create_rejects_bad_bodies(sandbox, mgmt, body):
    r = mgmt.post("/keys", json=body)
    assert r.status_code == 400, r.text
    err = error(r)
    assert err["code"] == 400 and err["message"] == "Invalid request parameters"
    assert err["metadata"]["errors"]
    assert sandbox.keys_snapshot() == []


def test_unknown_field_details_in_metadata(mgmt):
    err = error(mgmt.post("/keys", json={"name": "a", "budget_limit": 5}))
    assert err["metadata"]["errors"] == [
        {"path": ["budget_limit"], "message": "Unrecognized key: 'budget_limit'"}
    ]


def test_create_accepts_fractional_seconds_and_null_fields(mgmt):
    data = make_key(
        mgmt,
        expires_at="2026-03-11T12:00:01.250Z",
        limit=None,
        limit_reset=None,
        creator_user_id=None,
    )["data"]
    assert data["expires_at"] == "2026-03-11T12:00:01.250Z"


def test_invalid_json_body(mgmt):
    r = mgmt.post("/keys", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and error(r)["message"] == "Invalid JSON body"
    r = mgmt.post("/keys", content=b'{"name": "a", "limit": NaN}')
    assert r.status_code == 400


def test_list_pages_of_100_most_recent_first(sandbox, mgmt, clock):
    created = []
    for i in range(250):
        created.append(sandbox.create_key(f"k{i:03d}")["data"]["hash"])
        if i % 2:
            clock.advance(seconds=1)  # pairs share a timestamp: order must stay stable
    pages = [mgmt.get("/keys", params={"offset": off}).json()["data"] for off in (0, 100, 200)]
    assert [len(p) for p in pages] == [100, 100, 50]
    listed = [k["hash"] for page in pages for k in page]
    assert listed == created[::-1]
    assert mgmt.get("/keys", params={"offset": 250}).json() == {"data": []}
    assert [k["hash"] for k in mgmt.get("/keys").json()["data"]] == listed[:100]


def test_list_disabled_and_expired(sandbox, mgmt, clock):
    live = make_key(mgmt, name="live")["data"]["hash"]
    off = make_key(mgmt, name="off")["data"]["hash"]
    soon = make_key(mgmt, name="soon", expires_at="2026-03-11T13:00:00Z")["data"]["hash"]
    assert mgmt.patch(f"/keys/{off}", json={"disabled": True}).status_code == 200
    clock.advance(hours=2)  # "soon" has expired: still listed (no include_expired here)

    def names(**params):
        return {k["name"] for k in mgmt.get("/keys", params=params).json()["data"]}

    assert names() == {"live", "soon"}
    assert names(include_disabled="false") == {"live", "soon"}
    assert names(include_disabled="true") == {"live", "soon", "off"}
    assert {k["hash"] for k in sandbox.keys_snapshot()} == {live, off, soon}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "10"},
        {"include_expired": "true"},
        {"include_disabled": "yes"},
        {"include_disabled": "1"},
        {"offset": "-1"},
        {"offset": "abc"},
        {"offset": ""},
        {"workspace_id": "nope"},
    ],
)
def test_list_rejects_bad_query(mgmt, params):
    r = mgmt.get("/keys", params=params)
    assert r.status_code == 400 and error(r)["message"] == "Invalid request parameters"


def test_list_by_workspace(sandbox, mgmt):
    other = "0df9e665-d932-5740-b2c7-b52af166bc11"
    make_key(mgmt, name="default")
    make_key(mgmt, name="other", workspace_id=other)
    assert [k["name"] for k in mgmt.get("/keys").json()["data"]] == ["default"]
    listed = mgmt.get("/keys", params={"workspace_id": other}).json()["data"]
    assert [(k["name"], k["workspace_id"]) for k in listed] == [("other", other)]


def test_get_patch_delete(sandbox, mgmt, clock):
    h = make_key(mgmt, name="before", limit=1)["data"]["hash"]
    got = mgmt.get(f"/keys/{h}").json()["data"]
    assert got["name"] == "before" and got["hash"] == h

    clock.advance(minutes=5)
    r = mgmt.patch(
        f"/keys/{h}",
        json={"name": "after", "limit": 2.5, "limit_reset": "daily", "include_byok_in_limit": True},
    )
    assert r.status_code == 200
    data = r.json()["data"]
    assert (data["name"], data["limit"], data["limit_reset"]) == ("after", 2.5, "daily")
    assert data["include_byok_in_limit"] is True
    assert data["updated_at"] == "2026-03-11T12:05:00Z"
    assert mgmt.patch(f"/keys/{h}", json={"limit": None}).json()["data"]["limit"] is None

    for body in ({"expires_at": "2027-01-01T00:00:00Z"}, {"disabled": "true"}, {"name": ""}, [1]):
        r = mgmt.patch(f"/keys/{h}", json=body)
        assert r.status_code == 400, body

    assert mgmt.delete(f"/keys/{h}").json() == {"deleted": True}
    assert sandbox.keys_snapshot() == []
    for method in ("GET", "PATCH", "DELETE"):
        r = mgmt.request(method, f"/keys/{h}", json={} if method == "PATCH" else None)
        assert r.status_code == 404 and error(r) == {
            "code": 404,
            "message": "Resource not found",
            "metadata": None,
        }


def test_current_key(sandbox, mgmt):
    info = mgmt.get("/key").json()["data"]
    assert info["is_management_key"] is True and info["is_provisioning_key"] is True
    assert info["label"] == f"{sandbox.management_key[:12]}...{sandbox.management_key[-4:]}"
    key = make_key(mgmt, limit=3, limit_reset="weekly")["key"]
    with client(sandbox, key) as c:
        info = c.get("/key").json()["data"]
    assert info["is_management_key"] is False and info["is_provisioning_key"] is False
    assert info["limit"] == 3 and info["limit_remaining"] == 3 and info["limit_reset"] == "weekly"
    assert "hash" not in info


def test_credits(sandbox, mgmt):
    assert mgmt.get("/credits").json() == {"data": {"total_credits": 100.0, "total_usage": 0.0}}


# ----------------------------------------------------------------------- auth

MANAGEMENT_CALLS = [
    ("GET", "/keys", None),
    ("POST", "/keys", {"name": "x"}),
    ("GET", "/keys/{h}", None),
    ("PATCH", "/keys/{h}", {"name": "y"}),
    ("DELETE", "/keys/{h}", None),
    ("GET", "/credits", None),
]


def test_auth_missing_and_unknown(sandbox):
    with client(sandbox, None) as anon:
        for path in ("/key", "/keys", "/credits"):
            assert error(anon.get(path)) == {
                "code": 401,
                "message": "Missing Authentication header",
                "metadata": None,
            }
        r = anon.get("/keys", headers={"Authorization": f"Basic {sandbox.management_key}"})
        assert r.status_code == 401
        r = anon.post("/chat/completions", json=CHAT)
        assert r.status_code == 401
    with client(sandbox, "sk-or-v1-" + "0" * 64) as stranger:
        r = stranger.get("/keys")
        assert r.status_code == 401 and error(r)["message"] == "User not found."
        assert stranger.post("/chat/completions", json=CHAT).status_code == 401


def test_inference_key_on_management_endpoints(sandbox, mgmt):
    created = make_key(mgmt)
    h = created["data"]["hash"]
    with client(sandbox, created["key"]) as child:
        for method, path, body in MANAGEMENT_CALLS:
            r = child.request(method, path.format(h=h), json=body)
            assert r.status_code == 403, (method, path)
            assert error(r)["message"] == "Only management keys can perform this operation"
    assert len(sandbox.keys_snapshot()) == 1  # nothing created, nothing deleted


def test_management_key_cannot_call_completions(sandbox, mgmt):
    r = mgmt.post("/chat/completions", json=CHAT)
    assert r.status_code == 403 and "Management keys" in error(r)["message"]
    r = mgmt.post("/messages", json=MESSAGES)
    assert r.status_code == 403
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "permission_error"
    assert sandbox.total_usage == 0


def test_disabled_and_expired_keys_are_refused(sandbox, mgmt, clock):
    disabled = make_key(mgmt, name="d")
    expiring = make_key(mgmt, name="e", expires_at="2026-03-11T12:30:00Z")
    mgmt.patch(f"/keys/{disabled['data']['hash']}", json={"disabled": True})
    with client(sandbox, disabled["key"]) as c:
        for r in (c.get("/key"), c.post("/chat/completions", json=CHAT)):
            assert r.status_code == 401 and "disabled" in error(r)["message"]
        r = c.post("/messages", json=MESSAGES)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    with client(sandbox, expiring["key"]) as c:
        assert c.post("/chat/completions", json=CHAT).status_code == 200
        clock.set(datetime(2026, 3, 11, 12, 30, tzinfo=UTC))
        r = c.post("/chat/completions", json=CHAT)
        assert r.status_code == 401 and "expired" in error(r)["message"]
    mgmt.patch(f"/keys/{disabled['data']['hash']}", json={"disabled": False})
    with client(sandbox, disabled["key"]) as c:
        assert c.post("/chat/completions", json=CHAT).status_code == 200


# -------------------------------------------------------------------- billing


def test_cap_on_chat_completions(sandbox, mgmt):
    created = make_key(mgmt, limit=1)
    with client(sandbox, created["key"]) as c:
        ok = [c.post("/chat/completions", json=CHAT) for _ in range(4)]
        assert [r.status_code for r in ok] == [200] * 4
        assert ok[0].json()["usage"]["cost"] == 0.25
        assert ok[0].json()["choices"][0]["message"]["content"] == REPLY
        refused = c.post("/chat/completions", json=CHAT)
        assert refused.status_code == 402
        err = error(refused)
        assert err["code"] == 402 and err["metadata"]["limit_source"] == "openrouter_key_limit"
        assert c.get("/key").json()["data"]["limit_remaining"] == 0
    data = mgmt.get(f"/keys/{created['data']['hash']}").json()["data"]
    assert data["usage"] == 1.0 and data["limit_remaining"] == 0.0
    assert sandbox.total_usage == Decimal("1.00")
    assert mgmt.get("/credits").json()["data"]["total_usage"] == 1.0


def test_cap_on_messages_with_x_api_key(sandbox, mgmt):
    created = make_key(mgmt, limit=1)
    url = f"{sandbox.anthropic_base_url}/v1/messages"
    headers = {"x-api-key": created["key"], "anthropic-version": "2023-06-01"}
    ok = [httpx.post(url, json=MESSAGES, headers=headers) for _ in range(4)]
    assert [r.status_code for r in ok] == [200] * 4
    body = ok[0].json()
    assert body["type"] == "message" and body["content"][0]["text"] == REPLY
    assert body["usage"]["input_tokens"] >= 1 and body["usage"]["output_tokens"] >= 1
    refused = httpx.post(url, json=MESSAGES, headers=headers)
    assert refused.status_code == 402
    assert refused.json()["type"] == "error" and refused.json()["request_id"] is None
    assert refused.json()["error"]["type"] == "billing_error"
    assert sandbox.keys_snapshot()[0]["usage"] == 1.0


def test_cap_is_exact_under_concurrency(sandbox, mgmt):
    key = make_key(mgmt, limit=1)["key"]
    statuses: list[int] = []

    def call():
        with client(sandbox, key) as c:
            statuses.append(c.post("/chat/completions", json=CHAT).status_code)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 4 + [402] * 8
    assert sandbox.keys_snapshot()[0]["usage"] == 1.0


def test_raising_the_limit_unblocks(sandbox, mgmt):
    created = make_key(mgmt, limit=0.5)
    with client(sandbox, created["key"]) as c:
        assert [c.post("/chat/completions", json=CHAT).status_code for _ in range(3)] == [
            200,
            200,
            402,
        ]
        mgmt.patch(f"/keys/{created['data']['hash']}", json={"limit": 0.75})
        assert c.post("/chat/completions", json=CHAT).status_code == 200
        assert c.post("/chat/completions", json=CHAT).status_code == 402


def test_monthly_cap_resets_next_month(sandbox, mgmt, clock):
    clock.set(datetime(2026, 1, 31, 23, 0, tzinfo=UTC))
    created = make_key(mgmt, limit=0.5, limit_reset="monthly")
    h = created["data"]["hash"]
    with client(sandbox, created["key"]) as c:
        assert [c.post("/chat/completions", json=CHAT).status_code for _ in range(3)] == [
            200,
            200,
            402,
        ]
        clock.set(datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC))
        assert c.post("/chat/completions", json=CHAT).status_code == 402
        clock.set(datetime(2026, 2, 1, 0, 0, tzinfo=UTC))
        data = mgmt.get(f"/keys/{h}").json()["data"]
        assert data["usage_monthly"] == 0 and data["usage"] == 0.5
        assert data["limit_remaining"] == 0.5
        assert c.post("/chat/completions", json=CHAT).status_code == 200
    data = mgmt.get(f"/keys/{h}").json()["data"]
    assert (data["usage"], data["usage_monthly"], data["limit_remaining"]) == (0.75, 0.25, 0.25)


def test_weekly_cap_resets_on_monday(sandbox, mgmt, clock):
    clock.set(datetime(2026, 3, 4, 9, 0, tzinfo=UTC))  # Wednesday
    created = make_key(mgmt, limit=0.25, limit_reset="weekly")
    h = created["data"]["hash"]
    with client(sandbox, created["key"]) as c:
        assert c.post("/chat/completions", json=CHAT).status_code == 200
        assert c.post("/chat/completions", json=CHAT).status_code == 402
        sunday = datetime(2026, 3, 8, 23, 59, 59, tzinfo=UTC)
        assert sunday.strftime("%A") == "Sunday"
        clock.set(sunday)  # a Sunday-start week would have reset by now
        assert c.post("/chat/completions", json=CHAT).status_code == 402
        data = mgmt.get(f"/keys/{h}").json()["data"]
        assert (data["usage_daily"], data["usage_weekly"], data["usage_monthly"]) == (0, 0.25, 0.25)
        monday = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)
        assert monday.strftime("%A") == "Monday"
        clock.set(monday)
        assert c.post("/chat/completions", json=CHAT).status_code == 200
        assert c.post("/chat/completions", json=CHAT).status_code == 402


def test_daily_cap_and_lifetime_cap(sandbox, mgmt, clock):
    daily = make_key(mgmt, name="daily", limit=0.25, limit_reset="daily")["key"]
    lifetime = make_key(mgmt, name="lifetime", limit=0.25)["key"]
    with client(sandbox, daily) as d, client(sandbox, lifetime) as life:
        for c in (d, life):
            assert c.post("/chat/completions", json=CHAT).status_code == 200
            assert c.post("/chat/completions", json=CHAT).status_code == 402
        clock.set(datetime(2026, 3, 12, 0, 0, tzinfo=UTC))
        assert d.post("/chat/completions", json=CHAT).status_code == 200
        clock.set(datetime(2027, 6, 1, tzinfo=UTC))
        assert life.post("/chat/completions", json=CHAT).status_code == 402


def test_account_credits_exhaustion(clock):
    with Sandbox(cost=Decimal("0.25"), credits=Decimal("0.5"), clock=clock).start() as sb:
        with client(sb, sb.management_key) as mgmt:
            key = make_key(mgmt)["key"]  # no key limit: the account runs dry
            with client(sb, key) as c:
                assert [c.post("/chat/completions", json=CHAT).status_code for _ in range(2)] == [
                    200,
                    200,
                ]
                r = c.post("/chat/completions", json=CHAT)
                assert r.status_code == 402
                assert error(r)["metadata"]["limit_source"] == "openrouter_credits"
                r = c.post("/messages", json=MESSAGES)
                assert r.status_code == 402 and r.json()["error"]["type"] == "billing_error"
            assert mgmt.get("/credits").json()["data"] == {"total_credits": 0.5, "total_usage": 0.5}
        sb.total_credits = Decimal("1")
        with client(sb, key) as c:
            assert c.post("/chat/completions", json=CHAT).status_code == 200


def test_deleted_keys_usage_still_counts(sandbox, mgmt):
    created = make_key(mgmt)
    with client(sandbox, created["key"]) as c:
        assert c.post("/chat/completions", json=CHAT).status_code == 200
    mgmt.delete(f"/keys/{created['data']['hash']}")
    with client(sandbox, created["key"]) as c:
        assert c.post("/chat/completions", json=CHAT).status_code == 401
    assert mgmt.get("/credits").json()["data"]["total_usage"] == 0.25


def test_completion_request_validation(sandbox, mgmt):
    key = make_key(mgmt, limit=1)["key"]
    with client(sandbox, key) as c:
        assert c.post("/chat/completions", json={"model": "x"}).status_code == 400
        assert c.post("/chat/completions", json=[1]).status_code == 400
        r = c.post("/messages", json={"messages": []})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert sandbox.keys_snapshot()[0]["usage"] == 0  # bad requests are not billed


# ------------------------------------------------------------------ streaming


def sse_events(text: str) -> list[tuple[str | None, str]]:
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        events.append((name, "\n".join(data)))
    return events


def test_chat_stream(sandbox, mgmt):
    key = make_key(mgmt, limit=1)["key"]
    with client(sandbox, key) as c:
        with c.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            text = r.read().decode()
    events = sse_events(text)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert all(ch["object"] == "chat.completion.chunk" for ch in chunks)
    assert len({ch["id"] for ch in chunks}) == 1
    content = "".join(
        choice["delta"].get("content") or "" for ch in chunks for choice in ch["choices"]
    )
    assert content == REPLY
    assert [ch["choices"][0]["finish_reason"] for ch in chunks if ch["choices"]][-1] == "stop"
    assert chunks[-1]["usage"]["cost"] == 0.25
    assert sandbox.keys_snapshot()[0]["usage"] == 0.25


def test_messages_stream(sandbox, mgmt):
    key = make_key(mgmt, limit=1)["key"]
    r = httpx.post(
        f"{sandbox.anthropic_base_url}/v1/messages",
        json={**MESSAGES, "stream": True},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [json.loads(data) for _, data in events]
    assert [p["type"] for p in payloads] == names
    text = "".join(p["delta"]["text"] for p in payloads if p["type"] == "content_block_delta")
    assert text == REPLY
    assert payloads[-2]["delta"]["stop_reason"] == "end_turn"
    assert sandbox.keys_snapshot()[0]["usage"] == 0.25


def test_stream_over_the_cap_is_a_plain_402(sandbox, mgmt):
    key = make_key(mgmt, limit=0)["key"]
    with client(sandbox, key) as c:
        r = c.post("/chat/completions", json={**CHAT, "stream": True})
    assert r.status_code == 402 and r.headers["content-type"] == "application/json"


# -------------------------------------------------------------------- routing


def test_unknown_route_and_wrong_method(sandbox, mgmt):
    r = mgmt.get("/guardrails")
    assert r.status_code == 404 and error(r)["code"] == 404
    assert httpx.get(f"{sandbox.url}/").status_code == 404
    r = mgmt.put("/keys", json={})
    assert r.status_code == 405 and error(r)["code"] == 405
    assert r.headers["allow"] == "GET, POST"
    assert mgmt.post("/credits").status_code == 405
    assert mgmt.get("/chat/completions").status_code == 405


def test_requests_are_recorded_without_credentials(sandbox, mgmt):
    mgmt.post("/keys", json={"name": "rec"}, headers={"X-Title": "capit"})
    mgmt.get("/keys", params={"include_disabled": "true", "offset": "0"})
    httpx.post(
        f"{sandbox.base_url}/messages", json=MESSAGES, headers={"x-api-key": "sk-or-v1-secret"}
    )
    first, second, third = sandbox.requests
    assert (first.method, first.path, first.json) == ("POST", "/api/v1/keys", {"name": "rec"})
    assert first.headers["x-title"] == "capit"
    assert (second.method, second.query) == (
        "GET",
        {"include_disabled": ["true"], "offset": ["0"]},
    )
    assert second.json is None
    for rec in sandbox.requests:
        assert "authorization" not in rec.headers and "x-api-key" not in rec.headers
        assert sandbox.management_key not in repr(rec)
    assert "sk-or-v1-secret" not in repr(third)


def test_request_validator_hook(sandbox, mgmt):
    seen = []

    def validator(method, path, query, body):
        seen.append((method, path, query, body))
        return "name must not be 'bad'" if body == {"name": "bad"} else None

    sandbox.request_validator = validator
    r = mgmt.post("/keys", json={"name": "bad"})
    assert r.status_code == 400 and error(r)["message"] == "name must not be 'bad'"
    assert sandbox.keys_snapshot() == []
    assert mgmt.post("/keys", json={"name": "good"}).status_code == 201
    assert seen[0] == ("POST", "/api/v1/keys", {}, {"name": "bad"})


# --------------------------------------------------------------------- faults


def test_create_delay_makes_the_client_time_out_after_the_key_exists(sandbox, mgmt):
    sandbox.faults.create_delay = 0.5
    with pytest.raises(httpx.ReadTimeout):
        mgmt.post("/keys", json={"name": "slow"}, timeout=0.1)
    assert [k["name"] for k in sandbox.keys_snapshot()] == ["slow"]
    sandbox.faults.clear()
    assert sandbox.faults.create_delay == 0
    assert mgmt.post("/keys", json={"name": "fast"}, timeout=2).status_code == 201


def test_drop_after_create(sandbox, mgmt):
    sandbox.faults.drop_after_create = True
    with pytest.raises(httpx.RemoteProtocolError):
        mgmt.post("/keys", json={"name": "lost"})
    assert [k["name"] for k in sandbox.keys_snapshot()] == ["lost"]
    sandbox.faults.drop_after_create = False
    names = [k["name"] for k in mgmt.get("/keys").json()["data"]]
    assert names == ["lost"]  # the client can reconcile by name


def test_queued_429_with_retry_after(sandbox, mgmt):
    sandbox.faults.queue("POST", "/keys", 429, headers={"Retry-After": "2"}, times=2)
    for _ in range(2):
        r = mgmt.post("/keys", json={"name": "x"})
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        assert error(r) == {"code": 429, "message": "Rate limit exceeded", "metadata": None}
    assert sandbox.keys_snapshot() == []  # canned answers are not processed
    assert mgmt.post("/keys", json={"name": "x"}).status_code == 201
    assert sandbox.faults.pending == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_queued_server_errors(sandbox, mgmt, status):
    sandbox.faults.queue("GET", "/api/v1/keys", status)
    r = mgmt.get("/keys")
    assert r.status_code == status and error(r)["code"] == status
    assert mgmt.get("/keys").status_code == 200


def test_queued_raw_html_body_and_custom_body(sandbox, mgmt):
    sandbox.faults.queue("*", "/credits", 502, raw=b"<html>Bad gateway</html>")
    r = mgmt.get("/credits")
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    assert r.text == "<html>Bad gateway</html>"
    sandbox.faults.queue("GET", "/credits", 200, body={"data": {"total_credits": 1}})
    assert mgmt.get("/credits").json() == {"data": {"total_credits": 1}}


def test_queued_fault_matching_and_delay(sandbox, mgmt):
    sandbox.faults.queue("DELETE", "/keys/", 500, delay=0.3)
    assert mgmt.get("/keys").status_code == 200  # other method: not matched
    with pytest.raises(httpx.ReadTimeout):
        mgmt.delete("/keys/abc", timeout=0.1)
    assert sandbox.faults.pending == []
    sandbox.faults.queue("POST", "/messages", 529)
    r = httpx.post(f"{sandbox.base_url}/messages", json=MESSAGES)
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
    sandbox.faults.queue("GET", "/key", 500, times=3)
    sandbox.faults.clear()
    assert mgmt.get("/key").status_code == 200

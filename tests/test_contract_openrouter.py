"""capit's OpenRouter requests, and the sandbox answers capit reads, against the official
OpenAPI document (shared/specs/openrouter-openapi.yaml; skipped when it is absent).

Requests are checked STRICTLY (unknown body fields and query parameters are violations),
independently of the sandbox fixture's own validator.  Responses are recorded at the httpx
client (``httpx.Client.send`` wrapped, so capit's code runs unchanged) and checked as
documented.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time

import httpx
import pytest
from openapi_contract import get_doc, spec_available

from capit.errors import ExitCode

pytestmark = pytest.mark.skipif(not spec_available(), reason="OpenRouter OpenAPI document absent")

UTC = dt.timezone.utc
SECONDS_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture(scope="module")
def doc():
    return get_doc()


@pytest.fixture
def answers(monkeypatch):
    """(method, path, status, decoded JSON body) of every answer capit's client received."""
    seen: list[tuple[str, str, int, object]] = []
    real_send = httpx.Client.send

    def send(self, request, *args, **kwargs):
        response = real_send(self, request, *args, **kwargs)
        try:
            body = json.loads(response.content) if response.content else None
        except ValueError:
            body = response.content
        seen.append((request.method, request.url.path, response.status_code, body))
        return response

    monkeypatch.setattr(httpx.Client, "send", send)
    return seen


def mint(run, sb, *args):
    sb.requests.clear()
    result = run("openrouter", *args, "-i", "-y", input=f"{sb.management_key}\n")
    assert result.code == 0, result
    [post] = sb.requests
    assert (post.method, post.path) == ("POST", "/api/v1/keys")
    return post.json


def later(days: int) -> dt.date:
    return (dt.datetime.now(UTC) + dt.timedelta(days=days)).date()


# ------------------------------------------------------------------------- requests


@pytest.mark.parametrize("period", ["none", "daily", "weekly", "monthly"])
@pytest.mark.parametrize("amount", ["5", "5.00", "$0.50", "1234.56"])
def test_create_body_follows_the_document(run, sandbox, doc, period, amount):
    body = mint(run, sandbox, amount, "--period", period)
    assert doc.validate_request("POST", "/api/v1/keys", {}, body) == []
    expected = float(amount.lstrip("$"))
    assert isinstance(body["limit"], (int, float)) and not isinstance(body["limit"], bool)
    assert body["limit"] == expected
    if period == "none":
        assert body.get("limit_reset") is None  # a lifetime cap
    else:
        assert body["limit_reset"] == period
    assert "expires_at" not in body
    [key] = sandbox.keys_snapshot()
    assert key["limit"] == expected and key["limit_reset"] == (None if period == "none"
                                                               else period)


def test_expires_30d_is_utc_with_seconds(run, sandbox, doc):
    before = dt.datetime.now(UTC).replace(microsecond=0)
    body = mint(run, sandbox, "5", "--expires", "30d", "--period", "weekly")
    after = dt.datetime.now(UTC)
    assert doc.validate_request("POST", "/api/v1/keys", {}, body) == []
    assert SECONDS_UTC.match(body["expires_at"]), body
    when = dt.datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + dt.timedelta(days=30) <= when <= after + dt.timedelta(days=30)


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        (lambda d: d.isoformat(), lambda d: f"{d.isoformat()}T00:00:00Z"),
        (lambda d: f"{d.isoformat()}T12:30:00+02:00", lambda d: f"{d.isoformat()}T10:30:00Z"),
        (lambda d: f"{d.isoformat()}T23:15:00-05:00",
         lambda d: f"{(d + dt.timedelta(days=1)).isoformat()}T04:15:00Z"),
        (lambda d: f"{d.isoformat()}T08:00:00Z", lambda d: f"{d.isoformat()}T08:00:00Z"),
    ],
    ids=["date", "plus-2h", "minus-5h", "zulu"],
)
def test_expires_at_a_date_or_time_is_sent_in_utc(run, sandbox, doc, given, sent):
    original = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Auckland"  # a local zone far from UTC
    time.tzset()
    try:
        day = later(400)
        body = mint(run, sandbox, "5", "--expires", given(day))
    finally:
        if original is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = original
        time.tzset()
    assert doc.validate_request("POST", "/api/v1/keys", {}, body) == []
    assert body["expires_at"] == sent(day)
    assert SECONDS_UTC.match(body["expires_at"])
    assert sandbox.keys_snapshot()[0]["expires_at"] == sent(day)


def test_list_query_uses_documented_parameters(run, sandbox, doc):
    for i in range(150):
        sandbox.create_key(f"k{i}", limit=1)
    sandbox.requests.clear()
    result = run("keys", "list", "-r", "openrouter", "-i", input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    gets = [r for r in sandbox.requests if r.method == "GET"]
    assert len(gets) == 2
    documented = {p["name"] for p in doc.doc["paths"]["/keys"]["get"]["parameters"]}
    for get in gets:
        assert get.path == "/api/v1/keys"
        assert set(get.query) <= documented
        assert doc.validate_request("GET", get.path, get.query, get.json) == []
        assert get.json is None


def test_add_and_delete_requests_follow_the_document(run, sandbox, doc):
    target = sandbox.create_key("to-delete", limit=1)["data"]["hash"]
    sandbox.requests.clear()
    result = run("keys", "delete", "openrouter", target[:10], "-i",
                 input=f"{sandbox.management_key}\n")
    assert result.code == 0, result
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\nlong enough pw\n")
    assert result.code == 0, result
    seen = [(r.method, r.path) for r in sandbox.requests]
    assert ("DELETE", f"/api/v1/keys/{target}") in seen and ("GET", "/api/v1/key") in seen
    for r in sandbox.requests:
        assert doc.validate_request(r.method, r.path, r.query, r.json) == [], r


# ------------------------------------------------------------------------ responses


def test_answers_capit_parses_follow_the_document(run, sandbox, doc, answers):
    once = f"{sandbox.management_key}\n"
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\nlong enough pw\n")
    assert result.code == 0, result
    result = run("openrouter", "5", "--expires", "7d", "-i", input=once)
    assert result.code == 0, result
    for i in range(3):
        sandbox.create_key(f"other-{i}", limit=i or None, limit_reset="daily")
    result = run("keys", "list", "-r", "openrouter", "-i", input=once)
    assert result.code == 0, result
    h = sandbox.keys_snapshot()[0]["hash"]
    result = run("keys", "delete", "openrouter", h, "-i", input=once)
    assert result.code == 0, result
    statuses = [(m, s) for m, _p, s, _b in answers]
    assert statuses == [("GET", 200), ("POST", 201), ("GET", 200), ("GET", 200),
                        ("DELETE", 200)]
    for method, path, status, body in answers:
        assert doc.validate_response(method, path, status, body) == [], (method, path, body)


@pytest.mark.parametrize(
    ("args", "fault", "status", "code"),
    [
        (("keys", "list", "-r", "openrouter"), ("GET", "/keys"), 401, ExitCode.AUTH),
        (("keys", "list", "-r", "openrouter"), ("GET", "/keys"), 500, ExitCode.PROVIDER),
        (("openrouter", "5"), ("POST", "/keys"), 400, ExitCode.PROVIDER),
        (("openrouter", "5"), ("POST", "/keys"), 429, ExitCode.RATE_LIMITED),
    ],
)
def test_error_answers_capit_reads_follow_the_document(run, sandbox, doc, answers, args, fault,
                                                       status, code):
    sandbox.faults.queue(*fault, status, headers={"Retry-After": "3600"}, times=10)
    result = run(*args, "-i", input=f"{sandbox.management_key}\n")
    assert result.code == code, result
    errors = [a for a in answers if a[2] == status]
    assert errors
    for method, path, st, body in errors:
        assert doc.validate_response(method, path, st, body) == [], body


def test_sandbox_answer_for_a_missing_key_follows_the_document(run, sandbox, doc, answers):
    target = sandbox.create_key("vanishing", limit=1)["data"]["hash"]
    sandbox.faults.queue("DELETE", "/keys/", 404)
    result = run("keys", "delete", "openrouter", target, "-i",
                 input=f"{sandbox.management_key}\n")
    assert result.code == ExitCode.NOT_FOUND, result
    [(method, path, status, body)] = [a for a in answers if a[0] == "DELETE"]
    assert status == 404
    assert doc.validate_response(method, path, status, body) == []

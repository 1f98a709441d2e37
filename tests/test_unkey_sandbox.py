"""The sandbox's Unkey shape enforces what Unkey enforces: credits, refills, rate limits,
expiry, permissions -- checked over HTTP, with a clock the test moves."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from platform_contract import attach

from capit.sandbox.server import Sandbox
from capit.sandbox.unkey import refill_moment


@pytest.fixture
def clocked():
    now = [dt.datetime(2026, 3, 30, 12, 0, tzinfo=dt.timezone.utc)]
    sb = Sandbox(clock=lambda: now[0]).start()
    contract = attach(sb.unkey, "unkey", strict_requests=False)
    sb.now = now  # the test moves now[0]
    try:
        yield sb
    finally:
        sb.stop()
    contract.finish()


def call(sb, op: str, body: dict, root: str | None = None) -> httpx.Response:
    return httpx.post(f"{sb.unkey_base_url}/v2/{op}", json=body, timeout=5,
                      headers={"Authorization": f"Bearer {root or sb.unkey.root_key}"})


def create(sb, **fields) -> dict:
    r = call(sb, "keys.createKey", {"apiId": sb.unkey.api_id, **fields})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def verify(sb, key: str, **extra) -> str:
    r = call(sb, "keys.verifyKey", {"key": key, **extra})
    assert r.status_code == 200, r.text
    return r.json()["data"]["code"]


def remaining(sb, key_id: str) -> int | None:
    return call(sb, "keys.getKey", {"keyId": key_id}).json()["data"]["credits"]["remaining"]


def test_daily_refill_resets_to_the_amount_at_midnight_utc(clocked):
    made = create(clocked, credits={"remaining": 2, "refill": {"interval": "daily",
                                                               "amount": 3}})
    assert [verify(clocked, made["key"]) for _ in range(3)] == \
        ["VALID", "VALID", "USAGE_EXCEEDED"]
    clocked.now[0] = clocked.now[0].replace(hour=23, minute=59)
    assert verify(clocked, made["key"]) == "USAGE_EXCEEDED"
    clocked.now[0] += dt.timedelta(minutes=2)
    assert remaining(clocked, made["keyId"]) == 3  # reset to the amount, not added


def test_monthly_refill_on_a_day_the_month_lacks_is_its_last_day(clocked):
    clocked.now[0] = dt.datetime(2026, 4, 1, 8, tzinfo=dt.timezone.utc)
    made = create(clocked, credits={"remaining": 1, "refill": {"interval": "monthly",
                                                               "amount": 5, "refillDay": 31}})
    assert verify(clocked, made["key"]) == "VALID"
    clocked.now[0] = dt.datetime(2026, 4, 29, tzinfo=dt.timezone.utc)
    assert remaining(clocked, made["keyId"]) == 0
    clocked.now[0] = dt.datetime(2026, 4, 30, 0, 0, 1, tzinfo=dt.timezone.utc)
    assert remaining(clocked, made["keyId"]) == 5
    assert refill_moment({"interval": "monthly", "refillDay": 31},
                         dt.datetime(2026, 2, 10, tzinfo=dt.timezone.utc)) == \
        dt.datetime(2026, 1, 31, tzinfo=dt.timezone.utc)


def test_cost_rate_limit_windows_expiry_and_disabled(clocked):
    made = create(clocked, credits={"remaining": 10},
                  ratelimits=[{"name": "per_second", "limit": 2, "duration": 1000,
                               "autoApply": True}])
    assert verify(clocked, made["key"], credits={"cost": 4}) == "VALID"
    assert verify(clocked, made["key"]) == "VALID"
    assert verify(clocked, made["key"]) == "RATE_LIMITED"
    assert remaining(clocked, made["keyId"]) == 5  # the refused call spent nothing
    clocked.now[0] += dt.timedelta(seconds=1)
    assert verify(clocked, made["key"], credits={"cost": 6}) == "USAGE_EXCEEDED"
    assert verify(clocked, made["key"], credits={"cost": 0}) == "VALID"
    soon = int((clocked.now[0] + dt.timedelta(hours=1)).timestamp() * 1000)
    expiring = create(clocked, expires=soon)
    assert verify(clocked, expiring["key"]) == "VALID"
    clocked.now[0] += dt.timedelta(hours=1)
    assert verify(clocked, expiring["key"]) == "EXPIRED"
    off = create(clocked, enabled=False)
    assert verify(clocked, off["key"]) == "DISABLED"
    unlimited = create(clocked)
    assert [verify(clocked, unlimited["key"]) for _ in range(3)] == ["VALID"] * 3


def test_reads_never_spend_and_deleted_keys_do_not_verify(clocked):
    made = create(clocked, credits={"remaining": 1})
    for _ in range(3):
        assert call(clocked, "keys.whoami", {"key": made["key"]}).status_code == 200
        assert call(clocked, "keys.getKey", {"keyId": made["keyId"]}).status_code == 200
        call(clocked, "apis.listKeys", {"apiId": clocked.unkey.api_id})
    assert remaining(clocked, made["keyId"]) == 1
    assert call(clocked, "keys.deleteKey", {"keyId": made["keyId"]}).status_code == 200
    assert verify(clocked, made["key"]) == "NOT_FOUND"
    assert call(clocked, "keys.getKey", {"keyId": made["keyId"]}).status_code == 404
    assert call(clocked, "keys.deleteKey", {"keyId": made["keyId"]}).status_code == 404


def test_permissions_and_the_existence_leak_rules(clocked):
    made = create(clocked, credits={"remaining": 1})
    other_api = clocked.unkey.add_api("other")
    narrow = clocked.unkey.add_root_key([f"api.{other_api}.verify_key",
                                         f"api.{other_api}.read_key"])
    # verify rights on another API: 200 with NOT_FOUND, nothing spent
    r = call(clocked, "keys.verifyKey", {"key": made["key"]}, root=narrow)
    assert r.status_code == 200 and r.json()["data"]["code"] == "NOT_FOUND"
    assert remaining(clocked, made["keyId"]) == 1
    # listing without read rights on the API: 404, not 403
    r = call(clocked, "apis.listKeys", {"apiId": clocked.unkey.api_id}, root=narrow)
    assert r.status_code == 404
    r = call(clocked, "keys.createKey", {"apiId": clocked.unkey.api_id}, root=narrow)
    assert r.status_code == 403 and "create_key" in r.json()["error"]["detail"]
    nothing = clocked.unkey.add_root_key([])
    r = call(clocked, "keys.verifyKey", {"key": made["key"]}, root=nothing)
    assert r.status_code == 403


@pytest.mark.parametrize("body, status, words", [
    ({"bogus": True}, 400, "additional property 'bogus'"),
    ({"credits": {"remaining": None, "refill": {"interval": "daily", "amount": 1}}}, 400,
     "`credits.remaining` must be provided"),
    ({"credits": {"remaining": 1, "refill": {"interval": "monthly", "amount": 1}}}, 400,
     "`refillDay` must be provided"),
    ({"recoverable": True}, 412, "Vault"),
    ({"ratelimits": [{"name": "abc", "limit": 1, "duration": 1000, "autoApply": True}] * 2},
     400, "unique"),
])
def test_create_rules(clocked, body, status, words):
    r = call(clocked, "keys.createKey", {"apiId": clocked.unkey.api_id, **body})
    assert r.status_code == status and words in r.text
    assert clocked.unkey.snapshot() == []


def test_a_daily_refill_drops_the_refill_day(clocked):
    made = create(clocked, credits={"remaining": 1, "refill": {"interval": "daily",
                                                               "amount": 1, "refillDay": 4}})
    data = call(clocked, "keys.getKey", {"keyId": made["keyId"]}).json()["data"]
    assert data["credits"]["refill"] == {"interval": "daily", "amount": 1}


def test_auth_quirks(clocked):
    url = f"{clocked.unkey_base_url}/v2/apis.getApi"
    body = {"apiId": clocked.unkey.api_id}
    missing = httpx.post(url, json=body, timeout=5)
    malformed = httpx.post(url, json=body, timeout=5, headers={"Authorization": "Token x"})
    unknown = httpx.post(url, json=body, timeout=5, headers={"Authorization": "Bearer nope"})
    assert (missing.status_code, malformed.status_code, unknown.status_code) == (400, 400, 401)
    assert missing.json()["error"]["type"].endswith("/authentication/missing")
    assert malformed.json()["error"]["type"].endswith("/authentication/malformed")
    assert unknown.json()["error"]["type"].endswith("/authentication/key_not_found")
    assert httpx.get(url, timeout=5).status_code == 405
    assert httpx.post(f"{clocked.unkey_base_url}/v2/keys.nothing", json={}, timeout=5) \
        .status_code == 404

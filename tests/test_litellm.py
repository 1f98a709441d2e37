"""capit's LiteLLM platform end to end through the sandbox's LiteLLM-proxy shape.

The proxy URL is given with the master key (as ``capit keys add litellm`` and ``-i``
ask), so these tests set no CAPIT_LITELLM_BASE_URL unless they test that override.  Every
request capit sends to ``/litellm`` is validated strictly against LiteLLM's OpenAPI
document and every answer of the sandbox checked (``litellm`` fixture).
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from conftest import PASS, assert_one_line_error, tree_snapshot
from platform_contract import attach

from capit.errors import ExitCode


@pytest.fixture
def litellm(sandbox):
    contract = attach(sandbox.litellm, "litellm")
    yield sandbox
    contract.finish()
    # the scheme LiteLLM's document declares (x-litellm-api-key) came with every key call
    # capit made (the tests' own calls send one or the other)
    capit_calls = [(header, bearer) for _path, agent, header, bearer
                   in sandbox.litellm.auth_seen if agent.startswith("capit/")]
    assert all(header and bearer for header, bearer in capit_calls)


def master(sb, url: str | None = None, key: str | None = None) -> str:
    return f"{key or sb.litellm.master_key}\n{url or sb.litellm_base_url}\n"


def proxy_requests(sb, path: str | None = None) -> list:
    return [r for r in sb.requests if r.path.startswith("/litellm/")
            and (path is None or r.path == f"/litellm{path}")]


def chat(sb, key: str, model: str = "gpt-4o") -> httpx.Response:
    return httpx.post(f"{sb.litellm_base_url}/chat/completions", timeout=5,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


# ------------------------------------------------------------------------- minting


def test_budgeted_key_until_the_proxy_refuses_then_list_and_delete(run, litellm):
    result = run("litellm", "1.00", "--name", "agent", "-i", input=master(litellm))
    assert result.code == 0, result
    key = result.stdout.strip()
    assert key.startswith("sk-") and "$1.00/month cap enforced by LiteLLM" in result.stderr
    [generate] = proxy_requests(litellm, "/key/generate")
    assert generate.json == {"key_alias": generate.json["key_alias"], "max_budget": 1,
                             "budget_duration": "1mo"}
    assert generate.json["key_alias"].startswith("agent-")
    # read back by hash, never with the key in the URL
    [info] = proxy_requests(litellm, "/key/info")
    assert key not in json.dumps(info.query) and len(info.query["key"][0]) == 64

    statuses = [chat(litellm, key).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 422]  # 4 x $0.25, then the budget is spent
    refused = chat(litellm, key).json()["error"]
    assert refused["type"] == "budget_exceeded" and refused["code"] == "422"

    listed = run("keys", "list", "-r", "litellm", "-i", input=master(litellm))
    assert listed.code == 0, listed
    [row] = listed.stdout.splitlines()
    assert "$1.00/month" in row and "used $1.00" in row and generate.json["key_alias"] in row
    as_json = json.loads(run("keys", "list", "-r", "litellm", "--json", "-i",
                             input=master(litellm)).stdout)["data"]["keys"]
    assert [(k["limit"], k["usage"], k["remaining"], k["period"]) for k in as_json] == \
        [("1.0", "1.0", "0", "monthly")]

    token = litellm.litellm.snapshot()[0]["token"]
    deleted = run("keys", "delete", "litellm", token[:12], "-i", input=master(litellm))
    assert deleted.code == 0, deleted
    assert litellm.litellm.snapshot() == []
    assert proxy_requests(litellm, "/key/delete")[-1].json == {"keys": [token]}
    assert chat(litellm, key).status_code == 401


def test_the_done_means_command(run, litellm):
    result = run("litellm", "5.00", "--json", "-i", input=master(litellm))
    assert result.code == 0, result
    data = json.loads(result.stdout)["data"]
    assert data["cap"] == {"amount": "5.00", "unit": "USD", "period": "monthly"}
    [made] = litellm.litellm.snapshot()
    assert made["max_budget"] == 5.0 and made["budget_duration"] == "1mo"
    assert data["hash"] == made["token"] and data["name"] == made["key_alias"]


def test_models_rpm_tpm_period_and_expiry(run, litellm):
    result = run("litellm", "2.50", "--models", "gpt-4o, claude-3-5-haiku", "--rpm", "2",
                 "--tpm", "1000", "--period", "weekly", "--expires", "30d", "-i",
                 input=master(litellm))
    assert result.code == 0, result
    key = result.stdout.strip()
    [generate] = proxy_requests(litellm, "/key/generate")
    body = generate.json
    assert body["models"] == ["gpt-4o", "claude-3-5-haiku"]
    assert (body["rpm_limit"], body["tpm_limit"], body["budget_duration"]) == (2, 1000, "1w")
    assert body["max_budget"] == 2.5
    assert body["duration"].endswith("s") and 30 * 86400 - 5 <= int(body["duration"][:-1]) \
        <= 30 * 86400
    assert chat(litellm, key, "mistral-large").status_code == 401  # not an allowed model
    assert [chat(litellm, key).status_code for _ in range(3)] == [200, 200, 429]  # rpm 2
    [row] = run("keys", "list", "-r", "litellm", "-i", input=master(litellm)).stdout \
        .splitlines()
    assert "$2.50/week" in row and "models gpt-4o,claude-3-5-haiku" in row and "rpm 2" in row


def test_a_lifetime_budget_sends_no_budget_duration(run, litellm):
    result = run("litellm", "1", "--period", "none", "-i", input=master(litellm))
    assert result.code == 0, result
    [generate] = proxy_requests(litellm, "/key/generate")
    assert "budget_duration" not in generate.json and "$1.00 total" in result.stderr


@pytest.mark.parametrize("args, words", [
    (["litellm", "5", "--refill", "daily"], "--refill does not apply to litellm"),
    (["litellm", "5", "--rate", "10/m"], "--rate does not apply to litellm (it is for: unkey)"),
    (["litellm", "5", "--models", " , "], "at least one model"),
    (["litellm", "5", "--rpm", "0"], "--rpm"),
    (["litellm", "5.001"], "more than two decimals"),
    (["litellm", "100 credits"], "not a dollar amount"),
    (["openrouter", "5", "--models", "x"], "--models does not apply to openrouter"),
])
def test_bad_litellm_input_is_one_line_and_sends_nothing(run, litellm, capit_home, args,
                                                         words):
    before = tree_snapshot(capit_home)
    result = run(*args, "-i", input=master(litellm))
    assert_one_line_error(result, ExitCode.USAGE)
    assert words in result.stderr
    assert litellm.requests == [] and tree_snapshot(capit_home) == before


# ---------------------------------------------------------------- the master credential


def test_keys_add_stores_key_and_proxy_url_which_later_calls_use(run, litellm):
    result = run("keys", "add", "litellm", input=f"{master(litellm)}{PASS}\n")
    assert result.code == 0, result
    assert litellm.litellm_base_url in result.stderr
    [check] = proxy_requests(litellm)
    assert check.path == "/litellm/key/list"
    minted = run("litellm", "1.00", input=f"{PASS}\n")  # URL from the vault, no variable
    assert minted.code == 0, minted
    assert len(litellm.litellm.snapshot()) == 1
    platforms = run("--platforms")
    [line] = [ln for ln in platforms.stdout.splitlines() if ln.startswith("litellm ")]
    assert "master key in vault" in line and "stored with the master key" in line


def test_the_base_url_variable_overrides_the_stored_url(run, litellm, monkeypatch):
    monkeypatch.setenv("CAPIT_LITELLM_BASE_URL", "http://127.0.0.1:9/litellm")
    result = run("litellm", "1", "-i", input=master(litellm))
    assert_one_line_error(result, ExitCode.NETWORK)
    assert "127.0.0.1:9" in result.stderr and litellm.requests == []


@pytest.mark.parametrize("which, code, words", [
    ("wrong", ExitCode.AUTH, "rejected the master key"),
    ("http", ExitCode.USAGE, "plain http"),
    ("virtual", ExitCode.AUTH, "Only proxy admin"),
])
def test_keys_add_refuses_bad_credentials_and_stores_nothing(run, litellm, capit_home, which,
                                                           code, words):
    virtual = None
    if which == "virtual":
        made = run("litellm", "1", "-i", input=master(litellm))
        virtual = made.stdout.strip()
    values = {"wrong": master(litellm, key="sk-wrong-master-key-123456"),
              "http": master(litellm, url="http://litellm.example.com"),
              "virtual": master(litellm, key=virtual)}
    result = run("keys", "add", "litellm", input=values[which] + f"{PASS}\n")
    assert_one_line_error(result, code)
    assert words in result.stderr
    assert not (capit_home / "vault.json").exists()
    assert "sk-wrong-master-key-123456" not in result.output


def test_a_proxy_without_database_is_reported_as_such(run, litellm):
    litellm.litellm.database = False
    for args in (["keys", "add", "litellm"], ["litellm", "1", "-i"],
                 ["keys", "list", "-r", "litellm", "-i"],
                 ["keys", "delete", "litellm", "a" * 64, "-i"]):
        result = run(*args, input=master(litellm) + f"{PASS}\n")
        assert_one_line_error(result, ExitCode.PROVIDER)
        assert "has no database, so virtual keys are unavailable" in result.stderr, args
    assert len(proxy_requests(litellm, "/key/generate")) == 1  # no reconciliation, no retry


# ------------------------------------------------------------------------ error mapping


def test_budget_exceeded_on_the_master_key_is_a_payment_error(run, litellm):
    litellm.faults.queue("POST", "/litellm/key/generate", 422, body={"error": {
        "message": "Budget has been exceeded! Current cost: 10.0, Max budget: 10.0",
        "type": "budget_exceeded", "param": None, "code": "422"}})
    result = run("litellm", "1", "-i", input=master(litellm))
    assert_one_line_error(result, ExitCode.PAYMENT)
    assert "budget is used up" in result.stderr and "Max budget: 10.0" in result.stderr


def test_validation_error_names_the_field(run, litellm):
    litellm.faults.queue("POST", "/litellm/key/generate", 422, body={"detail": [
        {"type": "float_parsing", "loc": ["body", "max_budget"], "msg": "Input should be a "
         "valid number", "input": "x"}]})
    result = run("litellm", "1", "-i", input=master(litellm))
    assert_one_line_error(result, ExitCode.PROVIDER)
    assert "body.max_budget: Input should be a valid number" in result.stderr


def test_duplicate_alias_is_refused_by_the_sandbox_like_litellm(litellm):
    headers = {"x-litellm-api-key": litellm.litellm.master_key}
    first = httpx.post(f"{litellm.litellm_base_url}/key/generate", headers=headers, timeout=5,
                       json={"key_alias": "same", "max_budget": 1})
    again = httpx.post(f"{litellm.litellm_base_url}/key/generate", headers=headers, timeout=5,
                       json={"key_alias": "same", "max_budget": 1})
    assert first.status_code == 200 and again.status_code == 400
    assert "Unique key aliases" in again.json()["error"]["message"]


def test_rate_limited_answer(run, litellm):
    litellm.faults.queue("GET", "/litellm/key/list", 429, headers={"Retry-After": "60"})
    result = run("keys", "list", "-r", "litellm", "-i", input=master(litellm))
    assert_one_line_error(result, ExitCode.RATE_LIMITED)
    assert "in 60 s" in result.stderr


def test_unanswered_create_is_reconciled_by_alias(run, litellm):
    litellm.litellm.drop_after_create = True
    result = run("litellm", "1", "--name", "lost", "-i", input=master(litellm))
    assert_one_line_error(result, ExitCode.UNCERTAIN)
    [made] = litellm.litellm.snapshot()
    assert made["token"][:16] in result.stderr and "was not retried" in result.stderr
    assert len(proxy_requests(litellm, "/key/generate")) == 1
    [lookup] = proxy_requests(litellm, "/key/list")
    assert lookup.query["key_alias"] == [made["key_alias"]]


def test_failed_create_with_nothing_created_says_so(run, litellm):
    litellm.faults.queue("POST", "/litellm/key/generate", 500, body={"error": {
        "message": "upstream failure", "type": "internal_server_error", "param": None,
        "code": "500"}})
    result = run("litellm", "1", "-i", input=master(litellm))
    assert_one_line_error(result, ExitCode.UNCERTAIN)
    assert "nothing was created" in result.stderr and litellm.litellm.snapshot() == []


def test_a_key_whose_budget_differs_is_deleted(run, litellm):
    litellm.faults.queue("GET", "/litellm/key/info", 200, body={"key": "x", "info": {
        "token": "x", "max_budget": 100.0, "budget_duration": "1mo"}})
    result = run("litellm", "1", "-i", input=master(litellm))
    assert_one_line_error(result, ExitCode.PROVIDER)
    assert "max_budget 100.0" in result.stderr and "it was deleted" in result.stderr
    assert result.stdout == "" and litellm.litellm.snapshot() == []


def test_list_pages_through_all_keys(run, litellm):
    headers = {"x-litellm-api-key": litellm.litellm.master_key}
    with httpx.Client(base_url=litellm.litellm_base_url, headers=headers, timeout=5) as http:
        for i in range(130):
            assert http.post("/key/generate", json={"key_alias": f"k{i}"}).status_code == 200
    litellm.requests.clear()
    result = run("keys", "list", "-r", "litellm", "--json", "-i", input=master(litellm))
    keys = json.loads(result.stdout)["data"]["keys"]
    assert sorted(k["name"] for k in keys) == sorted(f"k{i}" for i in range(130))
    assert [r.query["page"] for r in proxy_requests(litellm, "/key/list")] == [["1"], ["2"]]
    assert all(k["limit"] is None and k["period"] == "none" for k in keys)


def test_budget_resets_after_its_duration_and_expired_keys_are_refused():
    from datetime import datetime, timedelta, timezone

    from capit.sandbox.server import Sandbox

    now = [datetime(2026, 5, 1, 12, tzinfo=timezone.utc)]
    with Sandbox(clock=lambda: now[0]) as sb:
        contract = attach(sb.litellm, "litellm", strict_requests=False)
        headers = {"x-litellm-api-key": sb.litellm.master_key}
        made = httpx.post(f"{sb.litellm_base_url}/key/generate", headers=headers, timeout=5,
                          json={"max_budget": 0.5, "budget_duration": "1d",
                                "duration": "2d"}).json()
        assert [chat(sb, made["key"]).status_code for _ in range(3)] == [200, 200, 422]
        now[0] += timedelta(days=1, seconds=1)
        assert chat(sb, made["key"]).status_code == 200
        assert Decimal(str(sb.litellm.snapshot()[0]["spend"])) == Decimal("0.25")
        now[0] += timedelta(days=1)
        expired = chat(sb, made["key"])
        assert expired.status_code == 401 and expired.json()["error"]["type"] == "expired_key"
        info = httpx.get(f"{sb.litellm_base_url}/key/info", headers=headers, timeout=5,
                         params={"key": made["token_id"]}).json()["info"]
        assert info["status"] == "expired"
    contract.finish()


def test_an_html_answer_from_a_gateway_is_a_provider_error(run, litellm):
    litellm.faults.queue("GET", "/litellm/key/list", 502, raw=b"<html>bad gateway</html>",
                         times=3)
    result = run("keys", "list", "-r", "litellm", "-i", input=master(litellm))
    assert_one_line_error(result, ExitCode.PROVIDER)
    assert "502" in result.stderr

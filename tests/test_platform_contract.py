"""Contract tests: capit's Unkey and LiteLLM requests and the sandbox's answers against the
official OpenAPI documents in ../shared/specs (skipped when that folder is absent).

The checks are strict on requests (unknown body fields and query parameters are
violations); the first tests prove the validator really refuses what the documents forbid,
so a passing contract means something.
"""

from __future__ import annotations

import httpx
import pytest
from platform_contract import attach, doc_for, response_problems

UNKEY_CREATE = {
    "apiId": "api_1234abcd", "name": "prod-my-api-3f9a0c1e", "prefix": "prod",
    "credits": {"remaining": 100, "refill": {"interval": "monthly", "amount": 100,
                                             "refillDay": 15}},
    "ratelimits": [{"name": "per_minute", "limit": 10, "duration": 60000, "autoApply": True}],
    "expires": 1927584000000,
}


# ---------------------------------------------------------------- the validator bites


@pytest.mark.parametrize("change, words", [
    ({"bogus": 1}, "'bogus' was unexpected"),
    ({"credits": {"remaining": 1, "refill": {"interval": "weekly", "amount": 1}}}, "weekly"),
    ({"ratelimits": [{"name": "per_minute", "limit": 1, "duration": 60000}]}, "autoApply"),
    ({"ratelimits": [{"name": "per_ms", "limit": 1, "duration": 999, "autoApply": True}]},
     "999"),
    ({"prefix": "prod-eu"}, "prod-eu"),
    ({"expires": 4102444800001}, "4102444800001"),
])
def test_unkey_document_refuses_what_it_forbids(change, words):
    doc = doc_for("unkey")
    assert doc.validate_request("POST", "/v2/keys.createKey", None, UNKEY_CREATE) == []
    problems = doc.validate_request("POST", "/v2/keys.createKey", None,
                                    {**UNKEY_CREATE, **change})
    assert problems and words in " ".join(problems)
    missing = {k: v for k, v in UNKEY_CREATE.items() if k != "apiId"}
    assert doc.validate_request("POST", "/v2/keys.createKey", None, missing)


def test_litellm_document_is_strict_too():
    doc = doc_for("litellm")
    good = {"key_alias": "a-1", "max_budget": 5, "budget_duration": "1mo",
            "duration": "2592000s", "models": ["gpt-4o"], "rpm_limit": 1, "tpm_limit": 2}
    assert doc.validate_request("POST", "/key/generate", None, good) == []
    assert doc.validate_request("POST", "/key/generate", None, {**good, "budget": 5})
    assert doc.validate_request("POST", "/key/generate", None, {**good, "max_budget": "5"})
    assert doc.validate_request("GET", "/key/list", {"page": ["1"], "nope": ["x"]}, None)
    assert doc.validate_request("GET", "/key/list", {"size": ["101"]}, None)
    assert doc.validate_request("POST", "/key/delete", None, {"keys": ["h"]}) == []


def test_response_checks_bite():
    unkey, litellm = doc_for("unkey"), doc_for("litellm")
    meta = {"requestId": "req_1"}
    assert response_problems(unkey, "unkey", "POST", "/v2/keys.createKey", 200,
                             {"meta": meta, "data": {"keyId": "key_123"}}, "application/json")
    assert response_problems(unkey, "unkey", "POST", "/v2/keys.createKey", 412,
                             {"meta": meta, "error": {"title": "x"}}, "application/json")
    assert response_problems(unkey, "unkey", "POST", "/v2/keys.createKey", 400, {
        "meta": meta, "error": {"title": "t", "detail": "d", "status": 400, "type": "u",
                                "errors": [{"message": "no location"}]}}, "application/json")
    assert response_problems(unkey, "unkey", "POST", "/v2/keys.createKey", 400, {
        "meta": meta, "error": {"title": "t", "detail": "d", "status": 400, "type": "u",
                                "errors": [{"location": "body", "message": "m"}]}},
        "application/json") == []
    assert response_problems(litellm, "litellm", "POST", "/key/generate", 200, {"nokey": 1},
                             "application/json")
    assert response_problems(litellm, "litellm", "POST", "/key/generate", 401,
                             {"error": {"message": "m"}}, "application/json")


# -------------------------------------------------- capit's requests, the sandbox's answers


def _unkey_master(sb, root=None, api_id=None) -> str:
    return f"{root or sb.unkey.root_key}\n{api_id or sb.unkey.api_id}\n"


def test_every_unkey_exchange_validates(run, sandbox, monkeypatch):
    doc_for("unkey")
    monkeypatch.setenv("CAPIT_UNKEY_BASE_URL", sandbox.unkey_base_url)
    contract = attach(sandbox.unkey, "unkey")
    ok = run("unkey", "100", "--name", "my-api", "--prefix", "prod", "--rate", "10/m",
             "--rate", "100/h", "--refill", "monthly:50", "--expires", "30d", "-i",
             input=_unkey_master(sandbox))
    assert ok.code == 0, ok
    assert run("unkey", "7", "--refill", "daily", "-i", input=_unkey_master(sandbox)).code == 0
    assert run("unkey", "7", "--refill", "none", "-i", input=_unkey_master(sandbox)).code == 0
    sandbox.unkey.drop_after_create = True  # reconciliation with revalidateKeysCache
    assert run("unkey", "1", "-i", input=_unkey_master(sandbox)).code == 13
    sandbox.unkey.drop_after_create = False
    assert run("keys", "list", "-r", "unkey", "-i", input=_unkey_master(sandbox)).code == 0
    key_id = sandbox.unkey.snapshot()[0]["keyId"]
    assert run("keys", "delete", "unkey", key_id, "-i", input=_unkey_master(sandbox)).code == 0
    # error answers capit meets: 401, 403, 404, 412, a canned 429 and 500
    root = sandbox.unkey.add_root_key(["api.*.read_key"])
    plain = sandbox.unkey.add_api("plain", keyspace=False)
    for master, code in ((_unkey_master(sandbox, root="unkey_wrong12345"), 8),
                         (_unkey_master(sandbox, root=root), 8),
                         (_unkey_master(sandbox, api_id="api_missing1"), 4),
                         (_unkey_master(sandbox, api_id=plain), 11)):
        assert run("unkey", "5", "-i", input=master).code == code
    sandbox.faults.queue("POST", "/unkey/v2/keys.createKey", 429, headers={"Retry-After": "60"})
    assert run("unkey", "5", "-i", input=_unkey_master(sandbox)).code == 10
    sandbox.faults.queue("POST", "/unkey/v2/keys.createKey", 500)
    assert run("unkey", "5", "-i", input=_unkey_master(sandbox)).code == 13
    contract.finish()
    assert contract.validator is not None and contract.validator.checked >= 15
    statuses = {ex.status for ex in sandbox.unkey.exchanges}
    assert {200, 401, 403, 404, 412, 429, 500} <= statuses


def test_every_unkey_sandbox_answer_validates(sandbox):
    """Also the answers capit never asks for: verifyKey codes, whoami, 400s, liveness."""
    doc_for("unkey")
    contract = attach(sandbox.unkey, "unkey", strict_requests=False)
    base, root = sandbox.unkey_base_url, sandbox.unkey.root_key
    auth = {"Authorization": f"Bearer {root}"}
    with httpx.Client(base_url=base, timeout=5) as http:
        made = http.post("/v2/keys.createKey", headers=auth, json={
            "apiId": sandbox.unkey.api_id, "name": "v", "credits": {"remaining": 1},
            "ratelimits": [{"name": "burst", "limit": 5, "duration": 1000, "autoApply": True}],
            "meta": {"team": "a"}, "externalId": "user_1"}).json()["data"]
        for _ in range(2):
            http.post("/v2/keys.verifyKey", headers=auth, json={"key": made["key"]})
        http.post("/v2/keys.whoami", headers=auth, json={"key": made["key"]})
        http.post("/v2/keys.getKey", headers=auth, json={"keyId": made["keyId"]})
        http.post("/v2/keys.getKey", headers=auth, json={"keyId": "key_missing1"})
        http.post("/v2/keys.createKey", headers=auth, json={"apiId": "api_x1", "bogus": 1})
        http.post("/v2/keys.createKey", json={"apiId": sandbox.unkey.api_id})
        http.post("/v2/keys.createKey", headers={"Authorization": "Basic abc"},
                  json={"apiId": sandbox.unkey.api_id})
        http.post("/v2/keys.createKey", headers=auth, json={
            "apiId": sandbox.unkey.api_id, "credits": {"remaining": 1, "refill": {
                "interval": "monthly", "amount": 1}}})
        http.post("/v2/keys.createKey", headers=auth, content=b"{not json")
        http.post("/v2/keys.deleteKey", headers=auth, json={"keyId": made["keyId"],
                                                            "permanent": True})
        http.post("/v2/keys.verifyKey", headers=auth, json={"key": made["key"]})
        http.post("/v2/apis.getApi", headers={"Authorization": "Bearer unkey_wrong123"},
                  json={"apiId": sandbox.unkey.api_id})
        http.get("/v2/liveness")
    contract.finish()
    codes = {ex.payload["data"]["code"] for ex in sandbox.unkey.exchanges
             if ex.path == "/v2/keys.verifyKey"}
    assert codes == {"VALID", "USAGE_EXCEEDED", "NOT_FOUND"}
    assert sorted({ex.status for ex in sandbox.unkey.exchanges}) == [200, 400, 401, 404]


def test_every_litellm_exchange_validates(run, sandbox):
    doc_for("litellm")
    contract = attach(sandbox.litellm, "litellm")
    master = f"{sandbox.litellm.master_key}\n{sandbox.litellm_base_url}\n"
    assert run("litellm", "5.00", "--models", "gpt-4o", "--rpm", "10", "--tpm", "100",
               "--expires", "2w", "-i", input=master).code == 0
    assert run("litellm", "1", "--period", "none", "-i", input=master).code == 0
    sandbox.litellm.drop_after_create = True
    assert run("litellm", "1", "-i", input=master).code == 13
    sandbox.litellm.drop_after_create = False
    assert run("keys", "list", "-r", "litellm", "-i", input=master).code == 0
    token = sandbox.litellm.snapshot()[0]["token"]
    assert run("keys", "delete", "litellm", token, "-i", input=master).code == 0
    assert run("litellm", "1", "-i", input=f"sk-wrong-key-0000\n{sandbox.litellm_base_url}\n"
               ).code == 8
    sandbox.litellm.database = False
    assert run("litellm", "1", "-i", input=master).code == 11
    contract.finish()
    assert contract.validator is not None and contract.validator.checked >= 8
    assert {ex.status for ex in sandbox.litellm.exchanges} >= {200, 401, 500}


def test_every_litellm_sandbox_answer_validates(sandbox):
    doc_for("litellm")
    contract = attach(sandbox.litellm, "litellm", strict_requests=False)
    headers = {"x-litellm-api-key": sandbox.litellm.master_key}
    with httpx.Client(base_url=sandbox.litellm_base_url, headers=headers, timeout=5) as http:
        made = http.post("/key/generate", json={"key_alias": "a", "max_budget": 1}).json()
        http.post("/key/generate", json={"key_alias": "a"})  # 400: alias taken
        http.post("/key/generate", json={"max_budget": "lots"})  # 422
        http.post("/key/generate", json={"unknown_field": 1})  # 422
        http.get("/key/list", params={"return_full_object": "true"})
        http.get("/key/list", params={"size": 1})
        http.get("/key/list", params={"size": 1000})  # 422
        http.get("/key/info", params={"key": made["token_id"]})
        http.get("/key/info", params={"key": "0" * 64})  # 404
        http.post("/key/delete", json={"keys": [made["token_id"]]})
        http.post("/key/delete", json={})  # 400
        http.post("/key/generate", headers={"x-litellm-api-key": ""}, json={})  # 401
    contract.finish()
    assert sorted({ex.status for ex in sandbox.litellm.exchanges}) == [200, 400, 401, 404, 422]


def test_the_json_document_loads_without_a_yaml_parser():
    doc = doc_for("litellm")  # JSON with escapes that YAML's parser refuses
    assert doc.path.endswith(".json") and doc.prefix == ""
    assert {"/key/generate", "/key/list", "/key/info", "/key/delete"} <= set(doc.doc["paths"])

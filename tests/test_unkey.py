"""capit's Unkey v2 platform end to end through the sandbox's Unkey shape.

Every request capit sends to ``/unkey`` is validated strictly against Unkey's OpenAPI
document and every answer of the sandbox against the same document (``unkey`` fixture,
when ../shared/specs is present).  The cap is a number of verifications (credits): the
sandbox's ``keys.verifyKey`` spends them, and capit itself never calls it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import httpx
import pytest
from conftest import PASS, assert_one_line_error, tree_snapshot
from jsonschema import Draft202012Validator
from platform_contract import attach, doc_for

from capit.errors import ExitCode

SCHEMAS = Path(__file__).parent / "json_schemas"


@pytest.fixture
def unkey(sandbox, monkeypatch):
    monkeypatch.setenv("CAPIT_UNKEY_BASE_URL", sandbox.unkey_base_url)
    contract = attach(sandbox.unkey, "unkey")
    yield sandbox
    contract.finish()
    assert not [r for r in sandbox.requests if r.path.endswith("keys.verifyKey")
                and r.headers.get("user-agent", "").startswith("capit/")], \
        "capit called keys.verifyKey, which spends a credit"


def master(sb, api_id: str | None = None, root: str | None = None) -> str:
    return f"{root or sb.unkey.root_key}\n{api_id or sb.unkey.api_id}\n"


def unkey_requests(sb, op: str | None = None) -> list:
    return [r for r in sb.requests if r.path.startswith("/unkey/")
            and (op is None or r.path == f"/unkey/v2/{op}")]


def verify(sb, key: str) -> dict:
    """What the user's API server does with the key: keys.verifyKey with its root key."""
    r = httpx.post(f"{sb.unkey_base_url}/v2/keys.verifyKey", json={"key": key}, timeout=5,
                   headers={"Authorization": f"Bearer {sb.unkey.root_key}"})
    assert r.status_code == 200, r.text
    return r.json()["data"]


# ------------------------------------------------------------------ the seed's command


def test_seed_command_mints_100_credits_a_month(run, unkey):
    result = run("unkey", "100", "--name", "my-api", "--prefix", "prod", "-i",
                 input=master(unkey))
    assert result.code == 0, result
    key = result.stdout.strip()
    assert re.fullmatch(r"prod_[1-9A-HJ-NP-Za-km-z]+", key)
    assert "100 credits/month" in result.stderr and "not dollars" in result.stderr
    [made] = unkey.unkey.snapshot()
    assert re.fullmatch(r"prod-my-api-[0-9a-f]{8}", made["name"])
    today = dt.datetime.now(dt.timezone.utc).day
    assert made["credits"] == {"remaining": 100, "refill": {"interval": "monthly",
                                                            "amount": 100, "refillDay": today}}
    assert "ratelimits" not in made and "expires" not in made
    assert unkey.unkey.root_key not in result.output


def test_done_means_command_request_list_and_delete(run, unkey):
    result = run("unkey", "100", "--name", "my-api", "--prefix", "prod", "--rate", "10/m",
                 "--refill", "monthly", "-i", input=master(unkey))
    assert result.code == 0, result
    [create] = unkey_requests(unkey, "keys.createKey")
    today = dt.datetime.now(dt.timezone.utc).day
    assert create.json == {
        "apiId": unkey.unkey.api_id,
        "name": create.json["name"],
        "prefix": "prod",
        "credits": {"remaining": 100,
                    "refill": {"interval": "monthly", "amount": 100, "refillDay": today}},
        "ratelimits": [{"name": "per_minute", "limit": 10, "duration": 60000,
                        "autoApply": True}],
    }
    doc = doc_for("unkey")
    assert doc.validate_request("POST", "/v2/keys.createKey", None, create.json) == []
    # read back with keys.getKey (never verifyKey) to check the cap that was set
    assert [r.path.rsplit("/", 1)[1] for r in unkey_requests(unkey)] == \
        ["keys.createKey", "keys.getKey"]

    listed = run("keys", "list", "-r", "unkey", "-i", input=master(unkey))
    assert listed.code == 0, listed
    [row] = listed.stdout.splitlines()
    key_id = unkey.unkey.snapshot()[0]["keyId"]
    assert row.startswith(key_id[:16]) and "100 credits/month" in row
    assert "100 credits left" in row and "rate 10/m" in row and f"day {today}" in row

    deleted = run("keys", "delete", "unkey", key_id[:10], "-i", input=master(unkey))
    assert deleted.code == 0, deleted
    assert unkey.unkey.snapshot() == []
    [delete] = unkey_requests(unkey, "keys.deleteKey")
    assert delete.json == {"keyId": key_id}


def test_credits_are_spent_by_verifications_until_unkey_refuses(run, unkey):
    result = run("unkey", "3", "--refill", "none", "-i", input=master(unkey))
    assert result.code == 0, result
    assert "3 credits total" in result.stderr
    key = result.stdout.strip()
    codes = [verify(unkey, key)["code"] for _ in range(4)]
    assert codes == ["VALID", "VALID", "VALID", "USAGE_EXCEEDED"]
    listed = run("keys", "list", "-r", "unkey", "--json", "-i", input=master(unkey))
    [row] = json.loads(listed.stdout)["data"]["keys"]
    assert row["remaining"] == "0" and row["limit"] is None and row["period"] == "none"
    assert row["status"] == "active" and row["usage"] is None
    text = run("keys", "list", "-r", "unkey", "-i", input=master(unkey)).stdout
    assert "credits, no refill" in text and "0 credits left" in text


def test_refill_daily_with_an_amount_rates_and_expiry(run, unkey):
    result = run("unkey", "1,000", "--refill", "daily:50", "--rate", "10/s", "--rate",
                 "500/h", "--expires", "2031-01-31", "--json", "-i", input=master(unkey))
    assert result.code == 0, result
    data = json.loads(result.stdout)["data"]
    errors = list(Draft202012Validator(json.loads((SCHEMAS / "key.issued.json").read_text()))
                  .iter_errors(json.loads(result.stdout)))
    assert errors == []
    assert data["cap"] == {"amount": "1000", "unit": "credits", "period": "daily"}
    assert data["expires_at"] == "2031-01-31T00:00:00Z" and data["key"]
    [create] = unkey_requests(unkey, "keys.createKey")
    assert create.json["credits"] == {"remaining": 1000,
                                      "refill": {"interval": "daily", "amount": 50}}
    assert create.json["expires"] == 1927584000000
    assert [(r["name"], r["limit"], r["duration"]) for r in create.json["ratelimits"]] == \
        [("per_second", 10, 1000), ("per_hour", 500, 3_600_000)]


def test_rate_limit_is_enforced_by_the_sandbox(run, unkey):
    result = run("unkey", "100", "--rate", "2/m", "-i", input=master(unkey))
    key = result.stdout.strip()
    codes = [verify(unkey, key)["code"] for _ in range(3)]
    assert codes == ["VALID", "VALID", "RATE_LIMITED"]
    assert unkey.unkey.snapshot()[0]["credits"]["remaining"] == 98  # refused: not spent


def test_agent_env_prints_the_unkey_variable(run, unkey):
    result = run("unkey", "10", "--agent", "env", "-i", input=master(unkey))
    assert result.code == 0, result
    assert result.stdout.startswith("export UNKEY_KEY=")


def test_ledger_records_credits_and_no_secret(run, unkey, capit_home):
    result = run("unkey", "100", "--prefix", "prod", "-i", input=master(unkey))
    key = result.stdout.strip()
    [entry] = [json.loads(line) for line in (capit_home / "ledger.jsonl").read_text()
               .splitlines()]
    assert entry["unit"] == "credits" and entry["cap"] == "100" and entry["period"] == "monthly"
    assert entry["hash"] == unkey.unkey.snapshot()[0]["keyId"]
    text = (capit_home / "ledger.jsonl").read_text()
    assert key not in text and unkey.unkey.root_key not in text


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize("args, words", [
    (["unkey", "5.00"], "whole verifications, not dollars"),
    (["unkey", "$5"], "not dollars"),
    (["unkey", "0"], "at least 1 credit"),
    (["unkey", "1,5"], "not a number of credits"),
    (["unkey", "lots"], "not a number of credits"),
    (["unkey", "10000000000000"], "larger than capit allows"),
    (["unkey", "100", "--refill", "weekly"], "daily or monthly only"),
    (["unkey", "100", "--refill", "monthly:0"], "at least 1 credit"),
    (["unkey", "100", "--refill", "monthly:"], "empty"),
    (["unkey", "100", "--rate", "10/d"], "10/s, 100/m or 1000/h"),
    (["unkey", "100", "--rate", "0/m"], "between 1 and"),
    (["unkey", "100", "--rate", "10/m", "--rate", "20/m"], "the same window"),
    (["unkey", "100", "--prefix", "prod-eu"], "Unkey key prefixes"),
    (["unkey", "100", "--period", "daily"], "--period does not apply to unkey"),
    (["unkey", "100", "--models", "gpt-4o"], "--models does not apply to unkey"),
    (["unkey", "100", "--rpm", "5"], "--rpm does not apply to unkey (it is for: litellm)"),
    (["unkey", "100", "--expires", "2101-01-01"], "cannot expire after 2100"),
    (["openrouter", "5", "--refill", "daily"], "--refill does not apply to openrouter"),
    (["openrouter", "5", "--rate", "1/s"], "(it is for: unkey)"),
])
def test_bad_unkey_input_is_one_line_and_sends_nothing(run, unkey, capit_home, args, words):
    before = tree_snapshot(capit_home)
    result = run(*args, "-i", input=master(unkey))
    assert_one_line_error(result, ExitCode.USAGE)
    assert words in result.stderr
    assert unkey.requests == [] and tree_snapshot(capit_home) == before


# ---------------------------------------------------------------- the master credential


def test_keys_add_asks_for_root_key_and_api_id_and_checks_them(run, unkey):
    result = run("keys", "add", "unkey", input=f"{master(unkey)}{PASS}\n")
    assert result.code == 0, result
    assert "capit-sandbox" in result.stderr and unkey.unkey.api_id in result.stderr
    assert [r.path for r in unkey_requests(unkey)] == ["/unkey/v2/apis.getApi",
                                                       "/unkey/v2/apis.listKeys"]
    unkey.requests.clear()
    # now the seed's command exactly, with the key from the vault
    minted = run("unkey", "100", "--name", "my-api", "--prefix", "prod", input=f"{PASS}\n")
    assert minted.code == 0, minted
    [create] = unkey_requests(unkey, "keys.createKey")
    assert create.json["apiId"] == unkey.unkey.api_id
    platforms = run("--platforms")
    [line] = [ln for ln in platforms.stdout.splitlines() if ln.startswith("unkey ")]
    assert "master key in vault" in line and "not dollars" in line


@pytest.mark.parametrize("which, code, words", [
    ("root", ExitCode.AUTH, "rejected the root key"),
    ("api", ExitCode.NOT_FOUND, "found no API"),
    ("format", ExitCode.USAGE, "not an Unkey API id"),
])
def test_keys_add_refuses_a_bad_credential_and_stores_nothing(run, unkey, capit_home, which,
                                                            code, words):
    values = {"root": master(unkey, root="unkey_notARealRootKey123"),
              "api": master(unkey, api_id="api_doesNotExist"),
              "format": master(unkey, api_id="api-with-dashes")}
    result = run("keys", "add", "unkey", input=values[which] + f"{PASS}\n")
    assert_one_line_error(result, code)
    assert words in result.stderr
    assert not (capit_home / "vault.json").exists()
    assert "unkey_notARealRootKey123" not in result.output


def test_a_legacy_plaintext_root_key_without_api_id_says_what_to_do(run, unkey, capit_home):
    capit_home.mkdir(mode=0o700)
    (capit_home / "secrets.txt").write_text(f"unkey={unkey.unkey.root_key}\n")
    result = run("unkey", "100")
    assert_one_line_error(result, ExitCode.NOT_FOUND)
    assert "has no API id" in result.stderr and "capit keys add unkey" in result.stderr
    assert unkey.requests == []


# ------------------------------------------------------------------------ error mapping


def _fault(sb, op: str, status: int, error_type: str, detail: str, **extra) -> None:
    error = {"title": "x", "detail": detail, "status": status,
             "type": f"https://unkey.com/docs/errors/unkey/{error_type}"}
    if status == 400:
        error["errors"] = extra.pop("errors", [])
    sb.faults.queue("POST", f"/unkey/v2/{op}", status,
                    body={"meta": {"requestId": "req_fault"}, "error": error}, **extra)


def test_missing_authorization_is_400_and_maps_to_an_auth_error(run, unkey):
    r = httpx.post(f"{unkey.unkey_base_url}/v2/apis.getApi", timeout=5,
                   json={"apiId": unkey.unkey.api_id})
    assert r.status_code == 400
    assert r.json()["error"]["type"].endswith("/authentication/missing")
    _fault(unkey, "keys.createKey", 400, "authentication/malformed", "malformed header",
           errors=[{"location": "header.Authorization", "message": "invalid"}])
    result = run("unkey", "100", "-i", input=master(unkey))
    assert_one_line_error(result, ExitCode.AUTH)
    assert "Authorization header" in result.stderr and "authentication/malformed" in \
        result.stderr
    assert unkey.unkey.snapshot() == []


def test_missing_permission_is_403_naming_the_permission(run, unkey):
    root = unkey.unkey.add_root_key(["api.*.read_key", "api.*.read_api"])
    result = run("unkey", "100", "-i", input=master(unkey, root=root))
    assert_one_line_error(result, ExitCode.AUTH)
    assert f"api.{unkey.unkey.api_id}.create_key" in result.stderr
    assert root not in result.output


def test_an_api_not_set_up_for_keys_is_412(run, unkey):
    api_id = unkey.unkey.add_api("no-keys", keyspace=False)
    result = run("unkey", "100", "-i", input=master(unkey, api_id=api_id))
    assert_one_line_error(result, ExitCode.PROVIDER)
    assert "precondition failed" in result.stderr and "412" in result.stderr
    assert "not set up to handle keys" in result.stderr


def test_unknown_api_on_create_is_not_found(run, unkey):
    result = run("unkey", "100", "-i", input=master(unkey, api_id="api_doesNotExist"))
    assert_one_line_error(result, ExitCode.NOT_FOUND)


def test_validation_error_names_the_field(run, unkey):
    _fault(unkey, "keys.createKey", 400, "application/invalid_input", "bad request",
           errors=[{"location": "body.name", "message": "too long"}])
    result = run("unkey", "100", "-i", input=master(unkey))
    assert_one_line_error(result, ExitCode.PROVIDER)
    assert "body.name: too long" in result.stderr


def test_rate_limited_with_problem_json(run, unkey):
    _fault(unkey, "keys.createKey", 429, "application/rate_limited", "slow down",
           headers={"Retry-After": "60", "Content-Type": "application/problem+json"})
    result = run("unkey", "100", "-i", input=master(unkey))
    assert_one_line_error(result, ExitCode.RATE_LIMITED)
    assert "in 60 s" in result.stderr


def test_server_error_on_reads_is_retried_then_reported(run, unkey):
    unkey.faults.queue("POST", "/unkey/v2/apis.listKeys", 503, times=3)
    result = run("keys", "list", "-r", "unkey", "-i", input=master(unkey))
    assert_one_line_error(result, ExitCode.PROVIDER)
    assert len(unkey_requests(unkey, "apis.listKeys")) == 3
    unkey.faults.queue("POST", "/unkey/v2/apis.listKeys", 500)
    result = run("keys", "list", "-r", "unkey", "-i", input=master(unkey))
    assert result.code == 0, result


# ------------------------------------------------------------------ unknown outcomes


def test_dropped_create_is_reconciled_by_name_and_never_repeated(run, unkey):
    unkey.unkey.drop_after_create = True
    unkey.unkey.list_cache_seconds = 60  # a plain listKeys would not show the new key
    result = run("unkey", "100", "--name", "lost", "-i", input=master(unkey))
    assert_one_line_error(result, ExitCode.UNCERTAIN)
    [made] = unkey.unkey.snapshot()
    assert made["keyId"] in result.stderr and "was not retried" in result.stderr
    assert f"capit keys delete unkey {made['keyId']}" in result.stderr
    assert len(unkey_requests(unkey, "keys.createKey")) == 1
    [listing] = unkey_requests(unkey, "apis.listKeys")
    assert listing.json["revalidateKeysCache"] is True


def test_failed_create_with_nothing_created_says_so(run, unkey):
    unkey.faults.queue("POST", "/unkey/v2/keys.createKey", 500)
    result = run("unkey", "100", "-i", input=master(unkey))
    assert_one_line_error(result, ExitCode.UNCERTAIN)
    assert "nothing was created" in result.stderr
    assert unkey.unkey.snapshot() == []


def test_unanswered_create_and_unreadable_list_is_uncertain(run, unkey):
    unkey.unkey.drop_after_create = True
    unkey.faults.queue("POST", "/unkey/v2/apis.listKeys", 503, times=3)
    result = run("unkey", "100", "-i", input=master(unkey))
    assert_one_line_error(result, ExitCode.UNCERTAIN)
    assert "could not check" in result.stderr and "capit keys list -r unkey" in result.stderr


def test_a_key_whose_cap_differs_is_deleted_not_handed_out(run, unkey):
    unkey.faults.queue("POST", "/unkey/v2/keys.getKey", 200, body={
        "meta": {"requestId": "req_x"},
        "data": {"keyId": "key_12345678", "start": "abcd", "enabled": True,
                 "createdAt": 1, "credits": {"remaining": 1000000}},
    })
    result = run("unkey", "100", "-i", input=master(unkey))
    assert_one_line_error(result, ExitCode.PROVIDER)
    assert "cannot trust" in result.stderr and "it was deleted" in result.stderr
    assert result.stdout == "" and unkey.unkey.snapshot() == []


# ------------------------------------------------------------------ listing and deleting


def test_list_follows_the_cursor(run, unkey):
    with httpx.Client(base_url=unkey.unkey_base_url, timeout=5,
                      headers={"Authorization": f"Bearer {unkey.unkey.root_key}"}) as http:
        for i in range(201):
            r = http.post("/v2/keys.createKey", json={"apiId": unkey.unkey.api_id,
                                                      "name": f"k{i}",
                                                      "credits": {"remaining": 5}})
            assert r.status_code == 200
    unkey.requests.clear()
    result = run("keys", "list", "-r", "unkey", "--json", "-i", input=master(unkey))
    keys = json.loads(result.stdout)["data"]["keys"]
    assert [k["name"] for k in keys] == [f"k{i}" for i in range(201)]
    cursors = [r.json.get("cursor") for r in unkey_requests(unkey, "apis.listKeys")]
    assert cursors[0] is None and len(cursors) == 3 and None not in cursors[1:]


def test_delete_by_name_and_an_unknown_key(run, unkey):
    run("unkey", "5", "--name", "one", "-i", input=master(unkey))
    [made] = unkey.unkey.snapshot()
    result = run("keys", "delete", "unkey", made["name"], "--json", "-i", input=master(unkey))
    assert json.loads(result.stdout)["data"] == {"platform": "unkey", "hash": made["keyId"],
                                                 "name": made["name"]}
    missing = run("keys", "delete", "unkey", "key_nothere", "-i", input=master(unkey))
    assert_one_line_error(missing, ExitCode.NOT_FOUND)


def test_delete_retried_after_a_lost_answer(run, unkey):
    run("unkey", "5", "--name", "two", "-i", input=master(unkey))
    [made] = unkey.unkey.snapshot()
    unkey.faults.queue("POST", "/unkey/v2/keys.deleteKey", 500)
    result = run("keys", "delete", "unkey", made["keyId"], "-i", input=master(unkey))
    assert result.code == 0, result
    assert unkey.unkey.snapshot() == []
    assert len(unkey_requests(unkey, "keys.deleteKey")) == 2


def test_verbose_log_shows_no_secret(run, unkey):
    result = run("-v", "unkey", "100", "-i", input=master(unkey))
    assert result.code == 0, result
    key = result.stdout.strip()
    assert "POST /v2/keys.createKey -> 200" in result.stderr
    assert key not in result.stderr and unkey.unkey.root_key not in result.stderr


def test_an_html_answer_from_a_gateway_is_handled(run, unkey):
    unkey.faults.queue("POST", "/unkey/v2/keys.createKey", 200, raw=b"<html>oops</html>")
    result = run("unkey", "100", "-i", input=master(unkey))
    assert_one_line_error(result, ExitCode.UNCERTAIN)
    assert "not JSON" in result.stderr and "nothing was created" in result.stderr
    unkey.faults.queue("POST", "/unkey/v2/apis.listKeys", 502, raw=b"<html>bad gateway</html>",
                       times=3)
    result = run("keys", "list", "-r", "unkey", "-i", input=master(unkey))
    assert_one_line_error(result, ExitCode.PROVIDER)

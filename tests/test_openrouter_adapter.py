"""The OpenRouter adapter through the CLI: unknown create outcomes, paging, delete, validation
of master keys, verification of the minted cap, -v logging, and the cap really holding.

End-to-end runs use the sandbox on 127.0.0.1 (every request validated against the OpenAPI
document when it is present); answers the sandbox cannot give (a 201 carrying a different
cap, an old GET /key without the management flag) come from respx at the httpx transport.
"""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest
import respx
from conftest import MGMT, PASS, assert_one_line_error, tree_snapshot

from capit import ledger
from capit.errors import ExitCode

FAKE = "https://openrouter.test/api/v1"  # respx only: nothing listens there
CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}


def issue(run, *extra):
    return run("openrouter", "5", *extra, input=f"{PASS}\n")


def list_remote(run, *extra):
    return run("keys", "list", "-r", "openrouter", *extra, input=f"{PASS}\n")


def delete(run, query):
    return run("keys", "delete", "openrouter", query, input=f"{PASS}\n")


def delete_once(run, query):
    """`keys delete ... -i`: the management key typed in, no vault to unseal."""
    return run("keys", "delete", "openrouter", query, "-i", input=f"{MGMT}\n")


def list_once(run):
    return run("keys", "list", "-r", "openrouter", "-i", input=f"{MGMT}\n")


def calls(sb, method, path="/api/v1/keys"):
    return [r for r in sb.requests if r.method == method and r.path == path]


def minted(home):
    return [e for e in ledger.read(home) if e.get("event") == "minted"]


def api_key(hash_: str, name: str, limit=5, limit_reset="monthly", **extra) -> dict:
    """An ApiKey object as the OpenAPI document describes it."""
    return {
        "hash": hash_, "name": name, "label": "sk-or-v1-abc...wxyz", "disabled": False,
        "limit": limit, "limit_remaining": limit, "limit_reset": limit_reset,
        "include_byok_in_limit": False, "usage": 0, "usage_daily": 0, "usage_weekly": 0,
        "usage_monthly": 0, "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0,
        "byok_usage_monthly": 0, "created_at": "2026-01-01T00:00:00Z", "updated_at": None,
        "expires_at": None, "creator_user_id": None, **extra,
    }


# ------------------------------------------------------- unknown outcome of POST /keys


def assert_reconciled_to_one_orphan(result, sb, capit_home, before):
    assert_one_line_error(result, ExitCode.UNCERTAIN)
    assert result.stdout == ""
    keys = sb.keys_snapshot()
    assert len(keys) == 1, keys  # created once, never re-created
    assert len(calls(sb, "POST")) == 1
    error = result.stderr.strip().splitlines()[-1]
    found = re.search(r"capit keys delete openrouter ([0-9a-f]{6,64})\b", error)
    assert found, error
    assert keys[0]["hash"].startswith(found.group(1))
    assert keys[0]["name"] in error
    assert tree_snapshot(capit_home) == before  # nothing handed out, nothing recorded
    return found.group(1)


def test_create_timeout_is_reconciled_by_name(run, stored_key, capit_home, monkeypatch):
    sb = stored_key
    monkeypatch.setenv("CAPIT_HTTP_TIMEOUT", "0.5")
    sb.faults.create_delay = 1.5
    before = tree_snapshot(capit_home)
    result = issue(run)
    prefix = assert_reconciled_to_one_orphan(result, sb, capit_home, before)
    # the command capit printed really removes the orphan
    sb.faults.clear()
    result = delete(run, prefix)
    assert result.code == 0, result
    assert sb.keys_snapshot() == []


def test_connection_dropped_after_create_is_reconciled(run, stored_key, capit_home):
    sb = stored_key
    sb.faults.drop_after_create = True
    before = tree_snapshot(capit_home)
    result = issue(run)
    assert_reconciled_to_one_orphan(result, sb, capit_home, before)


def test_502_that_created_nothing_says_so(run, stored_key, capit_home):
    sb = stored_key
    sb.create_key("someone-elses-key", limit=1)
    sb.faults.queue("POST", "/keys", 502)
    before = tree_snapshot(capit_home)
    result = issue(run)
    assert_one_line_error(result, ExitCode.UNCERTAIN)
    assert "nothing was created" in result.stderr
    assert [k["name"] for k in sb.keys_snapshot()] == ["someone-elses-key"]
    assert len(calls(sb, "POST")) == 1
    assert tree_snapshot(capit_home) == before


def test_key_that_appears_only_on_the_recheck_is_found(run, stored_key, capit_home,
                                                       monkeypatch):
    """A create still in flight when capit first looks is found by the later re-check."""
    from capit import http

    waits = []
    monkeypatch.setattr(http, "sleep", waits.append)
    sb = stored_key
    monkeypatch.setenv("CAPIT_HTTP_TIMEOUT", "0.5")
    sb.faults.create_delay = 1.5
    sb.faults.queue("GET", "/keys", 200, body={"data": []})  # the first look sees nothing
    before = tree_snapshot(capit_home)
    result = issue(run)
    prefix = assert_reconciled_to_one_orphan(result, sb, capit_home, before)
    assert prefix and waits == [1.0]
    assert len(calls(sb, "GET")) == 2


@pytest.mark.parametrize("fault", ["timeout", "502"])
def test_failed_reconciliation_says_to_list_keys(run, stored_key, capit_home, monkeypatch,
                                                 fault):
    sb = stored_key
    if fault == "timeout":
        monkeypatch.setenv("CAPIT_HTTP_TIMEOUT", "0.5")
        sb.faults.create_delay = 1.5
    else:
        sb.faults.queue("POST", "/keys", 502)
    sb.faults.queue("GET", "/keys", 500, times=50)
    before = tree_snapshot(capit_home)
    result = issue(run)
    assert_one_line_error(result, ExitCode.UNCERTAIN)
    assert "capit keys list -r openrouter" in result.stderr
    assert "nothing was created" not in result.stderr  # it cannot know
    assert result.stdout == ""
    assert len(calls(sb, "POST")) == 1
    assert len(sb.keys_snapshot()) == (1 if fault == "timeout" else 0)
    assert tree_snapshot(capit_home) == before


# ----------------------------------------------------------------------------- paging


def test_list_pages_through_every_key_including_disabled(run, stored_key):
    sb = stored_key
    names = [f"k{i:03d}" for i in range(250)]
    hashes = [sb.create_key(n, limit=1)["data"]["hash"] for n in names]
    disabled = hashes[::50]  # 5 keys
    with httpx.Client(base_url=sb.base_url, headers={"Authorization": f"Bearer {MGMT}"},
                      verify=False) as client:
        for h in disabled:
            assert client.patch(f"/keys/{h}", json={"disabled": True}).status_code == 200
    sb.requests.clear()
    result = list_remote(run)
    assert result.code == 0, result
    rows = result.stdout.strip().splitlines()
    assert len(rows) == 250
    shown = {row.split()[1] for row in rows}
    assert shown == set(names)
    assert sum("[disabled]" in row for row in rows) == 5
    gets = calls(sb, "GET")
    assert [g.query.get("offset") for g in gets] == [["0"], ["100"], ["200"]]
    assert all(g.query.get("include_disabled") == ["true"] for g in gets)

    sb.requests.clear()
    result = list_remote(run, "--json")
    assert result.code == 0, result
    listed = json.loads(result.stdout)["data"]["keys"]
    assert len(listed) == 250 and len({k["hash"] for k in listed}) == 250
    assert sorted(k["hash"] for k in listed if k["status"] == "disabled") == sorted(disabled)


def test_exactly_one_full_page_needs_one_more_request(run, stored_key):
    sb = stored_key
    for i in range(100):
        sb.create_key(f"k{i}", limit=1)
    sb.requests.clear()
    result = list_once(run)
    assert result.code == 0, result
    assert len(result.stdout.strip().splitlines()) == 100
    assert [g.query.get("offset") for g in calls(sb, "GET")] == [["0"], ["100"]]


def test_server_repeating_the_same_full_page_does_not_loop(run, stored_key):
    sb = stored_key
    for i in range(100):
        sb.create_key(f"k{i}", limit=1)
    page = {"data": sb.keys_snapshot()}
    sb.faults.queue("GET", "/keys", 200, body=page, times=100000)
    result = list_once(run)
    # a truncated list presented as complete would mislead: say it cannot be listed
    assert result.code == 11, result
    assert "repeats" in result.stderr and result.stdout == ""
    assert len(calls(sb, "GET")) <= 3


# ----------------------------------------------------------------------------- delete


@pytest.fixture
def three_keys(stored_key):
    sb = stored_key
    made = [sb.create_key(n, limit=1)["data"] for n in ("alpha", "beta", "gamma")]
    sb.requests.clear()
    return sb, made


@pytest.mark.parametrize("how", ["hash", "HASH", "prefix6", "prefix12", "name"])
def test_delete_by_hash_prefix_or_name(run, three_keys, how):
    sb, made = three_keys
    target = made[1]
    query = {"hash": target["hash"], "HASH": target["hash"].upper(),
             "prefix6": target["hash"][:6], "prefix12": target["hash"][:12],
             "name": target["name"]}[how]
    if how.startswith("prefix") and any(
            k["hash"].startswith(query) for k in (made[0], made[2])):
        pytest.skip("random hashes happen to share the prefix")
    result = delete_once(run, query)
    assert result.code == 0, result
    assert target["hash"][:16] in result.stdout
    assert [k["name"] for k in sb.keys_snapshot()] == ["alpha", "gamma"]
    assert [r.path for r in sb.requests if r.method == "DELETE"] == [
        f"/api/v1/keys/{target['hash']}"]


def test_ambiguous_prefix_lists_matches_and_deletes_nothing(run, stored_key, capit_home):
    sb = stored_key
    seen: dict[str, str] = {}
    pair = None
    for i in range(200000):
        h = sb.create_key(f"key-{i}", limit=1)["data"]["hash"]
        if h[:6] in seen:
            pair = (seen[h[:6]], h)
            break
        seen[h[:6]] = h
    assert pair, "no two hashes shared 6 hex digits"
    for h in list(seen.values())[3:]:  # keep the twins and three others
        if h not in pair:
            sb.state.delete_key(h)
    sb.requests.clear()
    count = len(sb.keys_snapshot())
    before = tree_snapshot(capit_home)
    result = delete(run, pair[0][:6])
    assert_one_line_error(result, ExitCode.AMBIGUOUS)
    assert pair[0][:16] in result.stderr and pair[1][:16] in result.stderr
    assert [r for r in sb.requests if r.method == "DELETE"] == []
    assert len(sb.keys_snapshot()) == count
    assert tree_snapshot(capit_home) == before
    # one more digit tells them apart (when it does)
    if pair[0][6] != pair[1][6]:
        result = delete(run, pair[0][:7])
        assert result.code == 0, result
        remaining = {k["hash"] for k in sb.keys_snapshot()}
        assert pair[0] not in remaining and pair[1] in remaining


def test_two_keys_with_the_same_name_are_ambiguous(run, stored_key):
    sb = stored_key
    sb.create_key("twin", limit=1)
    sb.create_key("twin", limit=2)
    result = delete_once(run, "twin")
    assert_one_line_error(result, ExitCode.AMBIGUOUS)
    assert len(sb.keys_snapshot()) == 2
    assert [r for r in sb.requests if r.method == "DELETE"] == []


@pytest.mark.parametrize("first", ["502", "timeout"])
def test_delete_whose_first_answer_was_lost_is_not_reported_missing(run, capit_home,
                                                                    monkeypatch, first):
    """DELETE is retried (it is idempotent); when the lost first attempt did delete the key,
    the retry's 404 means the key is gone, which is what was asked for."""
    monkeypatch.setenv("CAPIT_OPENROUTER_BASE_URL", FAKE)
    h = "c0ffee" + "4" * 58
    lost = (httpx.Response(502, text="<html>bad gateway</html>") if first == "502"
            else httpx.ReadTimeout("timed out"))
    with respx.mock(base_url=FAKE, assert_all_called=True) as mock:
        mock.get("/keys").respond(200, json={"data": [api_key(h, "agent-key")]})
        gone = mock.delete(f"/keys/{h}").mock(side_effect=[
            lost, httpx.Response(404, json={"error": {"code": 404, "message": "Not found"}})])
        result = run("keys", "delete", "openrouter", h[:8], "-i", input=f"{MGMT}\n")
    assert gone.call_count == 2
    assert result.code == 0, result
    assert h[:16] in result.stdout


@pytest.mark.parametrize("length", [1, 3, 5])
def test_too_short_prefix_is_refused(run, three_keys, capit_home, length):
    sb, made = three_keys
    before = tree_snapshot(capit_home)
    result = delete_once(run, made[0]["hash"][:length])
    assert_one_line_error(result, ExitCode.NOT_FOUND)
    assert "6" in result.stderr
    assert len(sb.keys_snapshot()) == 3
    assert [r for r in sb.requests if r.method == "DELETE"] == []
    assert tree_snapshot(capit_home) == before


def test_deleting_a_minted_key_marks_it_revoked_in_the_ledger(run, stored_key, capit_home):
    sb = stored_key
    result = issue(run)
    assert result.code == 0, result
    [entry] = minted(capit_home)
    assert entry["status"] == "active"
    assert entry["hash"] == sb.keys_snapshot()[0]["hash"]
    result = delete(run, entry["name"])
    assert result.code == 0, result
    [entry] = ledger.read(capit_home)
    assert entry["status"] == "revoked" and entry.get("revoked_at")
    assert sb.keys_snapshot() == []


# -------------------------------------------------------- validation on `keys add`


def test_keys_add_accepts_a_management_key(run, sandbox, capit_home):
    result = run("keys", "add", "openrouter", input=f"{sandbox.management_key}\n{PASS}\n")
    assert result.code == 0, result
    assert (capit_home / "vault.json").is_file()
    assert [(r.method, r.path) for r in sandbox.requests] == [("GET", "/api/v1/key")]
    assert sandbox.management_key not in result.output
    assert sandbox.management_key not in (capit_home / "vault.json").read_text()


def test_keys_add_refuses_an_inference_key(run, sandbox, capit_home):
    inference = sandbox.create_key("agent", limit=1)["key"]
    result = run("keys", "add", "openrouter", input=f"{inference}\n{PASS}\n")
    assert_one_line_error(result, ExitCode.AUTH)
    assert "https://openrouter.ai/settings/management-keys" in result.stderr
    assert inference not in result.output
    assert not (capit_home / "vault.json").exists()
    assert tree_snapshot(capit_home) == {}


def test_keys_add_refuses_an_unknown_key(run, sandbox, capit_home):
    result = run("keys", "add", "openrouter", input="sk-or-v1-" + "1" * 64 + f"\n{PASS}\n")
    assert_one_line_error(result, ExitCode.AUTH)
    assert tree_snapshot(capit_home) == {}


@pytest.mark.parametrize(("credits_status", "code"), [(200, 0), (403, ExitCode.AUTH)])
def test_keys_add_without_the_flag_asks_a_management_only_endpoint(run, capit_home,
                                                                   monkeypatch, credits_status,
                                                                   code):
    monkeypatch.setenv("CAPIT_OPENROUTER_BASE_URL", FAKE)
    old_answer = {"data": {"label": "sk-or-v1-abc...wxyz", "limit": None, "usage": 0}}
    with respx.mock(base_url=FAKE, assert_all_called=True) as mock:
        mock.get("/key").respond(200, json=old_answer)
        credits = mock.get("/credits").respond(
            credits_status,
            json={"data": {"total_credits": 1, "total_usage": 0}} if credits_status == 200
            else {"error": {"code": 403, "message": "Only management keys can perform this "
                                                    "operation"}})
        result = run("keys", "add", "openrouter", input="sk-or-v1-" + "2" * 64 + f"\n{PASS}\n")
    assert credits.call_count == 1
    if code:
        assert_one_line_error(result, code)
        assert tree_snapshot(capit_home) == {}
    else:
        assert result.code == 0, result
        assert (capit_home / "vault.json").is_file()


# ------------------------------------------------------- the minted cap is verified


@pytest.mark.parametrize(
    "answer",
    [{"limit": 50}, {"limit": None}, {"limit": 4.99}, {"limit_reset": "daily"},
     {"limit_reset": None}],
    ids=["limit-50", "no-limit", "limit-4.99", "daily", "never-resets"],
)
def test_a_key_with_another_cap_is_deleted_not_handed_out(run, capit_home, monkeypatch, answer):
    monkeypatch.setenv("CAPIT_OPENROUTER_BASE_URL", FAKE)
    secret = "sk-or-v1-" + "9" * 64
    h = "c0ffee" + "0" * 58
    with respx.mock(base_url=FAKE, assert_all_called=True) as mock:
        create = mock.post("/keys").mock(side_effect=lambda request: httpx.Response(
            201, json={"data": api_key(h, json.loads(request.content)["name"], **answer),
                       "key": secret}))
        gone = mock.delete(f"/keys/{h}").respond(200, json={"deleted": True})
        result = run("openrouter", "5", "-i", input=f"{MGMT}\n")
    assert_one_line_error(result, ExitCode.PROVIDER)
    assert create.call_count == 1 and gone.call_count == 1
    assert secret not in result.output and secret[9:40] not in result.output
    assert result.stdout == ""
    assert minted(capit_home) == []


def test_a_key_with_the_right_cap_is_handed_out(run, capit_home, monkeypatch):
    """The control for the test above: the same fake, answering the cap asked for."""
    monkeypatch.setenv("CAPIT_OPENROUTER_BASE_URL", FAKE)
    secret = "sk-or-v1-" + "8" * 64
    h = "c0ffee" + "1" * 58
    with respx.mock(base_url=FAKE, assert_all_called=False) as mock:
        mock.post("/keys").mock(side_effect=lambda request: httpx.Response(
            201, json={"data": api_key(h, json.loads(request.content)["name"]), "key": secret}))
        gone = mock.delete(f"/keys/{h}").respond(200, json={"deleted": True})
        result = run("openrouter", "5", "-i", input=f"{MGMT}\n")
    assert result.code == 0, result
    assert result.stdout.strip() == secret
    assert gone.call_count == 0
    assert [e["hash"] for e in minted(capit_home)] == [h]


@pytest.mark.parametrize(
    ("returned", "handed_out"),
    [(None, False), ("2099-01-01T00:00:00Z", False), ("same", True), ("same-ms", True)],
    ids=["never-expires", "other-time", "same", "same-with-milliseconds"],
)
def test_the_expiry_asked_for_is_verified(run, capit_home, monkeypatch, returned, handed_out):
    monkeypatch.setenv("CAPIT_OPENROUTER_BASE_URL", FAKE)
    secret = "sk-or-v1-" + "6" * 64
    h = "c0ffee" + "3" * 58

    def answer(request):
        body = json.loads(request.content)
        sent = body["expires_at"]
        expires = {"same": sent, "same-ms": sent.replace("Z", ".000Z")}.get(returned, returned)
        return httpx.Response(201, json={"data": api_key(h, body["name"], expires_at=expires),
                                         "key": secret})

    with respx.mock(base_url=FAKE, assert_all_called=False) as mock:
        mock.post("/keys").mock(side_effect=answer)
        gone = mock.delete(f"/keys/{h}").respond(200, json={"deleted": True})
        result = run("openrouter", "5", "--expires", "30d", "-i", input=f"{MGMT}\n")
    if handed_out:
        assert result.code == 0, result
        assert result.stdout.strip() == secret
        assert gone.call_count == 0
    else:
        assert_one_line_error(result, ExitCode.PROVIDER)
        assert secret not in result.output
        assert gone.call_count == 1
        assert minted(capit_home) == []


def test_an_untrusted_key_that_cannot_be_deleted_is_reported(run, capit_home, monkeypatch):
    monkeypatch.setenv("CAPIT_OPENROUTER_BASE_URL", FAKE)
    secret = "sk-or-v1-" + "7" * 64
    h = "c0ffee" + "2" * 58
    with respx.mock(base_url=FAKE, assert_all_called=True) as mock:
        mock.post("/keys").mock(side_effect=lambda request: httpx.Response(
            201, json={"data": api_key(h, json.loads(request.content)["name"], limit=None),
                       "key": secret}))
        mock.delete(f"/keys/{h}").respond(500, json={"error": {"code": 500, "message": "x"}})
        result = run("openrouter", "5", "-i", input=f"{MGMT}\n")
    assert_one_line_error(result, ExitCode.PROVIDER)
    assert secret not in result.output
    error = result.stderr.strip().splitlines()[-1]
    assert "was deleted" not in error  # it was not
    assert f"capit keys delete openrouter {h[:16]}" in error


# ------------------------------------------------------------------------- -v logging


def verbose_run(run, *args, input):
    from capit.cli import _common

    _common.state["verbose"] = False
    logger = logging.getLogger("capit")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    return run(*args, input=input)


LOG_LINE = re.compile(r"^capit: openrouter (GET|POST|DELETE) (/\S+) -> (\d{3}) \((\d+) ms\)$")


def logged(result):
    return [m.groups()[:3] for m in map(LOG_LINE.match, result.stderr.splitlines()) if m]


def test_verbose_logs_each_request_without_secrets(run, stored_key, capit_home):
    sb = stored_key
    sb.faults.queue("GET", "/keys", 503)
    result = verbose_run(run, "-v", "openrouter", "5", input=f"{PASS}\n")
    assert result.code == 0, result
    key = result.stdout.strip()
    assert logged(result) == [("POST", "/keys", "201")]
    assert key not in result.stderr and key[9:30] not in result.stderr
    assert MGMT not in result.output and MGMT[9:30] not in result.output

    result = verbose_run(run, "keys", "list", "-r", "openrouter", "-v", input=f"{PASS}\n")
    assert result.code == 0, result
    assert logged(result) == [("GET", "/keys?include_disabled=true&offset=0", "503"),
                              ("GET", "/keys?include_disabled=true&offset=0", "200")]
    assert MGMT not in result.output and key not in result.output

    h = sb.keys_snapshot()[0]["hash"]
    result = verbose_run(run, "keys", "delete", "openrouter", h[:8], "-v", input=f"{PASS}\n")
    assert result.code == 0, result
    assert logged(result)[-1] == ("DELETE", f"/keys/{h}", "200")


def test_verbose_keys_add_logs_the_check_not_the_key(run, sandbox):
    result = verbose_run(run, "keys", "add", "openrouter", "-v",
                         input=f"{sandbox.management_key}\n{PASS}\n")
    assert result.code == 0, result
    assert logged(result) == [("GET", "/key", "200")]
    assert sandbox.management_key not in result.output
    assert sandbox.management_key[9:30] not in result.output


def test_verbose_logs_failures_too(run, stored_key, capit_home):
    sb = stored_key
    sb.faults.queue("POST", "/keys", 402)
    result = verbose_run(run, "openrouter", "5", "-v", input=f"{PASS}\n")
    assert_one_line_error(result, ExitCode.PAYMENT)
    assert logged(result) == [("POST", "/keys", "402")]


# ---------------------------------------------------------------- the cap really holds


def test_issued_key_is_capped_by_the_provider(run, stored_key, capit_home):
    sb = stored_key
    result = run("openrouter", "5.00", input=f"{PASS}\n")
    assert result.code == 0, result
    key = result.stdout.strip()
    assert [(r.method, r.path) for r in sb.requests] == [("POST", "/api/v1/keys")]
    [remote] = sb.keys_snapshot()
    assert remote["limit"] == 5 and remote["limit_reset"] == "monthly"
    with httpx.Client(base_url=sb.base_url, headers={"Authorization": f"Bearer {key}"},
                      verify=False, timeout=5) as client:
        statuses = [client.post("/chat/completions", json=CHAT).status_code for _ in range(21)]
    assert statuses == [200] * 20 + [402]
    [remote] = sb.keys_snapshot()
    assert remote["usage"] == 5 and remote["limit_remaining"] == 0
    result = list_remote(run)
    assert result.code == 0, result
    assert "used $5.00" in result.stdout and "$5.00/month" in result.stdout

"""Provider failures through the CLI: one line, the documented exit code, nothing on disk.

Every test drives capit the way a user types it (``capit openrouter 5``, ``capit keys
list -r openrouter``, ``capit keys delete ...``) against the sandbox on 127.0.0.1, whose
``faults`` queue answers chosen requests with an error.  Retry-After handling is checked
by recording the sleeps capit asks for (``capit.http.sleep``), never by waiting.
"""

from __future__ import annotations

import socket

import pytest
from conftest import MGMT, PASS, assert_one_line_error, tree_snapshot

from capit import ledger
from capit.errors import ExitCode

HTML = b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"


@pytest.fixture
def sleeps(monkeypatch):
    """The seconds capit chose to sleep, in order (nothing is actually waited)."""
    from capit import http

    recorded: list[float] = []
    monkeypatch.setattr(http, "sleep", recorded.append)
    return recorded


def issue(run):
    return run("openrouter", "5", input=f"{PASS}\n")


def list_remote(run):
    return run("keys", "list", "-r", "openrouter", input=f"{PASS}\n")


def list_once(run):
    """`keys list -r openrouter -i`: the management key typed in, no vault to unseal."""
    return run("keys", "list", "-r", "openrouter", "-i", input=f"{MGMT}\n")


def calls(sb, method, path="/api/v1/keys"):
    return [r for r in sb.requests if r.method == method and r.path == path]


def minted(home):
    return [e for e in ledger.read(home) if e.get("event") == "minted"]


class Unchanged:
    """Snapshot CAPIT_HOME; ``check()`` asserts no file changed and no key was recorded."""

    def __init__(self, home):
        self.home = home
        self.before = tree_snapshot(home)
        self.minted = minted(home) if home.exists() else []

    def check(self):
        assert tree_snapshot(self.home) == self.before
        after = minted(self.home) if self.home.exists() else []
        assert after == self.minted


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connection refused


# ------------------------------------------------------------- refusals of the create


@pytest.mark.parametrize(
    ("status", "code", "needle"),
    [
        (400, ExitCode.PROVIDER, "400"),
        (401, ExitCode.AUTH, "https://openrouter.ai/settings/management-keys"),
        (402, ExitCode.PAYMENT, "credits"),
        (403, ExitCode.AUTH, "https://openrouter.ai/settings/management-keys"),
    ],
)
def test_refused_create_is_one_line_with_its_exit_code(run, stored_key, capit_home, sleeps,
                                                       status, code, needle):
    sb = stored_key
    sb.faults.queue("POST", "/keys", status)
    snap = Unchanged(capit_home)
    result = issue(run)
    assert_one_line_error(result, code)
    assert needle in result.stderr
    assert result.stdout == ""
    snap.check()
    assert len(calls(sb, "POST")) == 1  # a refusal is final: not retried
    assert sb.keys_snapshot() == []
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, ExitCode.PROVIDER), (401, ExitCode.AUTH), (402, ExitCode.PAYMENT),
     (403, ExitCode.AUTH)],
)
def test_refused_list_is_one_line_with_its_exit_code(run, stored_key, capit_home, status, code):
    sb = stored_key
    sb.create_key("existing", limit=1)
    sb.faults.queue("GET", "/keys", status)
    snap = Unchanged(capit_home)
    result = list_once(run)
    assert_one_line_error(result, code)
    assert "existing" not in result.stdout
    snap.check()
    assert len(calls(sb, "GET")) == 1


def test_wrong_master_key_is_auth_error(run, sandbox, capit_home):
    result = run("openrouter", "5", "-i", input="sk-or-v1-" + "0" * 64 + "\n")
    assert_one_line_error(result, ExitCode.AUTH)
    assert "https://openrouter.ai/settings/management-keys" in result.stderr
    assert "0" * 64 not in result.output
    assert tree_snapshot(capit_home) == {}
    assert sandbox.keys_snapshot() == []


def test_inference_key_as_master_says_where_management_keys_are_made(run, sandbox, capit_home):
    inference = sandbox.create_key("an-inference-key", limit=1)["key"]
    for args in (("openrouter", "5", "-i"), ("keys", "list", "-r", "openrouter", "-i")):
        result = run(*args, input=inference + "\n")
        assert_one_line_error(result, ExitCode.AUTH)
        assert "management key" in result.stderr
        assert "https://openrouter.ai/settings/management-keys" in result.stderr
        assert inference not in result.output
    assert tree_snapshot(capit_home) == {}
    assert [k["name"] for k in sandbox.keys_snapshot()] == ["an-inference-key"]


def test_provider_error_text_never_shows_the_master_key(run, stored_key, capit_home):
    sb = stored_key
    sb.faults.queue("POST", "/keys", 400,
                    body={"error": {"code": 400, "message": f"bad key {sb.management_key}\n"
                                                            "second line"}})
    result = issue(run)
    assert_one_line_error(result, ExitCode.PROVIDER)
    assert sb.management_key not in result.output
    assert sb.management_key[9:30] not in result.output
    assert "bad key" in result.stderr and "second line" in result.stderr


# --------------------------------------------------------------------------- delete


def test_delete_answered_404_is_not_found_and_records_nothing(run, stored_key, capit_home):
    sb = stored_key
    target = sb.create_key("victim", limit=1)["data"]["hash"]
    sb.faults.queue("DELETE", "/keys/", 404)
    snap = Unchanged(capit_home)
    result = run("keys", "delete", "openrouter", target, input=f"{PASS}\n")
    assert_one_line_error(result, ExitCode.NOT_FOUND)
    snap.check()
    assert len(calls(sb, "DELETE", f"/api/v1/keys/{target}")) == 1
    assert [k["hash"] for k in sb.keys_snapshot()] == [target]


def test_delete_of_an_unknown_hash_sends_no_delete(run, stored_key, capit_home):
    sb = stored_key
    sb.create_key("keeper", limit=1)
    snap = Unchanged(capit_home)
    result = run("keys", "delete", "openrouter", "ab" * 32, input=f"{PASS}\n")
    assert_one_line_error(result, ExitCode.NOT_FOUND)
    snap.check()
    assert [r for r in sb.requests if r.method == "DELETE"] == []
    assert len(sb.keys_snapshot()) == 1


# ----------------------------------------------------------------------------- 429


def test_retry_after_is_honoured_on_list(run, stored_key, sleeps):
    sb = stored_key
    sb.create_key("listed", limit=1)
    sb.faults.queue("GET", "/keys", 429, headers={"Retry-After": "2"})
    result = list_once(run)
    assert result.code == 0, result
    assert "listed" in result.stdout
    assert sleeps == [2.0]
    assert len(calls(sb, "GET")) == 2


def test_retry_after_is_honoured_on_create_and_mints_once(run, stored_key, capit_home, sleeps):
    sb = stored_key
    sb.faults.queue("POST", "/keys", 429, headers={"Retry-After": "3"})
    result = issue(run)
    assert result.code == 0, result
    assert result.stdout.strip().startswith("sk-or-v1-")
    assert sleeps == [3.0]
    assert len(calls(sb, "POST")) == 2
    assert len(sb.keys_snapshot()) == 1
    assert len(minted(capit_home)) == 1


def test_http_date_retry_after_is_understood(run, stored_key, sleeps):
    import email.utils
    import time

    sb = stored_key
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    sb.faults.queue("GET", "/keys", 429, headers={"Retry-After": when})
    result = list_once(run)
    assert result.code == 0, result
    assert len(sleeps) == 1 and 3.0 <= sleeps[0] <= 5.0


@pytest.mark.parametrize("command", ["issue", "list"])
def test_long_retry_after_is_reported_not_waited(run, stored_key, capit_home, sleeps, command):
    sb = stored_key
    path = "/keys"
    sb.faults.queue("POST" if command == "issue" else "GET", path, 429,
                    headers={"Retry-After": "3600"})
    snap = Unchanged(capit_home)
    result = issue(run) if command == "issue" else list_remote(run)
    assert_one_line_error(result, ExitCode.RATE_LIMITED)
    assert "3600" in result.stderr
    assert sleeps == []
    snap.check()
    assert len(sb.requests) == 1
    assert sb.keys_snapshot() == []


def test_endless_429_is_bounded(run, stored_key, capit_home, sleeps):
    sb = stored_key
    sb.faults.queue("GET", "/keys", 429, headers={"Retry-After": "1"}, times=50)
    snap = Unchanged(capit_home)
    result = list_once(run)
    assert_one_line_error(result, ExitCode.RATE_LIMITED)
    snap.check()
    assert 2 <= len(calls(sb, "GET")) <= 5
    assert len(sleeps) == len(calls(sb, "GET")) - 1
    assert all(s == 1.0 for s in sleeps)


def test_endless_429_without_retry_after_backs_off_and_stops(run, stored_key, capit_home,
                                                             sleeps):
    sb = stored_key
    sb.faults.queue("POST", "/keys", 429, times=50)
    result = issue(run)
    assert_one_line_error(result, ExitCode.RATE_LIMITED)
    assert 2 <= len(calls(sb, "POST")) <= 5
    assert sleeps and all(s > 0 for s in sleeps) and sum(sleeps) <= 60
    assert sb.keys_snapshot() == []
    assert minted(capit_home) == []


# ----------------------------------------------------------------------------- 5xx


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_on_get_is_retried_a_bounded_number_of_times(run, stored_key, capit_home, sleeps,
                                                         status):
    sb = stored_key
    sb.faults.queue("GET", "/keys", status, times=50)
    snap = Unchanged(capit_home)
    result = list_once(run)
    assert_one_line_error(result, ExitCode.PROVIDER)
    assert str(status) in result.stderr
    snap.check()
    gets = len(calls(sb, "GET"))
    assert 2 <= gets <= 5  # retried, but not forever
    assert len(sleeps) == gets - 1 and all(0 < s <= 10 for s in sleeps)


def test_transient_5xx_on_get_recovers(run, stored_key, sleeps):
    sb = stored_key
    sb.create_key("survivor", limit=1)
    sb.faults.queue("GET", "/keys", 503, times=1)
    result = list_once(run)
    assert result.code == 0, result
    assert "survivor" in result.stdout
    assert len(calls(sb, "GET")) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_on_create_is_reconciled_not_retried(run, stored_key, capit_home, sleeps, status):
    sb = stored_key
    sb.faults.queue("POST", "/keys", status)
    snap = Unchanged(capit_home)
    result = issue(run)
    assert_one_line_error(result, ExitCode.UNCERTAIN)
    assert "nothing was created" in result.stderr
    assert result.stdout == ""
    snap.check()
    assert len(calls(sb, "POST")) == 1
    assert len(calls(sb, "GET")) >= 1  # looked the name up instead of creating again
    assert sb.keys_snapshot() == []


def test_html_body_on_create_is_reconciled(run, stored_key, capit_home):
    sb = stored_key
    sb.faults.queue("POST", "/keys", 200, raw=HTML)
    snap = Unchanged(capit_home)
    result = issue(run)
    assert_one_line_error(result, ExitCode.UNCERTAIN)
    assert "nothing was created" in result.stderr
    assert "<html" not in result.stderr
    snap.check()
    assert len(calls(sb, "POST")) == 1
    assert len(calls(sb, "GET")) >= 1


def test_html_502_on_create_is_reconciled(run, stored_key, capit_home):
    sb = stored_key
    sb.faults.queue("POST", "/keys", 502, raw=HTML)
    result = issue(run)
    assert_one_line_error(result, ExitCode.UNCERTAIN)
    assert "cloudflare" not in result.stderr
    assert len(calls(sb, "POST")) == 1
    assert sb.keys_snapshot() == []


def test_non_json_200_on_get_is_a_provider_error(run, stored_key, capit_home):
    sb = stored_key
    sb.create_key("hidden", limit=1)
    sb.faults.queue("GET", "/keys", 200, raw=b"<html>login page</html>")
    snap = Unchanged(capit_home)
    result = list_once(run)
    assert_one_line_error(result, ExitCode.PROVIDER)
    assert "JSON" in result.stderr
    snap.check()


@pytest.mark.parametrize(
    "body",
    [[1, 2], {"data": None}, {"data": "nope"}, {"keys": []}, "text"],
    ids=["array", "null-data", "string-data", "no-data", "string"],
)
def test_json_of_the_wrong_shape_on_list_is_a_provider_error(run, stored_key, body):
    sb = stored_key
    sb.faults.queue("GET", "/keys", 200, body=body)
    result = list_once(run)
    assert_one_line_error(result, ExitCode.PROVIDER)


# ------------------------------------------------------------------- no connection


@pytest.mark.parametrize("command", ["issue", "list", "delete"])
def test_connection_refused_is_network_error(run, stored_key, capit_home, monkeypatch,
                                             sleeps, command):
    port = closed_port()
    monkeypatch.setenv("CAPIT_OPENROUTER_BASE_URL", f"http://127.0.0.1:{port}/api/v1")
    snap = Unchanged(capit_home)
    if command == "issue":
        result = issue(run)
    elif command == "list":
        result = list_remote(run)
    else:
        result = run("keys", "delete", "openrouter", "ab" * 32, input=f"{PASS}\n")
    assert_one_line_error(result, ExitCode.NETWORK)
    assert f"127.0.0.1:{port}" in result.stderr
    snap.check()
    assert stored_key.requests == []


def test_unanswered_get_times_out_as_network_error(run, stored_key, capit_home, monkeypatch):
    sb = stored_key
    monkeypatch.setenv("CAPIT_HTTP_TIMEOUT", "0.2")
    sb.faults.queue("GET", "/keys", 200, body={"data": []}, delay=0.6, times=10)
    snap = Unchanged(capit_home)
    result = list_remote(run)
    assert_one_line_error(result, ExitCode.NETWORK)
    assert "0.2" in result.stderr
    snap.check()
    assert 1 <= len(calls(sb, "GET")) <= 3

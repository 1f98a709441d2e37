from conftest import PASS


def test_issue_with_stored_key_makes_exactly_one_request(run, stored_key):
    sb = stored_key
    result = run("openrouter", "5.00", input=f"{PASS}\n")
    assert result.code == 0, result
    key = result.stdout.strip()
    assert key.startswith("sk-or-v1-")
    assert [(r.method, r.path) for r in sb.requests] == [("POST", "/api/v1/keys")]
    body = sb.requests[0].json
    assert body["limit"] == 5 and body["limit_reset"] == "monthly"
    assert set(body) == {"name", "limit", "limit_reset"}

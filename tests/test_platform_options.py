"""The per-platform parts of ``capit PLATFORM AMOUNT``: what AMOUNT means, which options
apply where, and how ``capit --platforms``, ``--help`` and the docs say so."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest

from capit.errors import CapitError, ExitCode
from capit.platforms import IssuedKey, KeyRequest, Platform, RemoteKey, require_platform
from capit.secret import Secret

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text, value", [("100", 100), ("1,000", 1000), (" 7 ", 7),
                                         ("1000000000000", 10**12)])
def test_unkey_amounts_are_whole_credits(text, value):
    assert require_platform("unkey").parse_cap(text) == Decimal(value)


@pytest.mark.parametrize("text", ["5.00", "$5", "5usd", "0", "-3", "1,00", "ten", "", "1e3"])
def test_unkey_refuses_what_is_not_a_number_of_credits(text):
    with pytest.raises(CapitError) as err:
        require_platform("unkey").parse_cap(text)
    assert err.value.code == ExitCode.USAGE


@pytest.mark.parametrize("name", ["openrouter", "litellm"])
def test_dollar_platforms_keep_the_dollar_parser(name):
    plat = require_platform(name)
    assert plat.parse_cap("$5") == Decimal("5.00") and plat.cap_unit == "USD"
    with pytest.raises(CapitError):
        plat.parse_cap("5.001")


def _request(**options) -> KeyRequest:
    return KeyRequest(name="n-1a2b3c4d", amount=Decimal(100), period="monthly",
                      options=options)


def test_unkey_plan_defaults_and_period():
    plat = require_platform("unkey")
    request = _request()
    plat.check_request(request)
    assert request.period == "monthly"
    for refill, period in (("daily", "daily"), ("none", "none"), ("monthly:5", "monthly")):
        request = _request(refill=refill)
        plat.check_request(request)
        assert request.period == period
    plan = plat._plan(_request(refill="monthly:5", rate=["5/s", " 60 / h "], prefix="prod_1"))
    assert plan.credits["refill"]["amount"] == 5
    assert plan.credits["refill"]["refillDay"] == dt.datetime.now(dt.timezone.utc).day
    assert [r["duration"] for r in plan.ratelimits] == [1000, 3_600_000]
    assert plan.prefix == "prod_1"


def test_an_option_for_another_platform_is_a_usage_error_naming_who_takes_it():
    openrouter = require_platform("openrouter")
    with pytest.raises(CapitError) as err:
        openrouter.check_request(_request(tpm=5))
    assert err.value.code == ExitCode.USAGE
    assert err.value.message == "--tpm does not apply to openrouter (it is for: litellm); " \
                                "nothing was sent"
    openrouter.check_request(_request(period="weekly", prefix="prod"))  # taken / common


def test_a_third_party_platform_refuses_options_it_does_not_declare():
    class Plain(Platform):
        name = "plain"

    with pytest.raises(CapitError, match="--refill does not apply to plain"):
        Plain().check_request(_request(refill="daily"))
    Plain().check_request(_request(period="daily"))


def test_caps_are_described_in_their_unit():
    key = IssuedKey("unkey", Secret("prod_abcdefgh1234"), "key_1", "n", Decimal(1000),
                    "monthly", None, None, unit="credits")
    assert key.describe_cap() == "1,000 credits/month" and key.short_cap() == "1,000 credits"
    key.period = "none"
    assert key.describe_cap() == "1,000 credits total"
    remote = RemoteKey("key_1", "n", Decimal(100), "daily", None, None, None, False,
                       remaining=Decimal(37), unit="credits")
    assert (remote.cap_text(), remote.usage_text()) == ("100 credits/day", "37 credits left")
    pool = RemoteKey("key_2", "n", None, "none", None, None, None, False,
                     remaining=Decimal(3), unit="credits")
    assert pool.cap_text() == "credits, no refill"
    dollars = RemoteKey("h", "n", Decimal(5), "monthly", Decimal("1.25"), None, None, False)
    assert (dollars.cap_text(), dollars.usage_text()) == ("$5.00/month", "used $1.25")


def test_platforms_list_says_what_each_cap_means(run):
    result = run("--platforms")
    assert result.code == 0, result
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(rows) == {"openrouter", "unkey", "litellm"}
    assert "US dollars" in rows["openrouter"]
    assert "verifications (credits), not dollars" in rows["unkey"]
    assert "US dollars" in rows["litellm"] and "LiteLLM proxy" in rows["litellm"]
    assert all("no master key stored" in row for row in rows.values())


def test_issue_help_says_unkey_counts_credits(run):
    result = run("issue", "--help")
    assert result.code == 0, result
    text = " ".join(result.stdout.split())
    assert "for unkey it is a number of verifications (credits), not dollars" in text
    for option in ("--refill", "--rate", "--models", "--rpm", "--tpm"):
        assert option in text


def test_new_platform_guide_exists_and_matches_the_code():
    guide = (ROOT / "docs" / "new-platform.md").read_text()
    for name in ("capit.platforms.v1", "parse_cap", "check_request", "master_fields",
                 "validate_master", "issue", "list_keys", "delete_key", "OutcomeUnknown",
                 "capit/platforms/openrouter.py", "Platform"):
        assert name in guide, name
    for attribute in re.findall(r"`Platform\.(\w+)`", guide):
        assert hasattr(Platform, attribute), attribute
    readme = (ROOT / "README.md").read_text()
    assert "docs/new-platform.md" in readme
    assert "capit unkey 100 --name my-api --prefix prod" in readme


def test_capit_sandbox_prints_the_unkey_and_litellm_urls_and_keys():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPIT_")}
    proc = subprocess.Popen([sys.executable, "-m", "capit", "sandbox", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        unkey = re.search(r"base URL\s+(http://127\.0\.0\.1:\d+/unkey)\n", text)
        root = re.search(r"root key\s+(unkey_\w+)", text)
        api = re.search(r"API id\s+(api_\w+)", text)
        proxy = re.search(r"proxy URL\s+(http://127\.0\.0\.1:\d+/litellm)\n", text)
        master = re.search(r"master key\s+(sk-[\w-]+)\n", text)
        assert unkey and root and api and proxy and master, text
        import httpx

        got = httpx.post(f"{unkey.group(1)}/v2/apis.getApi", json={"apiId": api.group(1)},
                         headers={"Authorization": f"Bearer {root.group(1)}"}, timeout=5)
        assert got.status_code == 200 and got.json()["data"]["id"] == api.group(1)
        listed = httpx.get(f"{proxy.group(1)}/key/list", timeout=5,
                           headers={"x-litellm-api-key": master.group(1)})
        assert listed.status_code == 200 and listed.json()["keys"] == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)

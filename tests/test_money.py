"""Unit tests of capit.money: amounts, periods, expiries, key names, cap descriptions."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from capit.errors import CapitError, ExitCode
from capit.money import (
    CONFIRM_ABOVE,
    MAX_AMOUNT,
    PERIODS,
    describe_cap,
    format_time,
    format_usd,
    make_key_name,
    parse_amount,
    parse_expires,
    parse_period,
)

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 11, 12, 0, 0, 250_000, tzinfo=UTC)  # sub-second on purpose


def usage_error(fn, *args, **kwargs) -> str:
    with pytest.raises(CapitError) as info:
        fn(*args, **kwargs)
    assert info.value.code == ExitCode.USAGE
    message = info.value.message
    assert message and "\n" not in message
    return message


# ------------------------------------------------------------------ parse_amount


@pytest.mark.parametrize(("text", "expected"), [
    ("5", "5.00"),
    ("5.00", "5.00"),
    ("$5", "5.00"),
    ("5.", "5.00"),
    (".50", "0.50"),
    ("$.5", "0.50"),
    ("0.01", "0.01"),
    ("19.99", "19.99"),
    (" 7.5 ", "7.50"),
    ("$5.00", "5.00"),
    ("1,500", "1500.00"),
    ("$123,456.78", "123456.78"),
    ("1,000,000", "1000000.00"),
    ("1000", "1000.00"),
    ("007", "7.00"),
])
def test_parse_amount_accepts(text, expected):
    value = parse_amount(text)
    assert isinstance(value, Decimal)
    # exact: same digits and exponent, not merely equal (5 == 5.00 as Decimals)
    assert value.as_tuple() == Decimal(expected).as_tuple()
    assert str(value) == expected


def test_parse_amount_is_exact_decimal_arithmetic():
    total = parse_amount("0.10") + parse_amount("0.20")
    assert total == Decimal("0.30")  # 0.1 + 0.2 != 0.3 in binary floating point
    assert parse_amount("1000000") == MAX_AMOUNT
    assert parse_amount("1000") == CONFIRM_ABOVE


@pytest.mark.parametrize(("text", "hint"), [
    ("0", "more than $0"),
    ("0.00", "more than $0"),
    ("$0", "more than $0"),
    (".00", "more than $0"),
    ("-1", "more than $0"),
    ("-0.5", "more than $0"),
    ("$-5", "more than $0"),
    ("-$5", "more than $0"),
    ("-0", "more than $0"),
    ("5.001", "two decimals"),
    ("0.001", "two decimals"),
    ("abc", "not a dollar amount"),
    ("nan", "not a dollar amount"),
    ("NaN", "not a dollar amount"),
    ("inf", "not a dollar amount"),
    ("Infinity", "not a dollar amount"),
    ("-inf", "not a dollar amount"),
    ("1e3", "not a dollar amount"),
    ("5e0", "not a dollar amount"),
    ("0x10", "not a dollar amount"),
    ("5 00", "not a dollar amount"),
    ("$$5", "not a dollar amount"),
    ("5$", "not a dollar amount"),
    ("5..0", "not a dollar amount"),
    ("1_000", "not a dollar amount"),
    ("+5", "not a dollar amount"),
    (".", "not a dollar amount"),
    ("$", "not a dollar amount"),
    ("1,5", "not a dollar amount"),  # a decimal comma must not become $15
    ("12,34", "not a dollar amount"),
    ("1,0000", "not a dollar amount"),
    (",5", "not a dollar amount"),
    ("", "empty"),
    ("   ", "empty"),
    ("1000000.01", "larger than capit allows"),
    ("99999999999999999999", "larger than capit allows"),
])
def test_parse_amount_refuses(text, hint):
    message = usage_error(parse_amount, text)
    assert hint in message


# ------------------------------------------------------------------ parse_period


@pytest.mark.parametrize(("text", "expected"), [
    ("monthly", "monthly"), ("weekly", "weekly"), ("daily", "daily"), ("none", "none"),
    ("MONTHLY", "monthly"), (" Weekly ", "weekly"),
])
def test_parse_period(text, expected):
    assert parse_period(text) == expected


@pytest.mark.parametrize("text", ["yearly", "", "month", "hourly", "monthly,weekly"])
def test_parse_period_refuses(text):
    message = usage_error(parse_period, text)
    assert all(p in message for p in PERIODS)


def test_periods_are_the_four_openrouter_knows():
    assert PERIODS == ("monthly", "weekly", "daily", "none")


# ------------------------------------------------------------------ parse_expires


@pytest.mark.parametrize(("text", "delta"), [
    ("30d", dt.timedelta(days=30)),
    ("12h", dt.timedelta(hours=12)),
    ("45m", dt.timedelta(minutes=45)),
    ("2w", dt.timedelta(weeks=2)),
    ("1m", dt.timedelta(minutes=1)),
    ("30D", dt.timedelta(days=30)),
    (" 12h ", dt.timedelta(hours=12)),
    ("7 d", dt.timedelta(days=7)),
])
def test_parse_expires_durations(text, delta):
    when = parse_expires(text, now=NOW)
    assert when == (NOW + delta).replace(microsecond=0)
    assert when.tzinfo is not None and when.utcoffset() == dt.timedelta(0)
    assert when.microsecond == 0


@pytest.mark.parametrize(("text", "expected"), [
    ("2027-01-31", "2027-01-31T00:00:00Z"),  # a date: midnight UTC
    ("2027-01-31T18:00:00Z", "2027-01-31T18:00:00Z"),
    ("2027-01-31T18:00:00z", "2027-01-31T18:00:00Z"),
    ("2027-01-31T18:00:00+02:00", "2027-01-31T16:00:00Z"),
    ("2027-01-31T18:00:00-05:30", "2027-01-31T23:30:00Z"),
    ("2027-01-31T23:30:00-01:00", "2027-02-01T00:30:00Z"),  # crosses midnight
    ("2027-01-31T18:00:00+00:00", "2027-01-31T18:00:00Z"),
    ("2027-01-31T18:00:00", "2027-01-31T18:00:00Z"),  # no offset: UTC
    ("2027-01-31T18:00", "2027-01-31T18:00:00Z"),  # seconds added
    ("2027-01-31T18:00:59.999999Z", "2027-01-31T18:00:59Z"),  # whole seconds
    ("2027-01-31 18:00:00+01:00", "2027-01-31T17:00:00Z"),
])
def test_parse_expires_dates_and_times(text, expected):
    when = parse_expires(text, now=NOW)
    assert when.utcoffset() == dt.timedelta(0)
    assert when.microsecond == 0
    assert format_time(when) == expected


def test_parse_expires_defaults_to_the_real_clock():
    before = dt.datetime.now(UTC).replace(microsecond=0)
    when = parse_expires("1h")
    after = dt.datetime.now(UTC)
    assert before + dt.timedelta(hours=1) <= when <= after + dt.timedelta(hours=1)


@pytest.mark.parametrize(("text", "hint"), [
    ("2001-01-01", "in the past"),
    ("2026-03-11", "in the past"),  # today, midnight: already gone
    ("2026-03-11T12:00:00Z", "in the past"),  # now itself (whole seconds) is not the future
    ("2026-03-11T13:00:00+02:00", "in the past"),  # 11:00 UTC
    ("0d", "future"),
    ("0m", "future"),
    ("100001d", "too far"),
    ("9999-12-31T23:59:59-01:00", "out of range"),  # past year 9999 once in UTC
    ("0001-01-01T00:00:00+01:00", "out of range"),
    ("garbage", "not understood"),
    ("soon", "not understood"),
    ("-1d", "not understood"),
    ("30", "not understood"),
    ("30y", "not understood"),
    ("1.5d", "not understood"),
    ("2027-02-30", "not understood"),
    ("2027-13-01", "not understood"),
    ("", "not understood"),
])
def test_parse_expires_refuses(text, hint):
    assert hint in usage_error(parse_expires, text, now=NOW)


def test_format_time_converts_to_utc_with_seconds():
    tz = dt.timezone(dt.timedelta(hours=-3))
    assert format_time(dt.datetime(2027, 1, 31, 21, 5, 7, 999, tzinfo=tz)) == \
        "2027-02-01T00:05:07Z"


# ------------------------------------------------------------------ make_key_name

HEX8 = r"[0-9a-f]{8}"


@pytest.mark.parametrize(("prefix", "name", "pattern"), [
    ("prod", "claude", rf"prod-claude-{HEX8}"),
    (None, "claude", rf"claude-{HEX8}"),
    ("prod", None, rf"prod-{HEX8}"),
    (None, None, HEX8),
    ("", "", HEX8),
    (" prod ", "-claude-", rf"prod-claude-{HEX8}"),
    ("my.team_1", "agent-v2", rf"my\.team_1-agent-v2-{HEX8}"),
    ("P", "X" * 48, rf"P-{'X' * 48}-{HEX8}"),
])
def test_make_key_name(prefix, name, pattern):
    assert re.fullmatch(pattern, make_key_name(prefix, name))


def test_make_key_name_suffix_is_random():
    names = {make_key_name("prod", "claude") for _ in range(20)}
    assert len(names) == 20


@pytest.mark.parametrize(("prefix", "name", "what"), [
    (None, "a b", "name"),
    (None, "x/y", "name"),
    (None, "ünï", "name"),
    (None, "a--b", "name"),
    (None, "_x", "name"),
    (None, "x" * 49, "name"),
    (None, "---", "name"),
    (None, "cl\taude", "name"),
    ("p;rm", None, "prefix"),
    ("a$b", "ok", "prefix"),
    ("ok", "<script>", "name"),
])
def test_make_key_name_refuses(prefix, name, what):
    message = usage_error(make_key_name, prefix, name)
    assert message.startswith(what)


# ------------------------------------------------------------------ describe_cap


@pytest.mark.parametrize(("amount", "period", "expected"), [
    (Decimal("5"), "monthly", "$5.00/month"),
    (Decimal("5.00"), "weekly", "$5.00/week"),
    (Decimal("0.5"), "daily", "$0.50/day"),
    (Decimal("5"), "none", "$5.00 total"),
    (Decimal("5"), None, "$5.00 total"),
    (Decimal("1500"), "monthly", "$1,500.00/month"),
    (Decimal("1000000"), "monthly", "$1,000,000.00/month"),
    (Decimal("0.01"), "monthly", "$0.01/month"),
    (None, "monthly", "no cap"),
])
def test_describe_cap(amount, period, expected):
    assert describe_cap(amount, period) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("0.0000005"), "$0.00"),
    (Decimal("4.999"), "$5.00"),
    (0.1 + 0.2, "$0.30"),
    (3, "$3.00"),
    (None, "unlimited"),
])
def test_format_usd(value, expected):
    assert format_usd(value) == expected

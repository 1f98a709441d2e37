"""Parsing the request: the cap (a Decimal amount), its reset period, an expiry, a key name."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from decimal import Decimal, InvalidOperation

from capit.errors import usage

CONFIRM_ABOVE = Decimal("1000")  # a typo guard: larger caps ask for confirmation (or -y)
MAX_AMOUNT = Decimal("1000000")
PERIODS = ("monthly", "weekly", "daily", "none")
PERIOD_SUFFIX = {"monthly": "/month", "weekly": "/week", "daily": "/day", "none": " total"}

_AMOUNT_RE = re.compile(r"^\$?(?:\d+(?:\.\d{0,2})?|\.\d{1,2})$")


def parse_amount(text: str) -> Decimal:
    """``5``, ``5.00``, ``$5`` -> Decimal; anything else is one clear usage error."""
    raw = text.strip()
    if not raw:
        raise usage("amount is empty: give a cap in dollars, e.g. 5 or 5.00")
    body = raw.replace(",", "")
    if re.fullmatch(r"-\$?[\d.]+|\$-[\d.]+", body):
        raise usage(f"amount must be more than $0, got {text!r}")
    # commas only as thousands separators ("1,500.00"); "1,5" is not $15
    if "," in raw and not re.fullmatch(r"\$?\d{1,3}(?:,\d{3})+(?:\.\d{0,2})?", raw):
        raise usage(f"amount {text!r} is not a dollar amount: write cents after a '.', "
                    "e.g. 1.50")
    if not _AMOUNT_RE.match(body):
        if re.fullmatch(r"\$?\d*\.\d{3,}", body):
            raise usage(f"amount {text!r} has more than two decimals: caps are in whole cents")
        raise usage(f"amount {text!r} is not a dollar amount: use digits, e.g. 5 or 5.00")
    try:
        value = Decimal(body.lstrip("$"))
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise usage(f"amount {text!r} is not a dollar amount") from None
    if not value.is_finite() or value <= 0:
        raise usage(f"amount must be more than $0, got {text!r}")
    if value > MAX_AMOUNT:
        raise usage(f"amount {text!r} is larger than capit allows (${MAX_AMOUNT:,})")
    return value.quantize(Decimal("0.01"))


def format_usd(value: Decimal | float | int | None) -> str:
    if value is None:
        return "unlimited"
    amount = Decimal(str(value)).quantize(Decimal("0.01"))
    return f"${amount:,}"


def describe_cap(amount: Decimal | None, period: str | None) -> str:
    """``$5.00/month``; a cap that never resets is ``$5.00 total``."""
    if amount is None:
        return "no cap"
    return f"{format_usd(amount)}{PERIOD_SUFFIX.get(period or 'none', ' total')}"


def parse_period(text: str) -> str:
    value = text.strip().lower()
    if value not in PERIODS:
        raise usage(f"period must be one of {', '.join(PERIODS)}, got {text!r}")
    return value


_DURATION_RE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expires(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``30d``, ``12h``, ``45m``, ``2w``, a date (``2027-01-31``, midnight UTC) or an ISO time.

    Returns an aware UTC datetime with whole seconds, which must lie in the future.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    raw = text.strip()
    match = _DURATION_RE.match(raw.lower())
    if match:
        count = int(match.group(1))
        if count <= 0:
            raise usage(f"expiry {text!r} must be in the future")
        if count > 100000:
            raise usage(f"expiry {text!r} is too far away")
    try:
        if match:
            when = now + dt.timedelta(**{_UNITS[match.group(2)]: count})
        else:
            when = _parse_when(raw, text)
        when = when.astimezone(dt.timezone.utc).replace(microsecond=0)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is past year 9999 in UTC
        raise usage(f"expiry {text!r} is out of range") from None
    if when <= now:
        raise usage(f"expiry {text!r} is in the past")
    return when


def _parse_when(raw: str, text: str) -> dt.datetime:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            day = dt.date.fromisoformat(raw)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise usage(
            f"expiry {text!r} is not understood: use 30d, 12h, 45m, 2w, a date "
            "(2027-01-31) or a time (2027-01-31T18:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when


def format_time(when: dt.datetime) -> str:
    """RFC 3339 UTC with seconds, as OpenRouter requires: ``2027-01-31T00:00:00Z``."""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_NAME_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*(?:-[A-Za-z0-9_.]+)*$")


def _check_part(value: str, what: str) -> str:
    value = value.strip().strip("-")
    if not value:
        raise usage(f"{what} is empty")
    if len(value) > 48 or not _NAME_PART_RE.match(value):
        raise usage(
            f"{what} {value!r} may hold letters, digits, '.', '_' and '-' (at most 48)"
        )
    return value


def make_key_name(prefix: str | None, name: str | None) -> str:
    """``[prefix-][name-]<8 random hex>`` -- e.g. ``prod-claude-3f9a0c1e``."""
    parts = []
    if prefix:
        parts.append(_check_part(prefix, "prefix"))
    if name:
        parts.append(_check_part(name, "name"))
    parts.append(secrets.token_hex(4))
    return "-".join(parts)

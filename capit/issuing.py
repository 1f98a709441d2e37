"""Minting a capped key end to end: request -> unseal -> issue -> record -> deliver.

Nothing is handed out before the ledger holds the key's record, and a key that cannot be
recorded or delivered is revoked again, so a failed command leaves no live key behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from capit import ledger, ui
from capit.consumers import Consumer, Delivery
from capit.errors import CapitError, ExitCode
from capit.money import CONFIRM_ABOVE, format_usd
from capit.platforms import IssuedKey, KeyRequest, MasterKey, Platform


@dataclass
class Outcome:
    key: IssuedKey
    delivery: Delivery | None


def confirm_amount(platform: Platform, amount: Decimal, assume_yes: bool) -> None:
    if platform.cap_unit == "USD" and amount > CONFIRM_ABOVE:
        ui.confirm(
            f"Mint a key on {platform.name} with a {format_usd(amount)} cap (more than "
            f"{format_usd(CONFIRM_ABOVE)})?",
            assume_yes=assume_yes,
        )


def mint(home: Path, platform: Platform, master: MasterKey, request: KeyRequest,
         consumer: Consumer | None, *, assume_yes: bool = False,
         record: bool = True) -> Outcome:
    key = platform.issue(master, request)
    try:
        if record:
            ledger.record_minted(home, key, consumer.name if consumer else None)
    except BaseException as exc:
        _revoke(home, platform, master, key, "the ledger could not be written", record=False)
        if isinstance(exc, CapitError):
            raise CapitError(f"{exc.message}; the new key was revoked", exc.code) from None
        raise
    if consumer is None:
        return Outcome(key, None)
    try:
        delivery = consumer.install(key, platform, assume_yes=assume_yes)
    except BaseException as exc:
        _revoke(home, platform, master, key, f"delivery to {consumer.name} failed", record=record)
        if isinstance(exc, CapitError) and exc.code == ExitCode.CANCELLED:
            raise CapitError(f"{exc.message}; the new key was revoked", exc.code) from None
        if isinstance(exc, (CapitError, OSError)):
            message = exc.message if isinstance(exc, CapitError) else str(exc)
            raise CapitError(
                f"could not install the key into {consumer.name}: {message}; the new key was "
                "revoked",
                ExitCode.DELIVERY,
            ) from None
        raise
    return Outcome(key, delivery)


def _revoke(home: Path, platform: Platform, master: MasterKey, key: IssuedKey, reason: str,
            *, record: bool) -> None:
    try:
        platform.delete_key(master, key.hash)
    except CapitError as err:
        ui.warn(
            f"could not revoke the new key {key.name} ({key.hash[:16]}): {err.message}; delete "
            f"it with: capit keys delete {platform.name} {key.hash[:16]}"
        )
        return
    if record:
        try:
            ledger.record_revoked(home, platform.name, key.hash, reason)
        except CapitError as err:
            ui.warn(f"the key was revoked but the ledger could not record it: {err.message}")

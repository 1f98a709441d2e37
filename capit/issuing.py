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
        _raise_delivery_error(consumer, exc)
        raise
    if record and delivery.record is not None:
        try:
            ledger.record_delivered(home, key, consumer.name, delivery.location, delivery.record)
        except BaseException as exc:
            _undo_delivery(consumer, delivery)
            _revoke(home, platform, master, key, "the ledger could not record the delivery",
                    record=record)
            _raise_delivery_error(consumer, exc)
            raise
    return Outcome(key, delivery)


def _raise_delivery_error(consumer: Consumer, exc: BaseException) -> None:
    """Turn a failed delivery into a one-line error (the key is already revoked)."""
    if isinstance(exc, CapitError) and exc.code == ExitCode.CANCELLED:
        raise CapitError(f"{exc.message}; the new key was revoked", exc.code) from None
    if isinstance(exc, Exception):
        message = exc.message if isinstance(exc, CapitError) else (
            str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}")
        raise CapitError(
            f"could not install the key into {consumer.name}: {message}; the new key was "
            "revoked",
            ExitCode.DELIVERY,
        ) from None


def _undo_delivery(consumer: Consumer, delivery: Delivery) -> None:
    try:
        consumer.rollback(delivery)
    except Exception as exc:  # noqa: BLE001 - keep rolling back the rest
        ui.warn(f"could not undo the delivery to {consumer.name}: {exc}")


def mint_all(home: Path, platform: Platform, master: MasterKey,
             jobs: list[tuple[KeyRequest, Consumer | None]], *,
             assume_yes: bool = False) -> list[Outcome]:
    """Mint one key per job and deliver each; all or nothing.

    If a later job fails, every key minted earlier in the run is taken out of its agent's
    files again and revoked (the ledger records both), and the error says so.
    """
    done: list[tuple[Outcome, Consumer | None]] = []
    for request, consumer in jobs:
        try:
            done.append((mint(home, platform, master, request, consumer,
                              assume_yes=assume_yes), consumer))
        except BaseException as exc:
            if not done:
                raise
            failed = consumer.name if consumer else "the next key"
            for outcome, earlier in reversed(done):
                delivery = outcome.delivery
                if earlier is not None and delivery is not None:
                    _undo_delivery(earlier, delivery)
                    if delivery.record is not None:
                        try:
                            ledger.record_removed(home, platform.name, outcome.key.hash,
                                                  earlier.name, f"rolled back: {failed} failed")
                        except CapitError as err:
                            ui.warn(f"the ledger could not record the rollback: {err.message}")
                _revoke(home, platform, master, outcome.key,
                        f"rolled back: {failed} failed", record=True)
            if isinstance(exc, CapitError):
                names = ", ".join(c.name for _, c in done if c is not None)
                raise CapitError(
                    f"{exc.message}; the {len(done)} key(s) minted before it in this run "
                    f"({names}) were revoked too and their files restored", exc.code) from None
            raise
    return [outcome for outcome, _ in done]


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

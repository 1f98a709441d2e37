"""The ``yubikey-hmac-sha1`` slot: a YubiKey's HMAC-SHA1 challenge-response (OTP slot 1/2).

Stored per slot (plain JSON, the slot's metadata and so the wrap's associated data): the
device ``serial``, the OTP ``slot`` (1 or 2), a 32-byte random ``challenge`` (not 64: with
the default HMAC_LT64 flag a YubiKey strips trailing padding bytes of a 64-byte challenge)
and ``touch`` (whether the key asked for a touch at enrollment).  ``ikm`` is the 20-byte
HMAC-SHA1 response.

Devices are found through yubikey-manager's normal discovery: the OTP HID interface
(``ykman.hid.list_otp_devices``) and, where pyscard is importable, every PC/SC reader
(``ykman.pcsc``: USB CCID and NFC), matched by serial.  A key seen over both is used over
HID, where a touch-required slot can wait for the touch.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from capit.errors import CapitError, ExitCode
from capit.stores.hwtoken import TouchWait, gone
from capit.stores.slots import TokenHandle, TokenSlotType, _fields
from capit.stores.vaultfile import VaultDamaged, b64d, b64e

log = logging.getLogger("capit.yubikey")

TYPE = "yubikey-hmac-sha1"
CHALLENGE_BYTES = 32
RESPONSE_BYTES = 20
SECRET_BYTES = 20
INSTALL_HINT = (
    "YubiKey support is not installed: pip install 'capit[yubikey]' (on Linux this builds "
    "pyscard, which first needs: apt-get install swig libpcsclite-dev gcc)"
)
NONE_FOUND = ("no YubiKey found (plug one in; on Linux, reading its OTP interface needs a "
              "udev rule, e.g. from the libyubikey-udev package)")
TOUCH_PROMPT = "Touch your YubiKey..."


def available() -> bool:
    try:
        import ykman.hid  # noqa: F401
        import yubikit.yubiotp  # noqa: F401
    except ImportError:
        return False
    return True


def require() -> None:
    if not available():
        raise CapitError(INSTALL_HINT, ExitCode.USAGE)


@dataclass
class FoundKey:
    """A YubiKey that answered: its serial and how to open a connection to it again."""

    serial: int
    transport: str  # "usb" (OTP HID) or "pcsc" (a CCID or NFC reader)
    opener: Callable[[], Any]
    where: str

    @property
    def name(self) -> str:
        return f"YubiKey {self.serial}"

    def open(self) -> Any:
        return self.opener()


def _serial_of(conn: Any) -> int | None:
    from yubikit.yubiotp import YubiOtpSession

    try:
        return YubiOtpSession(conn).get_serial()
    except Exception as exc:  # noqa: BLE001 - not a YubiKey, OTP disabled, serial hidden
        log.info("no YubiKey serial from %s: %s", type(conn).__name__, exc)
        return None


def _hid_keys() -> list[FoundKey]:
    from ykman.hid import list_otp_devices
    from yubikit.core.otp import OtpConnection

    found = []
    try:
        devices = list_otp_devices()
    except Exception as exc:  # noqa: BLE001 - an unsupported platform or a broken hidraw
        log.info("YubiKey OTP HID discovery failed: %s", exc)
        return []
    for dev in devices:
        try:
            with dev.open_connection(OtpConnection) as conn:
                serial = _serial_of(conn)
        except Exception as exc:  # noqa: BLE001 - no permission, or it went away
            log.info("cannot open YubiKey OTP HID %s: %s", getattr(dev, "path", "?"), exc)
            continue
        if serial is not None:
            found.append(FoundKey(serial, "usb",
                                  lambda d=dev: d.open_connection(OtpConnection),
                                  "USB (OTP HID)"))
    return found


def _pcsc_keys() -> list[FoundKey]:
    try:
        from ykman.pcsc import ScardSmartCardConnection, list_readers
    except ImportError:  # pyscard missing: USB HID only
        return []
    try:
        readers = list_readers()
    except Exception as exc:  # noqa: BLE001 - no pcscd running, no readers
        log.info("no PC/SC readers: %s", exc)
        return []
    found = []
    for reader in readers:
        def opener(r: Any = reader) -> Any:
            return ScardSmartCardConnection(r.createConnection())
        try:
            with opener() as conn:
                serial = _serial_of(conn)
        except Exception as exc:  # noqa: BLE001 - no card, or not a YubiKey
            log.info("PC/SC reader %s: %s", reader, exc)
            continue
        if serial is not None:
            found.append(FoundKey(serial, "pcsc", opener, f"PC/SC reader {reader}"))
    return found


def discover() -> list[FoundKey]:
    """Every YubiKey that answers now, once per serial (OTP HID preferred)."""
    keys: dict[int, FoundKey] = {}
    for key in _hid_keys() + _pcsc_keys():
        keys.setdefault(key.serial, key)
    return list(keys.values())


def _errors(key: FoundKey, slot_no: int, wait: TouchWait | None, exc: Exception,
            code: ExitCode) -> CapitError:
    from yubikit.core import TimeoutError as YkTimeoutError
    from yubikit.core.otp import CommandRejectedError
    from yubikit.core.smartcard import ApduError

    if isinstance(exc, CapitError):
        return exc
    if isinstance(exc, YkTimeoutError) and wait is not None:
        return wait.timed_out(key.name)
    if isinstance(exc, CommandRejectedError):
        return not_programmed(key, slot_no, code)
    if isinstance(exc, ApduError) and exc.sw == 0x6985:
        return CapitError(
            f"{key.name} slot {slot_no} needs a touch, which capit cannot ask for over "
            f"{key.where}; let capit use its OTP HID interface (on Linux: a udev rule, e.g. "
            "from libyubikey-udev)", code)
    return gone(key.name, exc, code)


def not_programmed(key: FoundKey, slot_no: int, code: ExitCode) -> CapitError:
    return CapitError(
        f"{key.name} slot {slot_no} is not programmed for HMAC-SHA1 challenge-response; "
        f"program it with: capit vault enroll yubikey --slot {slot_no} --program", code)


def challenge_response(key: FoundKey, slot_no: int, challenge: bytes, *,
                       code: ExitCode) -> tuple[bytes, bool]:
    """The slot's HMAC-SHA1 of ``challenge`` and whether the key asked for a touch."""
    from yubikit.yubiotp import SLOT, YubiOtpSession

    with TouchWait(TOUCH_PROMPT) as wait:
        try:
            with key.open() as conn:
                session = YubiOtpSession(conn)
                if not session.get_config_state().is_configured(SLOT(slot_no)):
                    raise not_programmed(key, slot_no, code)
                response = session.calculate_hmac_sha1(
                    SLOT(slot_no), challenge, event=wait.event,
                    on_keepalive=wait.on_keepalive)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to one line
            raise _errors(key, slot_no, wait, exc, code) from None
    if len(response) != RESPONSE_BYTES:
        raise CapitError(f"{key.name} gave an answer of the wrong length", code)
    return bytes(response), wait.prompted


def program(key: FoundKey, slot_no: int, touch: bool) -> None:
    """Write a fresh random HMAC-SHA1 secret into the slot (overwrites it for good)."""
    from yubikit.yubiotp import SLOT, HmacSha1SlotConfiguration, YubiOtpSession

    config = HmacSha1SlotConfiguration(secrets.token_bytes(SECRET_BYTES)).require_touch(touch)
    try:
        with key.open() as conn:
            YubiOtpSession(conn).put_configuration(SLOT(slot_no), config)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - mapped to one line
        from yubikit.core.otp import CommandRejectedError

        if isinstance(exc, CommandRejectedError) or "Not updated" in str(exc):
            raise CapitError(
                f"{key.name} refused to program slot {slot_no} (is it protected by an access "
                "code?); nothing was changed", ExitCode.USAGE) from None
        raise gone(key.name, exc, ExitCode.NOT_FOUND) from None


def choose(serial: int | None) -> FoundKey:
    """The one YubiKey to enroll: by serial, or the only one plugged in."""
    require()
    keys = discover()
    if serial is not None:
        for key in keys:
            if key.serial == serial:
                return key
        seen = ", ".join(str(k.serial) for k in keys) or "none"
        raise CapitError(f"no YubiKey with serial {serial} is plugged in (found: {seen})",
                         ExitCode.NOT_FOUND)
    if not keys:
        raise CapitError(NONE_FOUND, ExitCode.NOT_FOUND)
    if len(keys) > 1:
        serials = ", ".join(str(k.serial) for k in keys)
        raise CapitError(f"several YubiKeys are plugged in ({serials}); choose one with "
                         "--serial", ExitCode.USAGE)
    return keys[0]


def enroll(key: FoundKey, slot_no: int, *, programmed_touch: bool | None = None
           ) -> tuple[dict[str, Any], bytes]:
    """Slot fields and ikm for a YubiKey whose slot holds an HMAC-SHA1 secret."""
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    response, touched = challenge_response(key, slot_no, challenge, code=ExitCode.NOT_FOUND)
    touch = touched if programmed_touch is None else (programmed_touch or touched)
    fields = {"serial": key.serial, "slot": slot_no, "challenge": b64e(challenge),
              "touch": touch}
    return fields, response


class YubiKeySlot(TokenSlotType):
    type = TYPE
    title = "YubiKey HMAC-SHA1"

    def validate(self, slot: dict[str, Any]) -> None:
        sid = slot["id"]
        if _fields(slot) != {"serial", "slot", "challenge", "touch"}:
            raise VaultDamaged(f"yubikey slot {sid} has missing or unexpected fields")
        serial, otp_slot = slot["serial"], slot["slot"]
        if not isinstance(serial, int) or isinstance(serial, bool) or \
                not 0 <= serial <= 0xFFFFFFFF:
            raise VaultDamaged(f"yubikey slot {sid} has an invalid serial")
        if not isinstance(otp_slot, int) or isinstance(otp_slot, bool) or otp_slot not in (1, 2):
            raise VaultDamaged(f"yubikey slot {sid}: the OTP slot must be 1 or 2")
        # 1..63 bytes: a 64-byte challenge would be cut short by the key (HMAC_LT64)
        b64d(slot["challenge"], f"slot {sid} challenge", min_size=1, max_size=63)
        if not isinstance(slot["touch"], bool):
            raise VaultDamaged(f"yubikey slot {sid} has an invalid touch flag")

    def describe(self, slot: dict[str, Any]) -> str:
        touch = ", touch" if slot["touch"] else ""
        return f"YubiKey {slot['serial']}, OTP slot {slot['slot']}{touch}"

    def token_name(self, slot: dict[str, Any]) -> str:
        return f"YubiKey {slot['serial']}"

    def unavailable(self) -> str | None:
        return None if available() else INSTALL_HINT

    def locate(self, slots: list[dict[str, Any]]) -> tuple[list[TokenHandle], list[str]]:
        keys = {k.serial: k for k in discover()}
        found = [TokenHandle(s, keys[s["serial"]], self.token_name(s))
                 for s in slots if s["serial"] in keys]
        wanted = {s["serial"] for s in slots}
        others = [k.name for serial, k in keys.items() if serial not in wanted]
        return found, others

    def ikm_from_token(self, handle: TokenHandle) -> bytes:
        slot = handle.slot
        challenge = b64d(slot["challenge"], f"slot {slot['id']} challenge")
        response, _ = challenge_response(handle.device, slot["slot"], challenge,
                                         code=ExitCode.UNLOCK)
        return response

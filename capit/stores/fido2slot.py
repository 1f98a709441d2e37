"""The ``fido2`` slot: a FIDO2 security key's hmac-secret output (python-fido2).

Enrollment makes a non-resident credential with the hmac-secret extension under the fixed
relying-party id ``capit`` (touch 1), then derives once (touch 2).  Stored per slot: the
``rp_id``, the ``credential_id``, a 32-byte random ``salt`` and ``uv`` -- whether the PIN
(user verification) was used.  The authenticator keeps two secrets per credential, one
with and one without UV, so ``uv`` is replayed exactly.  ``ikm`` is the 32-byte
hmac-secret output HMAC-SHA256(CredRandom, salt).

Devices are found through python-fido2's normal discovery: USB HID (``fido2.hid``) and,
where pyscard is importable, PC/SC readers (``fido2.pcsc.CtapPcscDevice``: NFC).  Which
device holds a slot is found silently: a getAssertion with ``up=false`` and the slot's
credential id, which needs no touch and no PIN.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

from capit.errors import CapitError, ExitCode
from capit.stores.hwtoken import TouchWait, gone
from capit.stores.slots import TokenHandle, TokenSlotType, _fields
from capit.stores.vaultfile import VaultDamaged, b64d, b64e

log = logging.getLogger("capit.fido2")

TYPE = "fido2"
RP_ID = "capit"
SALT_BYTES = 32
OUTPUT_BYTES = 32
MAX_CREDENTIAL_ID = 1024
INSTALL_HINT = "FIDO2 support is not installed: pip install 'capit[fido2]'"
NONE_FOUND = ("no FIDO2 security key found (plug one in; on Linux, opening it needs a udev "
              "rule, e.g. from the libfido2 or libu2f-udev package)")
TOUCH_PROMPT = "Touch your security key..."


def available() -> bool:
    try:
        import fido2.ctap2  # noqa: F401
        import fido2.hid  # noqa: F401
    except ImportError:
        return False
    return True


def require() -> None:
    if not available():
        raise CapitError(INSTALL_HINT, ExitCode.USAGE)


def discover() -> list[Any]:
    """Every CTAP2 device that answers now: USB HID, then PC/SC readers."""
    import fido2.hid

    devices: list[Any] = []
    try:
        descriptors = list(fido2.hid.list_descriptors())
    except Exception as exc:  # noqa: BLE001 - an unsupported platform or a broken hidraw
        log.info("FIDO HID discovery failed: %s", exc)
        descriptors = []
    for desc in descriptors:
        try:
            devices.append(fido2.hid.CtapHidDevice(desc, fido2.hid.open_connection(desc)))
        except Exception as exc:  # noqa: BLE001 - no permission, or it went away
            log.info("cannot open FIDO HID %s: %s", getattr(desc, "path", "?"), exc)
    try:
        from fido2.pcsc import CtapPcscDevice
    except ImportError:  # pyscard missing: USB HID only
        return devices
    try:
        devices.extend(CtapPcscDevice.list_devices())
    except Exception as exc:  # noqa: BLE001 - no pcscd running, no readers
        log.info("no PC/SC FIDO devices: %s", exc)
    return devices


def _ctap(device: Any) -> Any:
    from fido2.ctap2 import Ctap2

    return Ctap2(device)


def _protocol(ctap: Any) -> Any:
    from fido2.ctap2.pin import PinProtocolV1, PinProtocolV2

    return PinProtocolV2() if 2 in ctap.info.pin_uv_protocols else PinProtocolV1()


def _holds(ctap: Any, rp_id: str, credential_id: bytes) -> bool:
    """Silent pre-flight: does this authenticator hold the credential? (up=false)"""
    from fido2.ctap import CtapError

    try:
        ctap.get_assertion(rp_id, os.urandom(32),
                           [{"type": "public-key", "id": credential_id}],
                           options={"up": False})
        return True
    except CtapError as exc:
        if exc.code != CtapError.ERR.NO_CREDENTIALS:
            log.info("pre-flight on %s: %s", ctap.device, exc)
        return False


def _pin_errors(ctap: Any, proto: Any, exc: Any, code: ExitCode) -> CapitError:
    from fido2.ctap import CtapError
    from fido2.ctap2.pin import ClientPin

    err = CtapError.ERR
    if exc.code == err.PIN_INVALID:
        try:
            retries, _ = ClientPin(ctap, proto).get_pin_retries()
            left = f"{retries} {'try' if retries == 1 else 'tries'} left"
        except Exception:  # noqa: BLE001
            left = "tries left unknown"
        return CapitError(f"wrong PIN for the security key ({left}); nothing was changed",
                          ExitCode.UNLOCK)
    if exc.code == err.PIN_BLOCKED:
        return CapitError("the security key's PIN is blocked after too many wrong PINs; only "
                          "a reset (which destroys its credentials) unblocks it -- open the "
                          "vault with another slot, e.g. the recovery key", ExitCode.UNLOCK)
    if exc.code == err.PIN_AUTH_BLOCKED:
        return CapitError("three wrong PINs in a row: unplug the security key and plug it in "
                          "again before the next try; nothing was changed", ExitCode.UNLOCK)
    if exc.code in (err.PIN_NOT_SET,):
        return CapitError("the security key has no PIN set", code)
    return CapitError(f"the security key refused the PIN ({exc.code.name})", ExitCode.UNLOCK)


def _pin_token(ctap: Any, proto: Any, rp_id: str, permissions: int, code: ExitCode) -> bytes:
    from fido2.ctap import CtapError
    from fido2.ctap2.pin import ClientPin

    from capit.secretinput import read_pin

    pin = read_pin("PIN of the security key")
    try:
        return ClientPin(ctap, proto).get_pin_token(
            pin.reveal(), ClientPin.PERMISSION(permissions), rp_id)
    except CtapError as exc:
        raise _pin_errors(ctap, proto, exc, code) from None


def _ctap_errors(what: str, wait: TouchWait, exc: Exception, code: ExitCode) -> CapitError:
    from fido2.ctap import CtapError

    if isinstance(exc, CapitError):
        return exc
    if isinstance(exc, CtapError):
        err = CtapError.ERR
        if exc.code in (err.KEEPALIVE_CANCEL, err.USER_ACTION_TIMEOUT, err.ACTION_TIMEOUT):
            return wait.timed_out(what)
        if exc.code == err.NO_CREDENTIALS:
            return CapitError(f"{what} does not hold this slot's credential (was it reset?)",
                              code)
        if exc.code in (err.PIN_REQUIRED, err.PUAT_REQUIRED):
            return CapitError(f"{what} wants its PIN for this; enroll it with --pin", code)
        if exc.code in (err.PIN_INVALID, err.PIN_BLOCKED, err.PIN_AUTH_BLOCKED):
            return CapitError(f"{what} refused: {exc.code.name}", ExitCode.UNLOCK)
        name = exc.code.name if hasattr(exc.code, "name") else hex(int(exc.code))
        return CapitError(f"{what} refused the request ({name}); nothing was changed", code)
    return gone(what, exc, code)


def hmac_secret(device: Any, rp_id: str, credential_id: bytes, salt: bytes, uv: bool, *,
                code: ExitCode, ctap: Any = None, token: bytes | None = None,
                proto: Any = None, what: str = "the security key") -> bytes:
    """One getAssertion with hmac-secret (one touch; the PIN first when ``uv``)."""
    from fido2.ctap2.extensions import HmacSecretExtension
    from fido2.ctap2.pin import ClientPin
    from fido2.webauthn import PublicKeyCredentialDescriptor, PublicKeyCredentialRequestOptions

    try:
        ctap = ctap or _ctap(device)
        proto = proto or _protocol(ctap)
        if uv and token is None:
            if ctap.info.options.get("clientPin") is not True:
                raise CapitError(f"{what} has no PIN set, but this slot was enrolled with "
                                 "one (was the key reset?)", code)
            token = _pin_token(ctap, proto, rp_id, ClientPin.PERMISSION.GET_ASSERTION, code)
        descriptor = PublicKeyCredentialDescriptor(type="public-key", id=credential_id)
        options = PublicKeyCredentialRequestOptions(
            challenge=os.urandom(32), rp_id=rp_id, allow_credentials=[descriptor],
            extensions={"hmacGetSecret": {"salt1": salt}})
        ext = HmacSecretExtension(allow_hmac_secret=True).get_assertion(ctap, options, proto)
        if ext is None:
            raise CapitError(f"{what} does not support hmac-secret", code)
        client_data_hash = os.urandom(32)
        with TouchWait(TOUCH_PROMPT) as wait:
            try:
                response = ctap.get_assertion(
                    rp_id, client_data_hash, [{"type": "public-key", "id": credential_id}],
                    ext.prepare_inputs(descriptor, token), None,
                    proto.authenticate(token, client_data_hash) if token else None,
                    proto.VERSION if token else None,
                    event=wait.event, on_keepalive=wait.on_keepalive)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to one line
                raise _ctap_errors(what, wait, exc, code) from None
        outputs = ext.prepare_outputs(response, token) or {}
    except (CapitError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - I/O errors of a device that went away
        raise gone(what, exc, code) from None
    result = outputs.get("hmacGetSecret")
    output = getattr(result, "output1", None)
    if not output or len(output) != OUTPUT_BYTES:
        raise CapitError(f"{what} gave no hmac-secret output", code)
    return bytes(output)


def choose(enrolled: list[dict[str, Any]] | None = None) -> Any:
    """The one FIDO2 security key to enroll: the only one plugged in, or the only one that
    holds none of the ``enrolled`` slots' credentials (checked silently)."""
    require()
    devices = discover()
    if not devices:
        raise CapitError(NONE_FOUND, ExitCode.NOT_FOUND)
    if len(devices) > 1 and enrolled:
        fresh = []
        for dev in devices:
            try:
                ctap = _ctap(dev)
                held = any(_holds(ctap, s["rp_id"], b64d(s["credential_id"], "credential_id"))
                           for s in enrolled)
            except Exception:  # noqa: BLE001 - not a usable CTAP2 device
                held = True
            if held:
                _close(dev)
            else:
                fresh.append(dev)
        devices = fresh
        if not devices:
            raise CapitError("every FIDO2 security key plugged in is already enrolled in this "
                             "vault", ExitCode.USAGE)
    if len(devices) > 1:
        for dev in devices:
            _close(dev)
        raise CapitError(f"{len(devices)} FIDO2 security keys are plugged in; leave only the "
                         "one to enroll plugged in", ExitCode.USAGE)
    return devices[0]


def _close(device: Any) -> None:
    try:
        device.close()
    except Exception:  # noqa: BLE001,S110
        pass


def enroll(device: Any, use_pin: bool | None) -> tuple[dict[str, Any], bytes]:
    """Make the credential (touch 1) and derive once (touch 2): slot fields and ikm."""
    from fido2.ctap import CtapError
    from fido2.ctap2.pin import ClientPin

    code = ExitCode.NOT_FOUND
    what = "the security key"
    try:
        ctap = _ctap(device)
        info = ctap.info
        if "hmac-secret" not in (info.extensions or []):
            raise CapitError("this security key does not support the hmac-secret extension, "
                             "which capit needs", ExitCode.USAGE)
        has_pin = info.options.get("clientPin") is True
        uv = has_pin if use_pin is None else use_pin
        if uv and not has_pin:
            raise CapitError("the security key has no PIN; set one (e.g. ykman fido access "
                             "change-pin) or enroll with --no-pin", ExitCode.USAGE)
        proto = _protocol(ctap)
        token = None
        needs_pin_to_register = has_pin and info.options.get("makeCredUvNotRqd") is not True
        if uv or needs_pin_to_register:
            perms = ClientPin.PERMISSION.MAKE_CREDENTIAL | ClientPin.PERMISSION.GET_ASSERTION
            token = _pin_token(ctap, proto, RP_ID, perms, code)
        client_data_hash = os.urandom(32)
        with TouchWait(TOUCH_PROMPT + " (1 of 2: create the credential)") as wait:
            try:
                attestation = ctap.make_credential(
                    client_data_hash, {"id": RP_ID, "name": "capit"},
                    {"id": secrets.token_bytes(16), "name": "capit vault",
                     "displayName": "capit vault"},
                    [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -8}],
                    extensions={"hmac-secret": True},
                    pin_uv_param=proto.authenticate(token, client_data_hash) if token else None,
                    pin_uv_protocol=proto.VERSION if token else None,
                    event=wait.event, on_keepalive=wait.on_keepalive)
            except KeyboardInterrupt:
                raise
            except CtapError as exc:
                raise _ctap_errors(what, wait, exc, code) from None
        auth_data = attestation.auth_data
        if (auth_data.extensions or {}).get("hmac-secret") is not True:
            raise CapitError("the security key did not enable hmac-secret for the new "
                             "credential; nothing was changed", ExitCode.USAGE)
        credential_id = bytes(auth_data.credential_data.credential_id)
    except (CapitError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001
        raise gone(what, exc, code) from None
    if not 1 <= len(credential_id) <= MAX_CREDENTIAL_ID:
        raise CapitError("the security key made a credential id capit cannot store",
                         ExitCode.USAGE)
    salt = secrets.token_bytes(SALT_BYTES)
    ikm = hmac_secret(device, RP_ID, credential_id, salt, uv, code=code, ctap=ctap,
                      token=token if uv else None, proto=proto)
    fields = {"rp_id": RP_ID, "credential_id": b64e(credential_id), "salt": b64e(salt),
              "uv": uv}
    return fields, ikm


class Fido2Slot(TokenSlotType):
    type = TYPE
    title = "FIDO2 hmac-secret"

    def validate(self, slot: dict[str, Any]) -> None:
        sid = slot["id"]
        if _fields(slot) != {"rp_id", "credential_id", "salt", "uv"}:
            raise VaultDamaged(f"fido2 slot {sid} has missing or unexpected fields")
        rp_id = slot["rp_id"]
        if not isinstance(rp_id, str) or not 1 <= len(rp_id) <= 253 or \
                not rp_id.isprintable() or not rp_id.isascii():
            raise VaultDamaged(f"fido2 slot {sid} has an invalid relying-party id")
        b64d(slot["credential_id"], f"slot {sid} credential_id", min_size=1,
             max_size=MAX_CREDENTIAL_ID)
        b64d(slot["salt"], f"slot {sid} salt", size=SALT_BYTES)
        if not isinstance(slot["uv"], bool):
            raise VaultDamaged(f"fido2 slot {sid} has an invalid uv flag")

    def _credential(self, slot: dict[str, Any]) -> bytes:
        return b64d(slot["credential_id"], f"slot {slot['id']} credential_id")

    def describe(self, slot: dict[str, Any]) -> str:
        cred = self._credential(slot).hex()
        pin = ", PIN" if slot["uv"] else ""
        return f"security key, credential {cred[:16]}..{cred[-4:]}{pin}"

    def token_name(self, slot: dict[str, Any]) -> str:
        label = slot["label"] if slot["label"].isprintable() else repr(slot["label"])
        return f"security key {label!r} (slot {slot['id']})"

    def unavailable(self) -> str | None:
        return None if available() else INSTALL_HINT

    def locate(self, slots: list[dict[str, Any]]) -> tuple[list[TokenHandle], list[str]]:
        found: list[TokenHandle] = []
        others: list[str] = []
        for device in discover():
            try:
                ctap = _ctap(device)
            except Exception as exc:  # noqa: BLE001 - CTAP1-only or broken: not ours
                log.info("not a CTAP2 device %s: %s", device, exc)
                _close(device)
                continue
            try:
                mine = [s for s in slots if _holds(ctap, s["rp_id"], self._credential(s))]
            except Exception as exc:  # noqa: BLE001 - it went away during the pre-flight
                log.info("pre-flight failed on %s: %s", device, exc)
                mine = []
            if mine:
                found.extend(TokenHandle(s, (device, ctap), self.token_name(s),
                                         closer=lambda d=device: _close(d)) for s in mine)
            else:
                others.append("a security key")
                _close(device)
        order = {s["id"]: i for i, s in enumerate(slots)}
        found.sort(key=lambda h: order[h.slot["id"]])
        return found, others

    def ikm_from_token(self, handle: TokenHandle) -> bytes:
        slot = handle.slot
        device, ctap = handle.device
        return hmac_secret(device, slot["rp_id"], self._credential(slot),
                           b64d(slot["salt"], f"slot {slot['id']} salt"), slot["uv"],
                           code=ExitCode.UNLOCK, ctap=ctap, what=handle.name)

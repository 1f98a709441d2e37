"""An emulated CTAP2 authenticator with hmac-secret, written for capit's tests.

``SoftAuthenticator`` implements, from the CTAP 2.1 specification: authenticatorGetInfo,
authenticatorMakeCredential and authenticatorGetAssertion (non-resident credentials, user
presence by a "touch", the silent ``up=false`` pre-flight, the hmac-secret extension with
separate secrets for requests with and without user verification), and authenticatorClientPIN
(getRetries, getKeyAgreement, getPinToken, getPinUvAuthTokenUsingPinWithPermissions) with
PIN/UV auth protocols 1 and 2.  A non-resident credential id is
``nonce || AES-GCM(master, private key || CredRandomWithUV || CredRandomWithoutUV,
aad = rpIdHash)``: stateless, like a real key.

Requests are processed by a generator that yields a keepalive status while it waits for a
touch, so the transports can report "user presence needed" and honour a cancel:

* ``SoftHidConnection`` is a ``fido2.hid.base.CtapHidConnection`` (64-byte CTAPHID packets:
  INIT, CBOR, PING, CANCEL, KEEPALIVE, ERROR) for the real ``fido2.hid.CtapHidDevice``;
* ``NfcCtap`` answers the FIDO applet's NFCCTAP_MSG / NFCCTAP_GETRESPONSE APDUs for a PC/SC
  reader (``tests/emulators/card.py``) under the real ``fido2.pcsc.CtapPcscDevice``.

Only fido2's CBOR codec is borrowed (CTAP requires canonical CBOR); the protocol and the
cryptography are written here.  Knobs: ``touch_after_polls`` (None: never touched),
``give_up_after_polls``, ``unplug_after_polls``, ``interrupt_after_polls``, ``pin``;
counters: ``touches``, ``commands``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
from collections.abc import Generator

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fido2 import cbor
from fido2.hid.base import CtapHidConnection

AAGUID = bytes.fromhex("cabe0000c0de4ca9b1e5ca9170000001")

OK = 0x00
ERR_INVALID_COMMAND = 0x01
ERR_INVALID_PARAMETER = 0x02
ERR_INVALID_CBOR = 0x12
ERR_MISSING_PARAMETER = 0x14
ERR_UNSUPPORTED_ALGORITHM = 0x26
ERR_INVALID_OPTION = 0x2C
ERR_KEEPALIVE_CANCEL = 0x2D
ERR_NO_CREDENTIALS = 0x2E
ERR_USER_ACTION_TIMEOUT = 0x2F
ERR_PIN_INVALID = 0x31
ERR_PIN_BLOCKED = 0x32
ERR_PIN_AUTH_INVALID = 0x33
ERR_PIN_AUTH_BLOCKED = 0x34
ERR_PIN_NOT_SET = 0x35
ERR_PIN_REQUIRED = 0x36
ERR_UNAUTHORIZED_PERMISSION = 0x40

STATUS_PROCESSING = 1
STATUS_UPNEEDED = 2

FLAG_UP, FLAG_UV, FLAG_AT, FLAG_ED = 0x01, 0x04, 0x40, 0x80
PERM_MC, PERM_GA = 0x01, 0x02


class Cancelled(Exception):
    pass


class Unplugged(OSError):
    def __init__(self) -> None:
        super().__init__(19, "No such device")


class CtapFail(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(hex(code))
        self.code = code


# ------------------------------------------------------------------ PIN/UV auth protocols


def _ecdh_x(private: ec.EllipticCurvePrivateKey, cose: dict) -> bytes:
    if cose.get(1) != 2 or cose.get(-1) != 1:
        raise CtapFail(ERR_INVALID_PARAMETER)
    x, y = cose[-2], cose[-3]
    peer = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                         ec.SECP256R1()).public_key()
    return private.exchange(ec.ECDH(), peer)


def _aes_cbc(key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


class Protocol1:
    version = 1

    def kdf(self, z: bytes) -> bytes:
        return hashlib.sha256(z).digest()

    def encrypt(self, key: bytes, data: bytes) -> bytes:
        return _aes_cbc(key, b"\0" * 16, data, True)

    def decrypt(self, key: bytes, data: bytes) -> bytes:
        return _aes_cbc(key, b"\0" * 16, data, False)

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, hashlib.sha256).digest()[:16]


class Protocol2:
    version = 2

    def kdf(self, z: bytes) -> bytes:
        def hkdf(info: bytes) -> bytes:
            return HKDF(hashes.SHA256(), 32, b"\0" * 32, info).derive(z)
        return hkdf(b"CTAP2 HMAC key") + hkdf(b"CTAP2 AES key")

    def encrypt(self, key: bytes, data: bytes) -> bytes:
        iv = os.urandom(16)
        return iv + _aes_cbc(key[32:], iv, data, True)

    def decrypt(self, key: bytes, data: bytes) -> bytes:
        return _aes_cbc(key[32:], data[:16], data[16:], False)

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key[:32], message, hashlib.sha256).digest()


PROTOCOLS = {1: Protocol1(), 2: Protocol2()}


def _cose_p256(public: ec.EllipticCurvePublicKey, alg: int) -> dict:
    numbers = public.public_numbers()
    return {1: 2, 3: alg, -1: 1, -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big")}


# ------------------------------------------------------------------ the authenticator


class SoftAuthenticator:
    def __init__(self, pin: str | None = None, protocols: tuple[int, ...] = (2, 1),
                 aaguid: bytes = AAGUID) -> None:
        self.master = AESGCM.generate_key(256)
        self.aaguid = aaguid
        self.protocols = protocols
        self.pin_hash = hashlib.sha256(pin.encode()).digest()[:16] if pin else None
        self.retries = 8
        self.consecutive_failures = 0
        self.sign_count = 0
        self.token: bytes | None = None
        self.token_permissions = 0
        self.token_rp: str | None = None
        self._new_key_agreement()
        self.touch_after_polls: int | None = 1
        self.give_up_after_polls = 300
        self.unplug_after_polls: int | None = None
        self.interrupt_after_polls: int | None = None
        self.plugged = True
        self.touches = 0
        self.commands: list[int] = []

    def _new_key_agreement(self) -> None:
        self.key_agreement = ec.generate_private_key(ec.SECP256R1())

    # ---------------------------------------------------------------- entry point

    def process(self, request: bytes) -> Generator[int, None, bytes]:
        """A CTAP2 request (command byte + CBOR) -> status byte + CBOR; yields keepalive
        statuses while it waits for a touch; throw Cancelled into it to cancel."""
        if not request:
            return bytes([ERR_INVALID_COMMAND])
        cmd, body = request[0], request[1:]
        self.commands.append(cmd)
        try:
            params = cbor.decode(body) if body else {}
        except Exception:  # noqa: BLE001
            return bytes([ERR_INVALID_CBOR])
        handler = {0x01: self._make_credential, 0x02: self._get_assertion,
                   0x04: self._get_info, 0x06: self._client_pin}.get(cmd)
        if handler is None:
            return bytes([ERR_INVALID_COMMAND])
        try:
            result = yield from handler(params)
        except CtapFail as fail:
            return bytes([fail.code])
        except Cancelled:
            return bytes([ERR_KEEPALIVE_CANCEL])
        return bytes([OK]) + (cbor.encode(result) if result is not None else b"")

    def _user_presence(self) -> Generator[int, None, None]:
        polls = 0
        while True:
            if self.touch_after_polls is not None and polls >= self.touch_after_polls:
                self.touches += 1
                return
            if polls >= self.give_up_after_polls:
                raise CtapFail(ERR_USER_ACTION_TIMEOUT)
            polls += 1
            if self.unplug_after_polls is not None and polls >= self.unplug_after_polls:
                self.plugged = False
                raise Unplugged()
            if self.interrupt_after_polls is not None and polls >= self.interrupt_after_polls:
                raise KeyboardInterrupt
            yield STATUS_UPNEEDED

    # ---------------------------------------------------------------- getInfo

    def info(self) -> dict:
        options = {"rk": False, "up": True, "plat": False,
                   "clientPin": self.pin_hash is not None, "pinUvAuthToken": True,
                   "makeCredUvNotRqd": True}
        return {1: ["FIDO_2_0", "FIDO_2_1"], 2: ["hmac-secret"], 3: self.aaguid,
                4: options, 5: 1200, 6: list(self.protocols), 7: 8, 8: 128}

    def _get_info(self, params: dict) -> Generator[int, None, dict]:
        return self.info()
        yield  # pragma: no cover - a generator

    # ---------------------------------------------------------------- PIN

    def _shared(self, params: dict, key: int = 3) -> tuple[object, bytes]:
        proto = PROTOCOLS.get(params.get(1, 1))
        if proto is None or proto.version not in self.protocols:
            raise CtapFail(ERR_INVALID_PARAMETER)
        if key not in params:
            raise CtapFail(ERR_MISSING_PARAMETER)
        return proto, proto.kdf(_ecdh_x(self.key_agreement, params[key]))

    def _client_pin(self, params: dict) -> Generator[int, None, dict | None]:
        sub = params.get(2)
        if sub == 0x01:
            return {3: self.retries, 4: False}
        if sub == 0x02:
            return {1: _cose_p256(self.key_agreement.public_key(), -25)}
        if sub in (0x05, 0x09):
            if self.pin_hash is None:
                raise CtapFail(ERR_PIN_NOT_SET)
            if self.retries == 0:
                raise CtapFail(ERR_PIN_BLOCKED)
            if self.consecutive_failures >= 3:
                raise CtapFail(ERR_PIN_AUTH_BLOCKED)
            proto, shared = self._shared(params)
            if 6 not in params:
                raise CtapFail(ERR_MISSING_PARAMETER)
            pin_hash = proto.decrypt(shared, params[6])
            if not hmac.compare_digest(pin_hash, self.pin_hash):
                self.retries -= 1
                self.consecutive_failures += 1
                self._new_key_agreement()
                if self.retries == 0:
                    raise CtapFail(ERR_PIN_BLOCKED)
                if self.consecutive_failures >= 3:
                    raise CtapFail(ERR_PIN_AUTH_BLOCKED)
                raise CtapFail(ERR_PIN_INVALID)
            self.retries, self.consecutive_failures = 8, 0
            self.token = os.urandom(32)
            if sub == 0x09:
                self.token_permissions = params.get(9, 0)
                if not self.token_permissions:
                    raise CtapFail(ERR_INVALID_PARAMETER)
                self.token_rp = params.get(0x0A)
            else:
                self.token_permissions, self.token_rp = PERM_MC | PERM_GA, None
            return {2: proto.encrypt(shared, self.token)}
        raise CtapFail(ERR_INVALID_PARAMETER)
        yield  # pragma: no cover - a generator

    def _verify_uv(self, params: dict, cdh: bytes, rp_id: str, permission: int,
                   auth_key: int, proto_key: int) -> bool:
        """Check pinUvAuthParam: True when the request carries valid user verification."""
        param = params.get(auth_key)
        if param is None:
            return False
        proto = PROTOCOLS.get(params.get(proto_key, 0))
        if proto is None or self.token is None:
            raise CtapFail(ERR_PIN_AUTH_INVALID)
        if not hmac.compare_digest(proto.authenticate(self.token, cdh), param):
            raise CtapFail(ERR_PIN_AUTH_INVALID)
        if not self.token_permissions & permission or \
                (self.token_rp is not None and self.token_rp != rp_id):
            raise CtapFail(ERR_UNAUTHORIZED_PERMISSION)
        return True

    # ---------------------------------------------------------------- credentials

    def _seal_credential(self, rp_id_hash: bytes, private: ec.EllipticCurvePrivateKey,
                         rand_uv: bytes, rand_no_uv: bytes) -> bytes:
        d = private.private_numbers().private_value.to_bytes(32, "big")
        nonce = os.urandom(12)
        return nonce + AESGCM(self.master).encrypt(nonce, d + rand_uv + rand_no_uv, rp_id_hash)

    def _open_credential(self, rp_id_hash: bytes, cred_id: bytes
                         ) -> tuple[ec.EllipticCurvePrivateKey, bytes, bytes] | None:
        if len(cred_id) < 12 + 16:
            return None
        try:
            plain = AESGCM(self.master).decrypt(cred_id[:12], cred_id[12:], rp_id_hash)
        except Exception:  # noqa: BLE001 - not ours, or another relying party
            return None
        private = ec.derive_private_key(int.from_bytes(plain[:32], "big"), ec.SECP256R1())
        return private, plain[32:64], plain[64:96]

    def _auth_data(self, rp_id_hash: bytes, flags: int, attested: bytes = b"",
                   extensions: dict | None = None) -> bytes:
        self.sign_count += 1
        if attested:
            flags |= FLAG_AT
        ext = b""
        if extensions:
            flags |= FLAG_ED
            ext = cbor.encode(extensions)
        return rp_id_hash + bytes([flags]) + struct.pack(">I", self.sign_count) + attested + ext

    def _make_credential(self, params: dict) -> Generator[int, None, dict]:
        for key in (1, 2, 3, 4):
            if key not in params:
                raise CtapFail(ERR_MISSING_PARAMETER)
        cdh, rp, _user, algs = params[1], params[2], params[3], params[4]
        rp_id = rp["id"]
        if not any(p.get("alg") == -7 for p in algs):
            raise CtapFail(ERR_UNSUPPORTED_ALGORITHM)
        options = params.get(7) or {}
        if options.get("rk") or options.get("uv"):
            raise CtapFail(ERR_INVALID_OPTION)
        uv = self._verify_uv(params, cdh, rp_id, PERM_MC, 8, 9)
        rp_id_hash = hashlib.sha256(rp_id.encode()).digest()
        for excluded in params.get(5) or []:
            if self._open_credential(rp_id_hash, excluded["id"]) is not None:
                yield from self._user_presence()
                raise CtapFail(0x19)  # CREDENTIAL_EXCLUDED
        yield from self._user_presence()
        private = ec.generate_private_key(ec.SECP256R1())
        cred_id = self._seal_credential(rp_id_hash, private, os.urandom(32), os.urandom(32))
        attested = (self.aaguid + struct.pack(">H", len(cred_id)) + cred_id
                    + cbor.encode(_cose_p256(private.public_key(), -7)))
        extensions = None
        if (params.get(6) or {}).get("hmac-secret") is True:
            extensions = {"hmac-secret": True}
        flags = FLAG_UP | (FLAG_UV if uv else 0)
        auth_data = self._auth_data(rp_id_hash, flags, attested, extensions)
        return {1: "none", 2: auth_data, 3: {}}

    def _get_assertion(self, params: dict) -> Generator[int, None, dict]:
        if 1 not in params or 2 not in params:
            raise CtapFail(ERR_MISSING_PARAMETER)
        rp_id, cdh = params[1], params[2]
        rp_id_hash = hashlib.sha256(rp_id.encode()).digest()
        options = params.get(5) or {}
        if options.get("uv") or options.get("rk"):
            raise CtapFail(ERR_INVALID_OPTION)
        up = options.get("up", True)
        uv = self._verify_uv(params, cdh, rp_id, PERM_GA, 6, 7)
        chosen = None
        for descriptor in params.get(3) or []:
            opened = self._open_credential(rp_id_hash, descriptor["id"])
            if opened is not None:
                chosen = descriptor["id"], opened
                break
        if chosen is None:
            raise CtapFail(ERR_NO_CREDENTIALS)
        cred_id, (private, rand_uv, rand_no_uv) = chosen
        if up:
            yield from self._user_presence()
        extensions = None
        hmac_input = (params.get(4) or {}).get("hmac-secret")
        if hmac_input is not None and up:  # hmac-secret is not evaluated without presence
            extensions = {"hmac-secret": self._hmac_secret(hmac_input,
                                                           rand_uv if uv else rand_no_uv)}
        flags = (FLAG_UP if up else 0) | (FLAG_UV if uv else 0)
        auth_data = self._auth_data(rp_id_hash, flags, b"", extensions)
        signature = private.sign(auth_data + cdh, ec.ECDSA(hashes.SHA256()))
        if uv:
            self.token = None  # a token is good for one assertion here
        return {1: {"type": "public-key", "id": cred_id}, 2: auth_data, 3: signature}

    def _hmac_secret(self, inputs: dict, cred_random: bytes) -> bytes:
        proto_version = inputs.get(4, 1)
        proto, shared = self._shared({1: proto_version, 3: inputs.get(1)})
        salt_enc, salt_auth = inputs.get(2), inputs.get(3)
        if not hmac.compare_digest(proto.authenticate(shared, salt_enc), salt_auth):
            raise CtapFail(ERR_INVALID_PARAMETER)
        salts = proto.decrypt(shared, salt_enc)
        if len(salts) not in (32, 64):
            raise CtapFail(ERR_INVALID_PARAMETER)
        out = b"".join(hmac.new(cred_random, salts[i:i + 32], hashlib.sha256).digest()
                       for i in range(0, len(salts), 32))
        return proto.encrypt(shared, out)

    def expected_secret(self, rp_id: str, cred_id: bytes, salt: bytes, uv: bool) -> bytes:
        """HMAC-SHA256(CredRandom, salt), computed outside any protocol (for checks)."""
        opened = self._open_credential(hashlib.sha256(rp_id.encode()).digest(), cred_id)
        assert opened is not None
        return hmac.new(opened[1] if uv else opened[2], salt, hashlib.sha256).digest()


# ------------------------------------------------------------------ CTAPHID transport

TYPE_INIT = 0x80
HID_PING, HID_MSG, HID_INIT, HID_WINK, HID_CBOR, HID_CANCEL = 0x01, 0x03, 0x06, 0x08, 0x10, 0x11
HID_KEEPALIVE, HID_ERROR = 0x3B, 0x3F
BROADCAST = 0xFFFFFFFF
CAPABILITY_WINK, CAPABILITY_CBOR, CAPABILITY_NMSG = 0x01, 0x04, 0x08


class SoftHidConnection(CtapHidConnection):
    """A FIDO HID node of the emulated authenticator: 64-byte CTAPHID packets."""

    packet_size = 64

    def __init__(self, auth: SoftAuthenticator, poll_interval: float = 0.005) -> None:
        self.auth = auth
        self.poll_interval = poll_interval
        self.next_cid = 0x01020304
        self.out: list[bytes] = []
        self.request: tuple[int, int, int, bytearray] | None = None  # cid, cmd, len, data
        self.seq = 0
        self.job: tuple[int, Generator[int, None, bytes]] | None = None
        self.cancelled = False
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def _check(self) -> None:
        if not self.auth.plugged:
            raise Unplugged()

    def _queue(self, cid: int, cmd: int, data: bytes) -> None:
        header = struct.pack(">IBH", cid, TYPE_INIT | cmd, len(data))
        first, rest = data[:self.packet_size - 7], data[self.packet_size - 7:]
        self.out.append((header + first).ljust(self.packet_size, b"\0"))
        seq = 0
        while rest:
            chunk, rest = rest[:self.packet_size - 5], rest[self.packet_size - 5:]
            self.out.append((struct.pack(">IB", cid, seq) + chunk).ljust(self.packet_size,
                                                                          b"\0"))
            seq += 1

    def write_packet(self, data: bytes) -> None:
        self._check()
        cid = struct.unpack(">I", data[:4])[0]
        if data[4] & TYPE_INIT:
            cmd = data[4] & 0x7F
            if cmd == HID_CANCEL:
                if self.job is not None and self.job[0] == cid:
                    self.cancelled = True
                return
            length = struct.unpack(">H", data[5:7])[0]
            self.request = (cid, cmd, length, bytearray(data[7:7 + length]))
            self.seq = 0
        else:
            if self.request is None or data[4] != self.seq:
                return
            self.seq += 1
            cid0, cmd, length, buf = self.request
            buf += data[5:5 + length - len(buf)]
        cid, cmd, length, buf = self.request
        if len(buf) >= length:
            self.request = None
            self._dispatch(cid, cmd, bytes(buf[:length]))

    def _dispatch(self, cid: int, cmd: int, data: bytes) -> None:
        if cmd == HID_INIT:
            new_cid = self.next_cid
            self.next_cid += 1
            self._queue(cid, HID_INIT, data[:8] + struct.pack(
                ">IBBBBB", new_cid, 2, 1, 0, 0,
                CAPABILITY_WINK | CAPABILITY_CBOR | CAPABILITY_NMSG))
        elif cmd == HID_PING:
            self._queue(cid, HID_PING, data)
        elif cmd == HID_WINK:
            self._queue(cid, HID_WINK, b"")
        elif cmd == HID_CBOR:
            self.cancelled = False
            self.job = (cid, self.auth.process(data))
        else:
            self._queue(cid, HID_ERROR, bytes([ERR_INVALID_COMMAND]))

    def read_packet(self) -> bytes:
        self._check()
        if not self.out and self.job is not None:
            cid, gen = self.job
            try:
                if self.cancelled:
                    self.cancelled = False
                    gen.throw(Cancelled())
                status = next(gen)
                time.sleep(self.poll_interval)
                return struct.pack(">IBHB", cid, TYPE_INIT | HID_KEEPALIVE, 1,
                                   status).ljust(self.packet_size, b"\0")
            except StopIteration as done:
                self.job = None
                self._queue(cid, HID_CBOR, done.value)
        if not self.out:
            raise AssertionError("the host read a packet with no request pending")
        return self.out.pop(0)


# ------------------------------------------------------------------ NFC (ISO 7816) transport


class NfcCtap:
    """The FIDO applet's CTAP2-over-APDU commands (NFCCTAP_MSG 0x10, GETRESPONSE 0x11)."""

    def __init__(self, auth: SoftAuthenticator) -> None:
        self.auth = auth
        self.job: Generator[int, None, bytes] | None = None

    def _step(self, cancel: bool = False) -> tuple[bytes, int]:
        assert self.job is not None
        try:
            status = self.job.throw(Cancelled()) if cancel else next(self.job)
            return bytes([status]), 0x9100
        except StopIteration as done:
            self.job = None
            return done.value, 0x9000

    def apdu(self, cla: int, ins: int, p1: int, p2: int, data: bytes) -> tuple[bytes, int]:
        if not self.auth.plugged:
            raise Unplugged()
        if ins == 0x10 and cla & 0x80:
            self.job = self.auth.process(data)
            return self._step()
        if ins == 0x11 and cla & 0x80:
            if self.job is None:
                return b"", 0x6985
            return self._step(cancel=p1 == 0x11)
        return b"", 0x6D00

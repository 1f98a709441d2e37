"""An emulated contactless YubiKey 5 NFC as a smart card: the YubiOTP and FIDO2 applets.

``VirtualCard.transmit(apdu) -> response + SW`` parses ISO 7816-4 command APDUs (short and
extended lengths, command chaining with CLA bit 0x10, GET RESPONSE for answers longer than
256 bytes), routes SELECT by AID, and hands the rest to the selected applet:

* the YubiOTP applet (AID a0000005272001; ``tests/emulators/yubikey.py``): SELECT answers
  the status (version, programming sequence, touch level), INS 0x01 runs a slot command
  (HMAC-SHA1 challenge-response, the serial, configuration writes), INS 0x03 the status;
* the FIDO applet (AID a0000006472f0001; ``tests/emulators/ctap2.py``): SELECT answers
  "FIDO_2_0", NFCCTAP_MSG / NFCCTAP_GETRESPONSE carry CTAP2;
* a minimal management applet (AID a000000527471117): SELECT answers the firmware version
  and READ_CONFIG the device info (serial, version, capabilities), which is how yubikit's
  ``read_info`` identifies a YubiKey over NFC.

Other AIDs answer 6A82, as on a key with those applications turned off.  The ATR is an
NFC one, so yubikit treats the card as NFC (short APDUs, no touch wait: holding the key to
the reader is the presence).

``CardConnection`` puts a card under pyscard's real API (``smartcard.CardConnection``) for
in-process tests; ``tests/emulators/vpcd_card.py`` serves the same card to a real pcscd.
"""

from __future__ import annotations

import struct

from emulators import yubikey
from emulators.ctap2 import NfcCtap, SoftAuthenticator

AID_OTP = bytes.fromhex("a0000005272001")
AID_FIDO = bytes.fromhex("a0000006472f0001")
AID_MANAGEMENT = bytes.fromhex("a000000527471117")
CAP_OTP, CAP_U2F, CAP_FIDO2 = 0x01, 0x02, 0x200


def device_info(otp: yubikey.YubiOtpApplet, fido: bool) -> bytes:
    """The management applet's READ_CONFIG page 0: length + TLVs (serial, version,
    supported/enabled capabilities over USB and NFC, form factor)."""
    caps = (CAP_OTP if otp is not None else 0) | (CAP_U2F | CAP_FIDO2 if fido else 0)
    tlvs = b""
    for tag, value in ((0x01, caps.to_bytes(2, "big")), (0x02, otp.serial.to_bytes(4, "big")),
                       (0x03, caps.to_bytes(2, "big")), (0x04, b"\x01"),
                       (0x05, bytes(otp.version)), (0x0D, caps.to_bytes(2, "big")),
                       (0x0E, caps.to_bytes(2, "big"))):
        tlvs += bytes([tag, len(value)]) + value
    return bytes([len(tlvs)]) + tlvs


def nfc_atr() -> bytes:
    """3B 8D 80 01 + 13 historical bytes + TCK: an NFC (contactless) YubiKey-like ATR."""
    historical = bytes.fromhex("8073c021c057597562694b6579")
    body = bytes([0x8D, 0x80, 0x01]) + historical
    tck = 0
    for b in body:
        tck ^= b
    return bytes([0x3B]) + body + bytes([tck])


class VirtualCard:
    def __init__(self, otp: yubikey.YubiOtpApplet | None = None,
                 fido: SoftAuthenticator | None = None) -> None:
        self.otp = otp
        self.fido = fido
        self.nfc_ctap = NfcCtap(fido) if fido is not None else None
        self.selected: str | None = None
        self.chain = b""
        self.pending_out = b""
        self.atr = nfc_atr()
        self.apdus = 0

    def reset(self) -> None:
        self.selected, self.chain, self.pending_out = None, b"", b""

    @staticmethod
    def parse(apdu: bytes) -> tuple[int, int, int, int, bytes]:
        if len(apdu) < 4:
            raise ValueError("short APDU")
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[4:]
        if not body:
            return cla, ins, p1, p2, b""
        if len(body) == 1:  # Le only
            return cla, ins, p1, p2, b""
        if body[0] == 0 and len(body) >= 3:  # extended
            lc = struct.unpack(">H", body[1:3])[0]
            return cla, ins, p1, p2, body[3:3 + lc]
        lc = body[0]
        return cla, ins, p1, p2, body[1:1 + lc]

    def _out(self, data: bytes, sw: int) -> bytes:
        if len(data) > 256:
            self.pending_out = data[256:]
            remaining = len(self.pending_out)
            return data[:256] + bytes([0x61, remaining if remaining < 256 else 0])
        return data + struct.pack(">H", sw)

    def transmit(self, apdu: bytes) -> bytes:
        self.apdus += 1
        cla, ins, p1, p2, data = self.parse(bytes(apdu))
        if ins == 0xC0 and self.pending_out:  # GET RESPONSE
            data, self.pending_out = self.pending_out, b""
            return self._out(data, 0x9000)
        if cla & 0x10:  # command chaining: more to come
            self.chain += data
            return struct.pack(">H", 0x9000)
        if self.chain:
            data, self.chain = self.chain + data, b""
        if ins == 0xA4 and p1 == 0x04:
            return self._select(data)
        if self.selected == "management" and self.otp is not None:
            if ins == 0x1D and p1 == 0:
                return self._out(device_info(self.otp, self.fido is not None), 0x9000)
            return struct.pack(">H", 0x6D00)
        if self.selected == "otp" and self.otp is not None and cla & 0x80 == 0:
            out, sw = yubikey.apdu(self.otp, ins, p1, p2, data, nfc=True)
            return self._out(out, sw)
        if self.selected == "fido" and self.nfc_ctap is not None:
            out, sw = self.nfc_ctap.apdu(cla, ins, p1, p2, data)
            return self._out(out, sw)
        return struct.pack(">H", 0x6D00 if self.selected else 0x6985)

    def _select(self, aid: bytes) -> bytes:
        if self.otp is not None and aid == AID_OTP:
            if not self.otp.plugged:
                raise yubikey.Unplugged()
            self.selected = "otp"
            return self._out(self.otp.status(), 0x9000)
        if self.otp is not None and aid == AID_MANAGEMENT:
            self.selected = "management"
            return self._out(".".join(map(str, self.otp.version)).encode(), 0x9000)
        if self.fido is not None and aid == AID_FIDO:
            if not self.fido.plugged:
                raise yubikey.Unplugged()
            self.selected = "fido"
            return self._out(b"FIDO_2_0", 0x9000)
        self.selected = None
        return struct.pack(">H", 0x6A82)


def card_connection_class():  # noqa: ANN201 - imports pyscard only when asked
    """A pyscard ``CardConnection`` subclass bound to VirtualCard objects (in-process)."""
    from smartcard.CardConnection import CardConnection as _Base
    from smartcard.Exceptions import CardConnectionException, NoCardException

    class CardConnection(_Base):
        def __init__(self, reader: FakeReader) -> None:
            super().__init__(reader)
            self.fake = reader
            self.connected = False

        def connect(self, protocol=None, mode=None, disposition=None):  # noqa: ANN001,ANN201
            card = self.fake.card
            if card is None or not _plugged(card):
                raise NoCardException("No card in the reader", 0)
            card.reset()
            self.connected = True

        def disconnect(self):  # noqa: ANN201
            self.connected = False

        def getATR(self):  # noqa: ANN201,N802 - pyscard's API
            return list(self.fake.card.atr) if self.fake.card is not None else None

        def getProtocol(self):  # noqa: ANN201,N802
            return _Base.T1_protocol

        def doTransmit(self, command, protocol=None):  # noqa: ANN001,ANN201,N802
            card = self.fake.card
            if not self.connected or card is None or not _plugged(card):
                raise CardConnectionException("the card was removed")
            try:
                out = card.transmit(bytes(command))
            except OSError as exc:
                raise CardConnectionException(str(exc)) from None
            return list(out[:-2]), out[-2], out[-1]

    return CardConnection


def _plugged(card: VirtualCard) -> bool:
    return all(a.plugged for a in (card.otp, card.fido) if a is not None)


class FakeReader:
    """A pyscard reader object (name, createConnection) holding a VirtualCard."""

    def __init__(self, name: str, card: VirtualCard | None) -> None:
        self.name = name
        self.card = card

    def createConnection(self):  # noqa: ANN201,N802 - pyscard's API
        return card_connection_class()(self)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"FakeReader({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FakeReader) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

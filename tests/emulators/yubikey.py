"""An emulated YubiKey OTP application, written for capit's tests.

``YubiOtpApplet`` is the device: firmware version, serial, programming sequence, two
slots that can hold an HMAC-SHA1 challenge-response configuration, and a touch button
driven by test knobs.  Two transports put it under yubikey-manager's real code:

* ``OtpHidConnection`` answers the OTP HID feature-report protocol of
  ``yubikit.core.otp.OtpProtocol`` (8-byte status reports, 70-byte frames sent in 7-byte
  chunks with a CRC, the write flag, the touch-pending flag 0x20 while a touch is
  awaited, response packets with a residual CRC, and the host's reset report);
* ``apdu()`` answers the OTP application over ISO 7816 APDUs (SELECT, INS 0x01 commands,
  INS 0x03 status), for a PC/SC reader (``tests/emulators/card.py``).

Nothing here imports capit.  Touch knobs (``touch_after_polls``: polls of a waiting host
before the button is pressed, None = never; ``give_up_after_polls``: the key's own touch
timeout; ``unplug_after_polls`` / ``interrupt_after_polls``: the device vanishes, or Ctrl-C
arrives, while the host waits) and counters (``touches``, ``commands``) let tests drive
and count what happened.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from yubikit.core.otp import OtpConnection, calculate_crc

SLOT_CONFIG = {0x01: 1, 0x03: 2}
SLOT_CHAL_HMAC = {0x30: 1, 0x38: 2}
CMD_DEVICE_SERIAL = 0x10
CONFIG_SIZE = 52
ACC_CODE_SIZE = 6

TKTFLAG_CHAL_RESP = 0x40
CFGFLAG_CHAL_HMAC = 0x22
CFGFLAG_HMAC_LT64 = 0x04
CFGFLAG_CHAL_BTN_TRIG = 0x08

STATUS_TOUCH_WAIT = 0x20
STATUS_RESPONSE = 0x40


class Unplugged(OSError):
    def __init__(self) -> None:
        super().__init__(19, "No such device")


class SlotConfig:
    """A programmed slot; ``key`` is None for a slot in another OTP mode (no chal-resp)."""

    def __init__(self, key: bytes | None, touch: bool, lt64: bool, acc_code: bytes) -> None:
        self.key = key
        self.touch = touch
        self.lt64 = lt64
        self.acc_code = acc_code

    def hmac(self, challenge64: bytes) -> bytes:
        assert self.key is not None
        data = challenge64
        if self.lt64:  # the last byte and every equal byte before it are padding
            data = challenge64.rstrip(challenge64[-1:])
        return hmac.new(self.key, data, hashlib.sha1).digest()


class YubiOtpApplet:
    """The device state, shared by its transports."""

    def __init__(self, serial: int = 12345678, version: tuple[int, int, int] = (5, 7, 1)
                 ) -> None:
        self.serial = serial
        self.version = version
        self.pgm_seq = 0
        self.slots: dict[int, SlotConfig | None] = {1: None, 2: None}
        self.touch_after_polls: int | None = 1
        self.give_up_after_polls = 150  # ~15 s of 0.1 s polls, like a real key
        self.unplug_after_polls: int | None = None
        self.interrupt_after_polls: int | None = None
        self.plugged = True
        self.touches = 0  # button presses consumed by an answer
        self.commands: list[int] = []  # command slot bytes received, in order
        self.resets = 0

    # ----------------------------------------------------------------- test helpers

    def program_hmac(self, slot: int, key: bytes, touch: bool = False, lt64: bool = True,
                     acc_code: bytes = b"\0" * ACC_CODE_SIZE) -> None:
        """Program a slot as `ykman otp chalresp` would (no programming sequence change
        bookkeeping beyond what a real write does)."""
        self.slots[slot] = SlotConfig(key.ljust(20, b"\0")[:20], touch, lt64, acc_code)
        self.pgm_seq += 1

    def expected(self, slot: int, challenge: bytes) -> bytes:
        """HMAC-SHA1 of a challenge exactly as the key computes it."""
        config = self.slots[slot]
        assert config is not None
        pad = b"\1" if challenge.endswith(b"\0") else b"\0"
        return config.hmac(challenge.ljust(64, pad))

    # ----------------------------------------------------------------- device logic

    def touch_level(self) -> int:
        level = 0
        if self.slots[1] is not None:
            level |= 0x01
        if self.slots[2] is not None:
            level |= 0x02
        return level

    def status(self) -> bytes:
        """vMaj vMin vPatch pgmSeq touchLow touchHigh."""
        return bytes(self.version) + struct.pack("<BH", self.pgm_seq, self.touch_level())

    def write_config(self, slot: int, payload: bytes) -> bool:
        """Apply a CONFIG_1/2 write (52-byte config + 6-byte current access code)."""
        config, cur_acc = payload[:CONFIG_SIZE], payload[CONFIG_SIZE:CONFIG_SIZE + 6]
        current = self.slots[slot]
        if current is not None and any(current.acc_code) and current.acc_code != cur_acc:
            return False
        if not any(config):  # all zeros: delete
            self.slots[slot] = None
        else:
            if calculate_crc(config) != 0xF0B8:
                return False
            uid, key, acc = config[16:22], config[22:38], config[38:44]
            tkt, cfg = config[46], config[47]
            if not (tkt & TKTFLAG_CHAL_RESP and cfg & CFGFLAG_CHAL_HMAC == CFGFLAG_CHAL_HMAC):
                # other OTP modes are stored but give no challenge-response
                self.slots[slot] = SlotConfig(None, False, True, acc)
            else:
                self.slots[slot] = SlotConfig(key + uid[:4], bool(cfg & CFGFLAG_CHAL_BTN_TRIG),
                                              bool(cfg & CFGFLAG_HMAC_LT64), acc)
        if self.slots[1] is None and self.slots[2] is None:
            self.pgm_seq = 0
        else:
            self.pgm_seq += 1
        return True

    def hmac_config(self, slot: int) -> SlotConfig | None:
        config = self.slots.get(slot)
        if config is None or config.key is None:
            return None
        return config


def _crc_tail(data: bytes) -> bytes:
    return data + struct.pack("<H", ~calculate_crc(data) & 0xFFFF)


class OtpHidConnection(OtpConnection):
    """The OTP HID interface of an emulated YubiKey (a hidraw node's feature reports)."""

    poll_sleep = 0.0  # the host already waits between polls

    def __init__(self, applet: YubiOtpApplet) -> None:
        self.applet = applet
        self.buffer = bytearray(70)
        self.mode = "idle"  # idle | touch | response
        self.polls = 0
        self.out: list[bytes] = []
        self.pending: tuple[bytes, bool] | None = None  # (data, needs touch)
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def _check(self) -> None:
        if not self.applet.plugged:
            raise Unplugged()

    def _idle_report(self, status: int = 0) -> bytes:
        return b"\0" + self.applet.status() + bytes([status])

    def receive(self) -> bytes:
        self._check()
        applet = self.applet
        if self.mode == "touch":
            self.polls += 1
            if applet.unplug_after_polls is not None and self.polls >= applet.unplug_after_polls:
                applet.plugged = False
                raise Unplugged()
            if applet.interrupt_after_polls is not None and \
                    self.polls >= applet.interrupt_after_polls:
                raise KeyboardInterrupt
            if applet.touch_after_polls is not None and self.polls > applet.touch_after_polls:
                applet.touches += 1
                self._start_response(self.pending[0])
            elif self.polls > applet.give_up_after_polls:
                self.mode = "idle"  # the key gives up: idle status, sequence unchanged
                return self._idle_report()
            else:
                return self._idle_report(STATUS_TOUCH_WAIT)
        if self.mode == "response":
            if self.out:
                return self.out.pop(0)
            return b"\0" * 7 + bytes([STATUS_RESPONSE])  # end marker; wait for the reset
        return self._idle_report()

    def send(self, data: bytes) -> None:
        self._check()
        assert len(data) == 8
        if data == b"\0" * 7 + b"\xff":  # the host's reset report
            self.applet.resets += 1
            self.mode, self.out, self.pending = "idle", [], None
            return
        seq = data[7] & 0x1F
        assert data[7] & 0x80, "a frame chunk without the write flag"
        if seq == 0:
            self.buffer = bytearray(70)
        self.buffer[seq * 7:seq * 7 + 7] = data[:7]
        if seq == 9:
            self._run(bytes(self.buffer))

    def _run(self, frame: bytes) -> None:
        payload, cmd = frame[:64], frame[64]
        crc = struct.unpack("<H", frame[65:67])[0]
        if crc != calculate_crc(payload):
            return  # a bad CRC is ignored
        applet = self.applet
        applet.commands.append(cmd)
        self.polls = 0
        if cmd in SLOT_CONFIG:
            applet.write_config(SLOT_CONFIG[cmd], payload[:CONFIG_SIZE + ACC_CODE_SIZE])
            return  # no data: the host watches the programming sequence
        if cmd == CMD_DEVICE_SERIAL:
            self._start_response(struct.pack(">I", applet.serial))
            return
        if cmd in SLOT_CHAL_HMAC:
            config = applet.hmac_config(SLOT_CHAL_HMAC[cmd])
            if config is None:
                return  # not programmed: no response, sequence unchanged -> rejected
            data = config.hmac(payload)
            if config.touch:
                self.mode, self.pending = "touch", (data, True)
            else:
                self._start_response(data)
            return
        # anything else: rejected (no data, sequence unchanged)

    def _start_response(self, data: bytes) -> None:
        framed = _crc_tail(data)
        packets = []
        for seq, i in enumerate(range(0, len(framed), 7)):
            packets.append(framed[i:i + 7].ljust(7, b"\0") + bytes([STATUS_RESPONSE | seq]))
        self.out = packets
        self.mode = "response"
        self.pending = None


def apdu(applet: YubiOtpApplet, ins: int, p1: int, p2: int, data: bytes,
         nfc: bool = True) -> tuple[bytes, int]:
    """The OTP application over ISO 7816 (after SELECT): (response data, SW)."""
    if not applet.plugged:
        raise Unplugged()
    if ins == 0x03:  # status
        return applet.status(), 0x9000
    if ins != 0x01:
        return b"", 0x6D00
    applet.commands.append(p1)
    if p1 in SLOT_CONFIG:
        if applet.write_config(SLOT_CONFIG[p1], data[:CONFIG_SIZE + ACC_CODE_SIZE]):
            return applet.status(), 0x9000
        return applet.status(), 0x9000  # sequence unchanged: the host reports "Not updated"
    if p1 == CMD_DEVICE_SERIAL:
        return struct.pack(">I", applet.serial), 0x9000
    if p1 in SLOT_CHAL_HMAC:
        config = applet.hmac_config(SLOT_CHAL_HMAC[p1])
        if config is None:
            return b"", 0x9000  # no data: yubikit reports an unexpected length
        if config.touch:
            if not nfc:
                return b"", 0x6985  # USB CCID cannot wait for a touch
            applet.touches += 1  # over NFC, holding the key to the reader is the presence
        return config.hmac(data.ljust(64, b"\0")[:64]), 0x9000
    return b"", 0x6A86

"""A test bench: plug emulated YubiKeys, FIDO2 keys and PC/SC cards in, under the real
libraries, by replacing only the libraries' discovery entry points (see __init__)."""

from __future__ import annotations

from emulators.card import FakeReader, VirtualCard
from emulators.ctap2 import SoftAuthenticator, SoftHidConnection
from emulators.yubikey import OtpHidConnection, YubiOtpApplet

YUBIKEY_5_PID = 0x0407  # OTP+FIDO+CCID


class Bench:
    def __init__(self, monkeypatch) -> None:  # noqa: ANN001
        import fido2.hid
        import ykman.hid
        from fido2.hid.base import HidDescriptor
        from ykman.hid.base import OtpYubiKeyDevice

        self.yubikeys: list[YubiOtpApplet] = []
        self.fido: list[SoftAuthenticator] = []
        self.readers: list[FakeReader] = []
        self.hid_connections: list[SoftHidConnection] = []

        def list_otp_devices() -> list:
            devices = []
            for i, applet in enumerate(self.yubikeys):
                if not applet.plugged:
                    continue

                class Conn(OtpHidConnection):
                    def __init__(self, path: str, _applet: YubiOtpApplet = applet) -> None:
                        super().__init__(_applet)

                devices.append(OtpYubiKeyDevice(f"/dev/hidraw-emu-otp{i}", YUBIKEY_5_PID, Conn))
            return devices

        def list_descriptors() -> list:
            return [HidDescriptor(f"/dev/hidraw-emu-fido{i}", 0x1050, YUBIKEY_5_PID, 64, 64,
                                  "Emulated FIDO2 key", str(i))
                    for i, auth in enumerate(self.fido) if auth.plugged]

        def open_connection(descriptor) -> SoftHidConnection:  # noqa: ANN001
            index = int(str(descriptor.path).rsplit("fido", 1)[1])
            conn = SoftHidConnection(self.fido[index])
            self.hid_connections.append(conn)
            return conn

        monkeypatch.setattr(ykman.hid, "list_otp_devices", list_otp_devices)
        monkeypatch.setattr(fido2.hid, "list_descriptors", list_descriptors)
        monkeypatch.setattr(fido2.hid, "open_connection", open_connection)
        try:
            import smartcard.System
        except ImportError:  # no pyscard: PC/SC discovery is off anyway
            pass
        else:
            monkeypatch.setattr(smartcard.System, "readers", lambda: list(self.readers))

    def yubikey(self, serial: int = 12345678, *, slot: int | None = 2, key: bytes | None = None,
                touch: bool = True) -> YubiOtpApplet:
        """Plug in a YubiKey over USB (OTP HID), its slot programmed when ``slot`` is set."""
        applet = YubiOtpApplet(serial)
        if slot is not None:
            applet.program_hmac(slot, key or bytes(range(20)), touch=touch)
        self.yubikeys.append(applet)
        return applet

    def fido2(self, pin: str | None = None, protocols: tuple[int, ...] = (2, 1)
              ) -> SoftAuthenticator:
        """Plug in a FIDO2 security key over USB (CTAPHID)."""
        auth = SoftAuthenticator(pin=pin, protocols=protocols)
        self.fido.append(auth)
        return auth

    def nfc(self, otp: YubiOtpApplet | None = None, fido: SoftAuthenticator | None = None,
            name: str = "Emulated NFC Reader 00 00") -> VirtualCard:
        """Put a card (YubiOTP and/or FIDO2 applets) on an NFC reader (PC/SC)."""
        card = VirtualCard(otp, fido)
        self.readers.append(FakeReader(name, card))
        return card

"""A virtual smart card for a real pcscd: speaks vsmartcard-vpcd's TCP protocol.

Debian's ``vsmartcard-vpcd`` is a pcscd reader driver that listens on a TCP port; a card
process connects to it and is "inserted" in that reader.  The protocol (vsmartcard's
``vpcd``): every message is a 2-byte big-endian length and a payload.  From the reader, a
1-byte payload is a control code -- 0 power off, 1 power on, 2 reset, 4 get the ATR (answered
with the ATR) -- and anything longer is a command APDU, answered with the response APDU.

The card is ``tests/emulators/card.py``'s VirtualCard: a YubiKey 5 NFC-like card with the
YubiOTP, management and FIDO2 applets.  Run as::

    python vpcd_card.py --port 35963 --serial 5550123 --stats stats.json [--pin 1234]

It keeps its state in memory for as long as it runs, writes its counters (touches,
commands) to ``--stats`` after every APDU, and exits when the reader goes away.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulators.card import VirtualCard  # noqa: E402
from emulators.ctap2 import SoftAuthenticator  # noqa: E402
from emulators.yubikey import YubiOtpApplet  # noqa: E402

POWER_OFF, POWER_ON, RESET, GET_ATR = 0, 1, 2, 4


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the reader closed the connection")
        data += chunk
    return data


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">H", len(payload)) + payload)


def write_stats(path: Path | None, card: VirtualCard) -> None:
    if path is None:
        return
    stats = {"apdus": card.apdus,
             "otp_touches": card.otp.touches, "otp_commands": card.otp.commands,
             "fido_touches": card.fido.touches, "fido_commands": card.fido.commands}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stats))
    os.replace(tmp, path)


def serve(sock: socket.socket, card: VirtualCard, stats: Path | None) -> None:
    while True:
        length = struct.unpack(">H", _recv_exact(sock, 2))[0]
        payload = _recv_exact(sock, length)
        if length == 1:
            code = payload[0]
            if code in (POWER_OFF, POWER_ON, RESET):
                card.reset()
            elif code == GET_ATR:
                _send(sock, card.atr)
            continue
        try:
            response = card.transmit(payload)
        except Exception as exc:  # noqa: BLE001 - a bad APDU must not kill the card
            print(f"vpcd card: {type(exc).__name__}: {exc}", file=sys.stderr)
            response = struct.pack(">H", 0x6F00)
        _send(sock, response)
        write_stats(stats, card)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=35963)
    parser.add_argument("--serial", type=int, default=5550123)
    parser.add_argument("--pin")
    parser.add_argument("--stats", type=Path)
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)

    card = VirtualCard(YubiOtpApplet(args.serial), SoftAuthenticator(pin=args.pin))
    write_stats(args.stats, card)
    deadline = time.monotonic() + args.connect_timeout
    while True:
        try:
            sock = socket.create_connection((args.host, args.port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                print(f"vpcd card: no reader listening on {args.host}:{args.port}",
                      file=sys.stderr)
                return 1
            time.sleep(0.1)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print(f"vpcd card: inserted (serial {args.serial})", file=sys.stderr, flush=True)
    try:
        serve(sock, card, args.stats)
    except ConnectionError:
        return 0
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

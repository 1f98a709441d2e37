"""The installed capit against a virtual smart card behind a real pcscd.

A real ``pcscd`` (Debian's pcsc-lite) runs in the foreground with a private configuration
that loads Debian's ``vsmartcard-vpcd`` reader driver, and a private socket: it runs in its
own mount namespace with a private directory bound over /run/pcscd, and the clients find it
through pcsc-lite's own ``PCSCLITE_CSOCK_NAME``.  ``tests/emulators/vpcd_card.py`` is the
card (YubiOTP, management and FIDO2 applets) and speaks vpcd's TCP protocol.  capit is run
as a subprocess, the way a user types it, and finds the card through the same discovery a
user's machine runs (pyscard -> libpcsclite -> pcscd); nothing in capit is replaced.

Without pcscd, the vpcd driver, pyscard or mount namespaces these tests skip -- unless
CAPIT_REQUIRE_PCSC=1 (set by .ci/run), when they fail instead.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REQUIRED = os.environ.get("CAPIT_REQUIRE_PCSC") == "1"
SERIAL = 5550123


def _unavailable(why: str):
    if REQUIRED:
        pytest.fail(f"CAPIT_REQUIRE_PCSC=1 but the PC/SC test bed cannot run: {why}")
    pytest.skip(f"PC/SC test bed unavailable: {why}")


def _capit() -> str:
    exe = shutil.which("capit", path=str(Path(sys.executable).parent))
    if exe is None:
        _unavailable("the capit console script is not installed next to this python")
    return exe


def _free_port_pair() -> int:
    """A port P with P and P+1 free (vpcd opens one per virtual reader slot)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


class PcscBed:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "run" / "pcscd.comm"
        self.stats_path = root / "card-stats.json"
        self.procs: list[subprocess.Popen] = []

    def env(self) -> dict[str, str]:
        return {**os.environ, "PCSCLITE_CSOCK_NAME": str(self.socket)}

    def stats(self) -> dict:
        return json.loads(self.stats_path.read_text())

    def touches(self) -> int:
        stats = self.stats()
        return stats["otp_touches"] + stats["fido_touches"]

    def logs(self) -> str:
        return "".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}\n"
                       for p in sorted(self.root.glob("*.log")))


def _start(bed: PcscBed, tmp: Path) -> None:
    driver = next(iter(glob.glob("/usr/lib/pcsc/drivers/serial/libifdvpcd.so*")
                       + glob.glob("/usr/lib/*/pcsc/drivers/serial/libifdvpcd.so*")), None)
    pcscd = shutil.which("pcscd") or next(
        (p for p in ("/usr/sbin/pcscd", "/sbin/pcscd") if os.path.exists(p)), None)
    if pcscd is None:
        _unavailable("pcscd is not installed (Debian: apt-get install pcscd)")
    if driver is None:
        _unavailable("the vpcd driver is not installed (Debian: apt-get install "
                      "vsmartcard-vpcd)")
    if shutil.which("unshare") is None:
        _unavailable("unshare (util-linux) is missing")
    try:
        import smartcard  # noqa: F401
    except ImportError:
        _unavailable("pyscard is not installed (pip install -e '.[test]')")
    port = _free_port_pair()
    conf = tmp / "reader.conf.d"
    conf.mkdir()
    (conf / "vpcd").write_text(
        f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:{port}\nLIBPATH {driver}\n'
        f"CHANNELID {port}\n")
    run_dir = tmp / "run"
    run_dir.mkdir()
    namespace = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespace[1:1] = ["--user", "--map-root-user"]
    script = (f"mkdir -p /run/pcscd && mount --bind '{run_dir}' /run/pcscd && "
              f"exec '{pcscd}' --foreground --info --config '{conf}'")
    pcscd_log = open(tmp / "pcscd.log", "wb")  # noqa: SIM115 - closed with the process
    bed.procs.append(subprocess.Popen([*namespace, "sh", "-c", script], stdout=pcscd_log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    deadline = time.monotonic() + 15
    while not bed.socket.exists():
        if bed.procs[0].poll() is not None or time.monotonic() > deadline:
            _unavailable(f"pcscd did not start in a private mount namespace:\n{bed.logs()}")
        time.sleep(0.05)
    card_log = open(tmp / "card.log", "wb")  # noqa: SIM115
    bed.procs.append(subprocess.Popen(
        [sys.executable, str(HERE / "emulators" / "vpcd_card.py"), "--port", str(port),
         "--serial", str(SERIAL), "--stats", str(bed.stats_path)],
        stdout=card_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    probe = ("from smartcard.System import readers\n"
             "r = [x for x in readers() if x.name.endswith(' 00 00')][0]\n"
             "c = r.createConnection(); c.connect(); print(bytes(c.getATR()).hex())\n")
    deadline = time.monotonic() + 20
    while True:
        proc = subprocess.run([sys.executable, "-c", probe], env=bed.env(),
                              capture_output=True, text=True, check=False, timeout=20)
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline or any(p.poll() is not None for p in bed.procs):
            pytest.fail(f"the virtual card never showed up in pcscd:\n{proc.stderr}\n"
                        f"{bed.logs()}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def pcsc(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pcsc")
    bed = PcscBed(tmp)
    try:
        _start(bed, tmp)
        yield bed
    finally:
        for proc in reversed(bed.procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def capit(bed: PcscBed, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([_capit(), *args], input=stdin, env=bed.env(), capture_output=True,
                          text=True, check=False, timeout=120)


def ok(bed: PcscBed, proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{proc.args}\n{proc.stdout}\n{proc.stderr}\n{bed.logs()}"
    assert "Traceback" not in proc.stderr
    return proc


def test_enroll_add_and_mint_through_real_pcscd(pcsc, sandbox, capit_home):
    assert pcsc.stats()["otp_touches"] == 0
    # a YubiKey slot, programmed by capit through yubikit over PC/SC (NFC)
    init = ok(pcsc, capit(pcsc, "vault", "init", "--yubikey", "--program", "--touch", "-y"))
    assert "Programmed YubiKey 5550123 slot 2" in init.stderr
    assert len(init.stdout.strip().replace("-", "")) == 52  # the recovery key, shown once
    stats = pcsc.stats()
    assert 0x03 in stats["otp_commands"]  # the CONFIG_2 write
    assert stats["otp_touches"] == 1
    # a FIDO2 slot: opened by the YubiKey (one touch), then two FIDO2 touches to enroll
    enroll = ok(pcsc, capit(pcsc, "vault", "enroll", "fido2", "--no-pin"))
    assert "Touch your security key" in enroll.stderr
    stats = pcsc.stats()
    assert (stats["otp_touches"], stats["fido_touches"]) == (2, 2)
    listing = json.loads(ok(pcsc, capit(pcsc, "vault", "slots", "--json")).stdout)
    rows = listing["data"]["slots"]
    assert [(r["type"], r["present"]) for r in rows] == [
        ("yubikey-hmac-sha1", True), ("recovery", None), ("fido2", True)]
    assert "5550123" in rows[0]["detail"]
    # a master key (the sandbox's), added with one touch; then a key minted with one touch
    before = pcsc.touches()
    ok(pcsc, capit(pcsc, "keys", "add", "openrouter", stdin=f"{sandbox.management_key}\n"))
    assert pcsc.touches() == before + 1
    before = pcsc.touches()
    sandbox.requests.clear()
    minted = ok(pcsc, capit(pcsc, "openrouter", "2.50", "--json"))
    assert pcsc.touches() == before + 1
    key = json.loads(minted.stdout)["data"]
    assert key["key"].startswith("sk-or-v1-") and key["cap"]["amount"] == "2.50"
    creates = [r for r in sandbox.requests if (r.method, r.path) == ("POST", "/api/v1/keys")]
    assert len(creates) == 1 and creates[0].json["limit"] == 2.5
    stores = json.loads(ok(pcsc, capit(pcsc, "stores", "--json")).stdout)["data"][0]
    assert [(s["type"], s["present"]) for s in stores["slots"]] == [
        ("yubikey-hmac-sha1", True), ("recovery", None), ("fido2", True)]
    assert stores["platforms"] == ["openrouter"]

    # the FIDO2 slot alone opens the vault over PC/SC too
    ok(pcsc, capit(pcsc, "vault", "remove", "1", "-y"))
    before = pcsc.stats()["fido_touches"]
    ok(pcsc, capit(pcsc, "openrouter", "1.00"))
    assert pcsc.stats()["fido_touches"] == before + 1


def test_a_card_that_is_not_enrolled_over_pcscd(pcsc, capit_home):
    """A vault whose YubiKey slot names another serial: the card is found but not enrolled;
    one line, exit 6, and the vault is left byte-identical."""
    from capit.stores.vault import create_with

    path = capit_home / "vault.json"
    fields = {"serial": SERIAL + 1, "slot": 2, "challenge": "AAAAAAAAAAAAAAAAAAAAAA==",
              "touch": False}
    create_with(path, "yubikey-hmac-sha1", "elsewhere", fields, bytes(20))
    before = path.read_bytes()
    proc = capit(pcsc, "vault", "enroll", "recovery")
    assert proc.returncode == 6, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("capit: error:"), proc.stderr
    assert f"YubiKey {SERIAL}" in lines[0] and "not enrolled" in lines[0]
    assert f"YubiKey {SERIAL + 1}" in lines[0]
    assert path.read_bytes() == before

"""The installed command as a user runs it: start-up imports, python -m capit, the demo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("httpx", "cryptography", "fido2", "yubikit", "ykman", "yaml")


def _modules_after(args: list[str]) -> set[str]:
    code = (
        "import sys, json\n"
        f"sys.argv = ['capit', *{args!r}]\n"
        "from capit.cli import main\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "sys.stderr.write('\\nMODULES=' + json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, env={**os.environ})
    line = proc.stderr.rsplit("MODULES=", 1)[1]
    return set(json.loads(line))


@pytest.mark.parametrize("args", [["--help"], ["issue", "--help"], ["keys", "--help"],
                                  ["--version"], ["--consumers"], ["--platforms"]])
def test_help_and_listings_do_not_import_heavy_libraries(args):
    loaded = _modules_after(args)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == [], f"capit {' '.join(args)} imported {heavy}"


def test_python_dash_m_capit_works():
    proc = subprocess.run([sys.executable, "-m", "capit", "--version"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0
    assert proc.stdout.startswith("capit, version ")


def test_installed_console_script_runs_the_seed_form(tmp_path):
    exe = shutil.which("capit", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("capit console script not installed next to this python")
    proc = subprocess.run([exe, "--keys", "list"], capture_output=True, text=True, check=False,
                          env={**os.environ, "CAPIT_HOME": str(tmp_path / "h")})
    assert proc.returncode == 0, proc.stderr
    assert "No master keys stored" in proc.stderr


def test_demo_runs_the_whole_flow():
    proc = subprocess.run([sys.executable, "-m", "capit", "demo"], capture_output=True,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for step in ("capit vault init", "capit keys add openrouter", "capit openrouter 1.00",
                 "capit keys list -r openrouter", "capit keys delete openrouter"):
        assert step in out
    assert "call 5: 402" in out  # $1.00 cap, $0.25 a call: four calls pass, the fifth is refused
    assert "used $1.00" in out
    assert "the revoked key now gets: 401" in out
    assert "Traceback" not in out + proc.stderr


def test_sandbox_command_prints_its_key_and_serves(tmp_path):
    import httpx

    key_file = tmp_path / "k"
    proc = subprocess.Popen([sys.executable, "-m", "capit", "sandbox", "--port", "0",
                             "--key-file", str(key_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
        base = next(ln.split()[-1] for ln in lines if "base URL" in ln)
        key = key_file.read_text().strip()
        assert key in text
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        resp = httpx.get(base + "/key", headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200 and resp.json()["data"]["is_management_key"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=10)

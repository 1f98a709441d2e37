"""``capit demo``: the real flow, step by step, against the local sandbox.

Every step runs the installed capit as a separate process -- exactly what a person would
type -- in a throwaway capit home, with the sandbox standing in for OpenRouter.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import click

from capit.errors import CapitError, ExitCode

CAP = "1.00"
COST = Decimal("0.25")


def _say(text: str = "") -> None:
    click.echo(text)


def _step(title: str) -> None:
    _say()
    _say(click.style(f"## {title}", bold=True))


def _run(args: list[str], env: dict[str, str], *, stdin: str | None = None,
         capture: bool = False, shown_stdin: str | None = None) -> str:
    shown = "capit " + " ".join(args)
    if shown_stdin:
        shown += f"   < {shown_stdin}"
    _say(click.style(f"$ {shown}", fg="cyan"))
    sys.stdout.flush()
    proc = subprocess.run(
        [sys.executable, "-m", "capit", *args],
        input=stdin, text=True, env=env,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else None,
        check=False,
    )
    if proc.returncode != 0:
        raise CapitError(f"demo step 'capit {' '.join(args)}' failed with exit code "
                         f"{proc.returncode}", ExitCode.INTERNAL)
    return proc.stdout or ""


def run_demo(*, keep: bool = False) -> None:
    import httpx

    from capit.sandbox.server import Sandbox
    from capit.secret import mask

    workdir = Path(tempfile.mkdtemp(prefix="capit-demo-"))
    home = workdir / "capit-home"
    passfile = workdir / "passphrase"
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, (secrets.token_urlsafe(18) + "\n").encode())
    os.close(fd)
    sb = Sandbox(cost=COST).start("127.0.0.1", 0)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CAPIT_") or k == "CAPIT_HTTP_TIMEOUT"}
    env.update({
        "CAPIT_HOME": str(home),
        "CAPIT_OPENROUTER_BASE_URL": sb.base_url,
        "CAPIT_PASSPHRASE_FILE": str(passfile),
    })
    try:
        _say("capit demo: the real commands against a local OpenRouter-compatible sandbox.")
        _say(f"  sandbox     {sb.base_url} (fake money: each completion costs ${COST})")
        _say(f"  capit home  {home} (throwaway)")
        _say("  the vault passphrase comes from CAPIT_PASSPHRASE_FILE, as a script would do it")

        _step("1. Create the vault (a passphrase slot and a recovery key shown once)")
        _run(["vault", "init"], env)

        _step("2. Store the management key (checked with the provider, sealed in the vault)")
        _run(["keys", "add", "openrouter"], env, stdin=sb.management_key + "\n",
             shown_stdin="management key on stdin")
        _run(["keys", "list"], env)

        _step(f"3. Mint a key with a ${CAP}/month cap that the provider enforces")
        key = _run(["openrouter", CAP, "--name", "demo"], env, capture=True).strip()
        _say(f"{mask(key)}   (the key, on stdout; the demo keeps it to spend with)")

        _step("4. Spend through the key until the provider refuses (HTTP 402)")
        url = sb.base_url + "/chat/completions"
        body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(timeout=10) as client:
            for call in range(1, 20):
                resp = client.post(url, json=body, headers={"Authorization": f"Bearer {key}"})
                if resp.status_code == 200:
                    _say(f"  call {call}: 200 OK, charged ${COST}")
                    continue
                message = resp.json().get("error", {}).get("message", "")
                _say(f"  call {call}: {resp.status_code} {message}")
                break
            if resp.status_code != 402:
                raise CapitError("demo: the sandbox did not stop the key at its cap",
                                 ExitCode.INTERNAL)

        _step("5. List the keys on the provider, with their usage")
        _run(["keys", "list", "-r", "openrouter"], env)

        _step("6. Revoke the key")
        name = next(k["name"] for k in sb.keys_snapshot() if k["name"].startswith("demo-"))
        _run(["keys", "delete", "openrouter", name], env)
        with httpx.Client(timeout=10) as client:
            resp = client.post(url, json=body, headers={"Authorization": f"Bearer {key}"})
        _say(f"  the revoked key now gets: {resp.status_code} "
             f"{resp.json().get('error', {}).get('message', '')}")

        _say()
        _say("Done. With a real account: capit keys add openrouter (a management key from "
             "https://openrouter.ai/settings/management-keys), then capit openrouter 5.00.")
    finally:
        sb.stop()
        if keep:
            _say(f"(kept {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

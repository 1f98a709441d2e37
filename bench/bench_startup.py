"""Start-up and single-request benchmarks, measured in one run (not part of the test suite).

1. ``capit --help`` as a ratio to ``python -c pass`` (goal <= 3x).
2. ``capit openrouter 5 -i`` against the local sandbox with the management key piped, as a
   ratio to a minimal httpx script making the same single POST /keys (goal <= 1.5x).

Run: .venv/bin/python bench/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

PY = sys.executable
HTTPX_SCRIPT = """
import sys, httpx
key = sys.stdin.readline().strip()
r = httpx.post(sys.argv[1] + "/keys", headers={"Authorization": "Bearer " + key},
               json={"name": "bench", "limit": 5, "limit_reset": "monthly"})
r.raise_for_status()
print(r.json()["key"])
"""


def timed(argv: list[str], *, stdin: str | None = None, env: dict | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, text=True, env=env, capture_output=True,
                          check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


def median(argv: list[str], runs: int, **kw) -> float:
    timed(argv, **kw)  # warm the file cache
    return statistics.median(timed(argv, **kw) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    capit = [PY, "-c", "from capit.cli import main; main()"]
    capit_bin = Path(PY).with_name("capit")
    if capit_bin.exists():
        capit = [str(capit_bin)]

    base = median([PY, "-c", "pass"], args.runs)
    click_only = median([PY, "-c", "import click"], args.runs)
    helptime = median([*capit, "--help"], args.runs)
    print(f"python -c pass          {base * 1000:7.1f} ms")
    print(f"python -c 'import click'{click_only * 1000:7.1f} ms   ratio {click_only / base:.2f}x "
          "(the floor for any click CLI)")
    print(f"capit --help            {helptime * 1000:7.1f} ms   ratio {helptime / base:.2f}x "
          "(goal <= 3x)")

    from capit.sandbox.server import Sandbox

    with Sandbox(cost=Decimal("0.25")).start() as sb, tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAPIT_")}
        env.update({"CAPIT_HOME": str(Path(tmp) / "home"),
                    "CAPIT_OPENROUTER_BASE_URL": sb.base_url})
        key_line = sb.management_key + "\n"
        issue = median([*capit, "openrouter", "5", "-i"], args.runs, stdin=key_line, env=env)
        plain = median([PY, "-c", HTTPX_SCRIPT, sb.base_url], args.runs, stdin=key_line, env=env)
    print(f"httpx POST /keys        {plain * 1000:7.1f} ms")
    print(f"capit openrouter 5 -i   {issue * 1000:7.1f} ms   ratio {issue / plain:.2f}x "
          "(goal <= 1.5x)")
    print(f"(medians of {args.runs} runs; python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()

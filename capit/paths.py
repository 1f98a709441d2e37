"""Where capit keeps its files: ``$CAPIT_HOME``, by default ``~/.local/capit`` (as 0.1.0 did)."""

from __future__ import annotations

import os
from pathlib import Path

VAULT = "vault.json"
MASTER_LOOKUP = "master-lookup"
LEDGER = "ledger.jsonl"
LEGACY_SECRETS = "secrets.txt"  # capit 0.1.0's plaintext dotenv store
LOCK = ".lock"


def capit_home() -> Path:
    env = os.environ.get("CAPIT_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "capit"

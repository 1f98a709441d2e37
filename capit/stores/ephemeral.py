"""The ephemeral source (``-i``): ask for the master key now, use it once, keep it nowhere."""

from __future__ import annotations

from capit.platforms import MasterKey, Platform
from capit.secretinput import read_key, read_value


def read_master(platform: Platform, *, note: str = "") -> MasterKey:
    """Ask for a platform's master credential: the key (hidden), then any other fields."""
    prompt = f"{platform.title or platform.name} {platform.master_label}{note}"
    secret = read_key(prompt)
    meta: dict[str, str] = {}
    for field in platform.master_fields():
        if field.name == "key":
            continue
        meta[field.name] = read_key(field.prompt).reveal() if field.secret else read_value(
            field.prompt)
    return MasterKey(platform.name, secret, meta, store="ephemeral")

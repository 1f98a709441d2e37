"""``--agent openclaw``: OpenClaw, through ``env.OPENROUTER_API_KEY`` in ``openclaw.json``.

Where OpenClaw reads it (shared/reference/consumers.md):

* ``openclaw.json`` (JSON5) in the state directory: ``$OPENCLAW_CONFIG_PATH``, else
  ``$OPENCLAW_STATE_DIR/openclaw.json``, else ``~/.openclaw/openclaw.json`` where
  ``$OPENCLAW_HOME`` replaces the home directory -- https://docs.openclaw.ai/help/environment ;
* the config's ``env`` block, ``env: { OPENROUTER_API_KEY: "sk-or-..." }``, as in the
  OpenRouter provider page -- https://docs.openclaw.ai/providers/openrouter .

The ``env`` block never overrides a value already set in the process environment or in
``~/.openclaw/.env``; capit says so when it finds one.  Comments and trailing commas in
the file survive the edit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import PurePath

from capit.consumers._common import environ, expand, home_dir, on_path, real
from capit.consumers._files import Field, FileConsumer, Target
from capit.platforms import Platform


def state_dir(env: Mapping[str, str] | None = None, home: str | None = None,
              system: str | None = None) -> PurePath:
    env = environ(env)
    if env.get("OPENCLAW_STATE_DIR"):
        return expand(env["OPENCLAW_STATE_DIR"], home, system)
    base = env.get("OPENCLAW_HOME") or None
    return home_dir(base if base else home, system) / ".openclaw"


def config_path(env: Mapping[str, str] | None = None, home: str | None = None,
                system: str | None = None) -> PurePath:
    override = environ(env).get("OPENCLAW_CONFIG_PATH")
    if override:
        return expand(override, home, system)
    return state_dir(env, home, system) / "openclaw.json"


class OpenClaw(FileConsumer):
    name = "openclaw"
    title = "OpenClaw"
    description = "OpenClaw: env.OPENROUTER_API_KEY in ~/.openclaw/openclaw.json (JSON5)"

    def detected(self) -> bool | None:
        return real(state_dir()).is_dir() or on_path("openclaw")

    def targets(self, key: str, platform: Platform) -> list[Target]:
        return [Target(real(config_path()), "json5",
                       [Field(("env", "OPENROUTER_API_KEY"), key, secret=True)],
                       template="{}\n", source="https://docs.openclaw.ai/providers/openrouter")]

    def notes(self, platform: Platform) -> list[str]:
        notes = []
        if os.environ.get("OPENROUTER_API_KEY"):
            notes.append("OPENROUTER_API_KEY is set in this shell; an OpenClaw started from "
                         "it uses that value instead of the config's env block.")
        dotenv = real(state_dir()) / ".env"
        try:
            text = dotenv.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        if any(line.strip().removeprefix("export ").strip().startswith("OPENROUTER_API_KEY")
               for line in text.splitlines()):
            notes.append(f"{dotenv} sets OPENROUTER_API_KEY too, and wins over the config's "
                         "env block; remove it there to use the new key.")
        if not platform.base_url().startswith("https://openrouter.ai/"):
            notes.append("OpenClaw talks to openrouter.ai itself; capit did not change its "
                         f"endpoint to {platform.base_url()}.")
        return notes

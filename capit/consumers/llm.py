"""``--agent llm``: Simon Willison's ``llm`` with the llm-openrouter plugin, ``keys.json``.

Where llm reads it (shared/reference/consumers.md):

* ``keys.json`` in llm's user directory: ``$LLM_USER_PATH``, else
  ``click.get_app_dir("io.datasette.llm")`` -- ``~/.config/io.datasette.llm`` on Linux
  (``$XDG_CONFIG_HOME``), ``~/Library/Application Support/io.datasette.llm`` on macOS,
  ``%APPDATA%\\io.datasette.llm`` on Windows (simonw/llm ``user_dir()``; ``llm keys path``);
* the key named ``openrouter``, as ``llm keys set openrouter`` stores it
  (simonw/llm-openrouter README).
"""

from __future__ import annotations

import os
from pathlib import Path

from capit.consumers._common import base_not_written, on_path
from capit.consumers._files import Field, FileConsumer, Target
from capit.platforms import Platform

# what ``llm keys set`` writes into a new keys.json
TEMPLATE = '{\n  "// Note": "This file stores secret API credentials. Do not share!"\n}\n'


def user_dir() -> Path:
    override = os.environ.get("LLM_USER_PATH")
    if override:
        return Path(override)
    import click

    return Path(click.get_app_dir("io.datasette.llm"))


class Llm(FileConsumer):
    name = "llm"
    title = "llm (llm-openrouter)"
    description = "llm + llm-openrouter: the openrouter key in llm's keys.json"

    def detected(self) -> bool | None:
        return user_dir().is_dir() or on_path("llm")

    def targets(self, key: str, platform: Platform) -> list[Target]:
        return [Target(user_dir() / "keys.json", "json",
                       [Field(("openrouter",), key, secret=True)], template=TEMPLATE,
                       source="simonw/llm-openrouter README.md")]

    def notes(self, platform: Platform) -> list[str]:
        notes = ["llm uses it through the llm-openrouter plugin (llm install llm-openrouter); "
                 "models are named openrouter/<provider>/<model>."]
        return notes + base_not_written("llm-openrouter", platform)

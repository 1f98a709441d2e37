"""``--agent continue``: Continue (VS Code / JetBrains), a model entry in ``config.yaml``.

Where Continue reads it (shared/reference/consumers.md):

* ``config.yaml`` in ``$CONTINUE_GLOBAL_DIR``, by default ``~/.continue`` (Windows:
  ``%USERPROFILE%\\.continue``) -- https://docs.continue.dev/model-setup/configuration ,
  continuedev/continue core/util/paths.ts; Continue reloads it on save;
* a ``models:`` entry with ``provider: openrouter``, ``model``, ``apiBase`` and ``apiKey``
  -- https://docs.continue.dev/advanced/model-providers/more/openrouter .

The entry is named "capit (OpenRouter)"; capit replaces only that entry.  Someone still on
the old ``config.json`` gets a clear refusal before anything is minted: a new
``config.yaml`` would silently replace their configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import PurePath

from capit.configedit import Item
from capit.consumers._common import environ, expand, home_dir, openai_base, real
from capit.consumers._files import Field, FileConsumer, Target
from capit.errors import CapitError, ExitCode
from capit.platforms import Platform

ENTRY = "capit (OpenRouter)"
MODEL = "openrouter/auto"  # OpenRouter's router: picks a model per request
TEMPLATE = "name: Local Config\nversion: 1.0.0\nschema: v1\n"  # Continue's own new file


def global_dir(env: Mapping[str, str] | None = None, home: str | None = None,
               system: str | None = None) -> PurePath:
    override = environ(env).get("CONTINUE_GLOBAL_DIR")
    if override:
        path = expand(override, home, system)
        return path if path.is_absolute() else type(path)(os.getcwd()) / path
    return home_dir(home, system) / ".continue"


class Continue(FileConsumer):
    name = "continue"
    title = "Continue"
    description = "Continue: a 'capit (OpenRouter)' model in ~/.continue/config.yaml"

    def detected(self) -> bool | None:
        return real(global_dir()).is_dir()

    def check(self, platform: Platform) -> None:
        directory = real(global_dir())
        if not (directory / "config.yaml").exists() and (directory / "config.json").exists():
            raise CapitError(
                f"Continue uses {directory / 'config.json'} here; capit writes only "
                "config.yaml (Continue's current format, which would replace config.json): "
                "convert it first (Continue converts it when you open its config); nothing "
                "was minted", ExitCode.DELIVERY)

    def targets(self, key: str, platform: Platform) -> list[Target]:
        entry = {"name": ENTRY, "provider": "openrouter", "model": MODEL,
                 "apiBase": openai_base(platform), "apiKey": key}
        return [Target(real(global_dir()) / "config.yaml", "yaml",
                       [Field(("models", Item("name", ENTRY)), entry, secret=True)],
                       template=TEMPLATE,
                       source="https://docs.continue.dev/advanced/model-providers/more/"
                              "openrouter")]

    def notes(self, platform: Platform) -> list[str]:
        return [f"In Continue, choose the model \"{ENTRY}\"; change its model: line to pick "
                "a specific OpenRouter model."]

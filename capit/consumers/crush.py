"""``--agent crush``: Charm's Crush, in ``crushrc`` if there is one, else ``crush.json``.

Where Crush reads it (shared/reference/consumers.md):

* the global config directory ``$XDG_CONFIG_HOME/crush``, by default ``~/.config/crush``
  (Windows: ``%USERPROFILE%\\.config\\crush``) -- charmbracelet/crush docs/config/README.md;
* ``crushrc`` (Bash, the current format): ``provider add openrouter --api-key ...`` adds or
  updates the provider with that id (same README, "provider add");
* ``crush.json`` (the legacy format, "supported for the foreseeable future", JSON with
  comments): ``providers.openrouter.api_key`` -- same README, "Legacy JSON".

capit edits ``crushrc`` when it exists (in a marked block it can remove again), and
otherwise ``crush.json``, which every Crush version reads -- a new ``crushrc`` would be
ignored by older ones, and a folder with both makes Crush warn.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import PurePath

from capit.consumers._common import (
    environ,
    home_dir,
    is_default_base,
    on_path,
    openai_base,
    pure,
    real,
)
from capit.consumers._files import Field, FileConsumer, Target
from capit.platforms import Platform


def config_dir(env: Mapping[str, str] | None = None, home: str | None = None,
               system: str | None = None) -> PurePath:
    xdg = environ(env).get("XDG_CONFIG_HOME")
    if xdg:
        return pure(system)(xdg) / "crush"
    return home_dir(home, system) / ".config" / "crush"


class Crush(FileConsumer):
    name = "crush"
    title = "Crush"
    description = "Crush: provider openrouter in crushrc, or in crush.json"

    def detected(self) -> bool | None:
        return real(config_dir()).is_dir() or on_path("crush")

    def targets(self, key: str, platform: Platform) -> list[Target]:
        directory = real(config_dir())
        crushrc = directory / "crushrc"
        if crushrc.exists():
            line = f"provider add {platform.name} --api-key {shlex.quote(key)}"
            if not is_default_base(platform):
                line += f" --base-url {shlex.quote(openai_base(platform))}"
            body = ("# a capped key from capit; 'capit uninstall --agent crush' removes this "
                    "block\n" + line)
            return [Target(crushrc, "rcblock", [Field((platform.name,), body, secret=True)],
                           source="charmbracelet/crush docs/config/README.md")]
        fields = [Field(("providers", platform.name, "api_key"), key, secret=True)]
        if not is_default_base(platform):
            fields.append(Field(("providers", platform.name, "base_url"), openai_base(platform)))
        return [Target(directory / "crush.json", "jsonc", fields, template="{}\n",
                       source="charmbracelet/crush docs/config/README.md (Legacy JSON)")]

    def where(self, platform: Platform | None = None) -> str:
        from capit.configedit.changes import display

        directory = display(real(config_dir()))
        return (f"{directory}/crushrc (a 'provider add openrouter' block) if it exists, else "
                f"{directory}/crush.json (providers.openrouter.api_key)")

    def notes(self, platform: Platform) -> list[str]:
        return ["In Crush, pick an OpenRouter model (Ctrl+P, then Switch Model)."]

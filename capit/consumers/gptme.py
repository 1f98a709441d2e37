"""``--agent gptme``: gptme's secrets file ``config.local.toml``, ``[env] OPENROUTER_API_KEY``.

Where gptme reads it (shared/reference/consumers.md):

* ``~/.config/gptme/config.toml`` and, merged over it, ``config.local.toml`` beside it,
  meant for secrets (gptme's ``set_config_value(..., local=True)`` writes keys there) --
  https://gptme.org/docs/config.html , gptme/gptme gptme/config/user.py ; gptme expands
  ``~`` itself, so the path is the same on every OS;
* ``[env] OPENROUTER_API_KEY`` -- https://gptme.org/docs/config.html ; models are then
  ``openrouter/<provider>/<model>``.
"""

from __future__ import annotations

from pathlib import PurePath

from capit.consumers._common import base_not_written, home_dir, on_path, real
from capit.consumers._files import Field, FileConsumer, Target
from capit.platforms import Platform


def config_dir(home: str | None = None, system: str | None = None) -> PurePath:
    return home_dir(home, system) / ".config" / "gptme"


class Gptme(FileConsumer):
    name = "gptme"
    title = "gptme"
    description = "gptme: [env] OPENROUTER_API_KEY in ~/.config/gptme/config.local.toml"

    def detected(self) -> bool | None:
        return real(config_dir()).is_dir() or on_path("gptme")

    def targets(self, key: str, platform: Platform) -> list[Target]:
        return [Target(real(config_dir()) / "config.local.toml", "toml",
                       [Field(("env", "OPENROUTER_API_KEY"), key, secret=True)],
                       source="https://gptme.org/docs/config.html")]

    def notes(self, platform: Platform) -> list[str]:
        notes = ["Start gptme with an OpenRouter model: gptme -m openrouter/<provider>/<model>."]
        return notes + base_not_written("gptme", platform)

"""``--agent aider``: aider's ``~/.aider.conf.yml``, as an ``api-key`` entry.

Where aider reads it (shared/reference/consumers.md):

* ``.aider.conf.yml`` in the home directory (then the git root and the current
  directory, later files winning) -- https://aider.chat/docs/config/aider_conf.html ;
* ``api-key: [openrouter=<key>]``: each ``provider=key`` entry sets
  ``PROVIDER_API_KEY``, i.e. ``OPENROUTER_API_KEY``
  -- https://aider.chat/docs/config/api-keys.html ; models are then
  ``openrouter/<provider>/<model>`` -- https://aider.chat/docs/llms/openrouter.html .
"""

from __future__ import annotations

from pathlib import PurePath

from capit.configedit import Prefixed
from capit.consumers._common import base_not_written, home_dir, on_path, real
from capit.consumers._files import Field, FileConsumer, Target
from capit.platforms import Platform


def config_path(home: str | None = None, system: str | None = None) -> PurePath:
    return home_dir(home, system) / ".aider.conf.yml"


class Aider(FileConsumer):
    name = "aider"
    title = "aider"
    description = "aider: an openrouter= entry of api-key in ~/.aider.conf.yml"

    def detected(self) -> bool | None:
        return real(config_path()).exists() or on_path("aider")

    def targets(self, key: str, platform: Platform) -> list[Target]:
        return [Target(real(config_path()), "yaml",
                       [Field(("api-key", Prefixed("openrouter=")), f"openrouter={key}",
                              secret=True)],
                       source="https://aider.chat/docs/config/api-keys.html")]

    def notes(self, platform: Platform) -> list[str]:
        notes = ["Start aider with an OpenRouter model: aider --model openrouter/<provider>/"
                 "<model>."]
        return notes + base_not_written("aider", platform)

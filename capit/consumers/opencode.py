"""``--agent opencode``: opencode's ``auth.json``, where its ``/connect`` command keeps keys.

Where opencode reads it (shared/reference/consumers.md):

* ``auth.json`` in opencode's data directory, ``$XDG_DATA_HOME/opencode`` or
  ``~/.local/share/opencode`` (opencode uses the XDG layout on macOS and Windows too:
  ``%USERPROFILE%\\.local\\share\\opencode``; ``opencode debug paths`` prints it) --
  anomalyco/opencode packages/web/src/content/docs/providers.mdx, anomalyco/opencode#5238;
* the entry ``{"openrouter": {"type": "api", "key": "sk-or-..."}}`` that ``/connect`` writes
  -- https://openrouter.ai/docs/cookbook/coding-agents/opencode-integration .
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath

from capit.consumers._common import is_default_base, on_path, real, xdg_dir
from capit.consumers._files import Field, FileConsumer, Target
from capit.platforms import Platform


def data_dir(env: Mapping[str, str] | None = None, home: str | None = None,
             system: str | None = None) -> PurePath:
    # the xdg-basedir package: $XDG_DATA_HOME if set, on every OS
    return xdg_dir("XDG_DATA_HOME", (".local", "share"), env, home, system,
                   absolute_only=False) / "opencode"


class OpenCode(FileConsumer):
    name = "opencode"
    title = "opencode"
    description = "opencode: the openrouter entry of auth.json (as /connect writes it)"

    def detected(self) -> bool | None:
        return real(data_dir()).is_dir() or on_path("opencode")

    def targets(self, key: str, platform: Platform) -> list[Target]:
        return [Target(real(data_dir()) / "auth.json", "json",
                       [Field(("openrouter",), {"type": "api", "key": key}, secret=True)],
                       template="{}\n",
                       source="anomalyco/opencode packages/web/src/content/docs/providers.mdx")]

    def notes(self, platform: Platform) -> list[str]:
        notes = ["In opencode, pick an OpenRouter model with /models."]
        if not is_default_base(platform):
            notes.append("opencode talks to openrouter.ai unless its opencode.json sets "
                         f"provider.openrouter.options.baseURL to {platform.base_url()}.")
        return notes

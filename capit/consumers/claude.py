"""``--agent claude``: Claude Code, through the ``env`` block of its user settings.

Where Claude Code reads it (shared/reference/consumers.md):

* ``settings.json`` in ``$CLAUDE_CONFIG_DIR``, by default ``~/.claude`` (Windows:
  ``%USERPROFILE%\\.claude``) -- https://code.claude.com/docs/en/settings ;
* OpenRouter's Claude Code guide sets ``ANTHROPIC_BASE_URL`` to OpenRouter's
  Anthropic-compatible endpoint (``https://openrouter.ai/api``, the API base without
  ``/v1``), the key as ``ANTHROPIC_AUTH_TOKEN`` (sent as ``Authorization: Bearer``) and
  ``ANTHROPIC_API_KEY`` explicitly empty, either in the shell or in the settings ``env``
  block -- https://openrouter.ai/docs/guides/coding-agents/claude-code-integration .

The file is plain JSON (Claude Code parses it with ``JSON.parse``): a file with comments
is not valid for it and is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath

from capit.consumers._common import anthropic_base, environ, expand, home_dir, on_path, real
from capit.consumers._files import Field, FileConsumer, Target
from capit.platforms import Platform


def config_dir(env: Mapping[str, str] | None = None, home: str | None = None,
               system: str | None = None) -> PurePath:
    override = environ(env).get("CLAUDE_CONFIG_DIR")
    if override:
        return expand(override, home, system)
    return home_dir(home, system) / ".claude"


class ClaudeCode(FileConsumer):
    name = "claude"
    title = "Claude Code"
    description = "Claude Code: the env block of ~/.claude/settings.json"

    def detected(self) -> bool | None:
        return real(config_dir()).is_dir() or on_path("claude")

    def targets(self, key: str, platform: Platform) -> list[Target]:
        return [Target(
            real(config_dir()) / "settings.json", "json", [
                Field(("env", "ANTHROPIC_BASE_URL"), anthropic_base(platform)),
                Field(("env", "ANTHROPIC_AUTH_TOKEN"), key, secret=True),
                Field(("env", "ANTHROPIC_API_KEY"), "", secret=True),
            ], template="{}\n",
            source="https://openrouter.ai/docs/guides/coding-agents/claude-code-integration")]

    def notes(self, platform: Platform) -> list[str]:
        return ["Claude Code reads it when a session starts; if you are logged in to an "
                "Anthropic account there, run /logout first."]

"""``--agent codex``: the OpenAI Codex CLI, as a model provider in ``config.toml``.

Where Codex reads it (shared/reference/consumers.md):

* ``$CODEX_HOME/config.toml``, by default ``~/.codex/config.toml`` (Windows:
  ``%USERPROFILE%\\.codex``) -- https://developers.openai.com/codex/environment-variables ;
  ``model_provider``/``model_providers`` count only in this user-level file
  (https://openrouter.ai/blog/tutorials/codex-cli-openrouter/);
* a custom provider ``[model_providers.openrouter]`` with ``base_url`` and
  ``wire_api = "responses"`` (the only value recent Codex accepts), selected by
  ``model_provider = "openrouter"`` -- https://openrouter.ai/docs/guides/coding-agents/codex-cli ;
* the key the way Codex documents for static or external credentials: command-backed
  auth, ``[model_providers.<id>.auth] command/args`` -- the command prints the token
  (https://developers.openai.com/codex/config-advanced , openai/codex#16288; OpenRouter's
  own Codex guide uses it).  Codex forbids combining it with ``env_key``,
  ``experimental_bearer_token`` or ``requires_openai_auth``, so those are removed from
  capit's provider table (and restored by ``capit uninstall``).

The command reads the key from ``$CODEX_HOME/capit-openrouter.key`` (0600), so the key is
not in ``config.toml`` -- a file people often keep in their dotfiles.  OpenRouter needs
its own model names, so a plain OpenAI model name (``o3``) becomes ``openai/o3``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from capit.consumers._common import (
    environ,
    expand,
    home_dir,
    is_windows,
    on_path,
    openai_base,
    real,
)
from capit.consumers._files import Field, FileConsumer, Target
from capit.platforms import Platform

DEFAULT_MODEL = "openai/gpt-5-codex"


def codex_home(env: Mapping[str, str] | None = None, home: str | None = None,
               system: str | None = None) -> PurePath:
    override = environ(env).get("CODEX_HOME")
    if override:
        return expand(override, home, system)
    return home_dir(home, system) / ".codex"


def auth_command(key_file: PurePath, system: str | None = None) -> tuple[str, list[str]]:
    """A command that prints the key file (Codex trims the whitespace around it)."""
    if is_windows(system):
        quoted = str(key_file).replace("'", "''")
        return "powershell", ["-NoProfile", "-NonInteractive", "-Command",
                              f"Get-Content -Raw -LiteralPath '{quoted}'"]
    return "cat", [str(key_file)]


def openrouter_model(current: Any, doc: Any) -> Any:
    if isinstance(current, str) and current.strip():
        return current if "/" in current else f"openai/{current}"
    return DEFAULT_MODEL


class Codex(FileConsumer):
    name = "codex"
    title = "OpenAI Codex CLI"
    description = "Codex CLI: an openrouter model provider in ~/.codex/config.toml"

    def detected(self) -> bool | None:
        return real(codex_home()).is_dir() or on_path("codex")

    def targets(self, key: str, platform: Platform) -> list[Target]:
        home = real(codex_home())
        provider = platform.name
        key_file = home / f"capit-{provider}.key"
        command, args = auth_command(key_file)
        table = ("model_providers", provider)
        return [
            Target(key_file, "raw", [Field((), key, secret=True)]),
            Target(home / "config.toml", "toml", [
                Field(("model_provider",), provider),
                Field(("model",), openrouter_model),
                Field((*table, "name"), "OpenRouter"),
                Field((*table, "base_url"), openai_base(platform)),
                Field((*table, "wire_api"), "responses"),
                Field((*table, "env_key")),
                Field((*table, "experimental_bearer_token"), secret=True),
                Field((*table, "requires_openai_auth")),
                Field((*table, "auth", "command"), command),
                Field((*table, "auth", "args"), args),
            ], secret=False,
                source="https://developers.openai.com/codex/config-advanced"),
        ]

    def where(self, platform: Platform | None = None) -> str:
        from capit.configedit.changes import display

        home = display(real(codex_home()))
        return (f"{home}/config.toml (model_provider, model, [model_providers.openrouter] with "
                f"an auth command); the key in {home}/capit-openrouter.key")

    def notes(self, platform: Platform) -> list[str]:
        return ["Codex reads config.toml when it starts; change the model with "
                "model = \"<vendor>/<model>\" (OpenRouter's model names)."]


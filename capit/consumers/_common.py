"""Helpers shared by the built-in consumers: base URLs and per-OS configuration paths."""

from __future__ import annotations

import ntpath
import os
import posixpath
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from capit.platforms import Platform


def openai_base(platform: Platform) -> str:
    """The platform's OpenAI-compatible base URL (``.../api/v1`` for OpenRouter)."""
    base = platform.base_url()
    return base if base.endswith("/v1") else base + "/v1"


def anthropic_base(platform: Platform) -> str:
    """What ``ANTHROPIC_BASE_URL`` must be: the OpenAI base without ``/v1``.

    Claude Code calls ``{ANTHROPIC_BASE_URL}/v1/messages``; for OpenRouter that is
    ``https://openrouter.ai/api`` (OpenRouter's Claude Code guide).
    """
    return platform.base_url().removesuffix("/v1")


def site_root(platform: Platform) -> str:
    """``https://openrouter.ai`` for ``https://openrouter.ai/api/v1`` (goose's OPENROUTER_HOST)."""
    return platform.base_url().removesuffix("/v1").removesuffix("/api")


def is_default_base(platform: Platform) -> bool:
    return platform.base_url() == platform.default_base_url.rstrip("/")


def base_not_written(tool: str, platform: Platform) -> list[str]:
    """The note for a tool with no base-URL setting when the platform's base is overridden."""
    if is_default_base(platform):
        return []
    return [f"{tool} talks to openrouter.ai; capit did not point it at {platform.base_url()}."]


def environ(env: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return os.environ if env is None else env


def is_windows(system: str | None = None) -> bool:
    return (system or sys.platform) == "win32"


def is_macos(system: str | None = None) -> bool:
    return (system or sys.platform) == "darwin"


def pure(system: str | None = None) -> type[PurePath]:
    """The path flavour of ``system`` (so Windows rules can be checked anywhere)."""
    return PureWindowsPath if is_windows(system) else PurePosixPath


def isabs(value: str, system: str | None = None) -> bool:
    return (ntpath if is_windows(system) else posixpath).isabs(value)


def home_dir(home: str | None = None, system: str | None = None) -> PurePath:
    return pure(system)(home if home is not None else str(Path.home()))


def expand(value: str, home: str | None = None, system: str | None = None) -> PurePath:
    """``~`` expanded against ``home`` (so tests can pass a fake one)."""
    if value == "~" or value.startswith(("~/", "~\\")):
        return home_dir(home, system) / value[2:]
    return pure(system)(value)


def xdg_dir(var: str, default: tuple[str, ...], env: Mapping[str, str] | None = None,
            home: str | None = None, system: str | None = None, *,
            absolute_only: bool = True) -> PurePath:
    """``$XDG_..._HOME`` or ``~/<default>``.  The XDG spec ignores relative values."""
    value = environ(env).get(var, "")
    if value and (isabs(value, system) or not absolute_only):
        return pure(system)(value)
    return home_dir(home, system).joinpath(*default)


def real(path: PurePath) -> Path:
    """A rule's result as a path on this machine."""
    return Path(str(path))


def on_path(*names: str) -> bool:
    return any(shutil.which(n) for n in names)

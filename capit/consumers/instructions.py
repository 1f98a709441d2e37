"""Agents whose keys live in encrypted app storage or a keychain: capit prints the steps.

Cursor, Zed and Cline keep API keys where capit must not forge entries (Cursor's
encrypted ``state.vscdb``, Zed's system keychain, VS Code's SecretStorage), and writing
a setting they ignore would be worse than nothing.  So these consumers write nothing:
they print the exact steps, put the key on the clipboard when a clipboard tool is on
PATH (the key goes to the tool's standard input, never its arguments), and say plainly
that capit did not write it.  Windsurf cannot use an OpenRouter key at all and refuses
before anything is minted.  Sources: shared/reference/consumers.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from capit.consumers import Consumer, Delivery
from capit.errors import CapitError, ExitCode
from capit.platforms import IssuedKey, Platform
from capit.secret import mask


def _clipboard_tools() -> list[list[str]]:
    if sys.platform == "darwin":
        return [["pbcopy"]]
    if sys.platform == "win32":
        return [["clip.exe"], ["clip"]]
    tools = []
    if os.environ.get("WAYLAND_DISPLAY"):
        tools.append(["wl-copy"])
    if os.environ.get("DISPLAY"):
        tools += [["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]]
    tools.append(["clip.exe"])  # WSL: the Windows clipboard
    return tools


def copy_to_clipboard(value: str) -> str | None:
    """Put ``value`` on the clipboard through the first tool that works; its name, or None."""
    for argv in _clipboard_tools():
        exe = shutil.which(argv[0])
        if exe is None:
            continue
        try:
            subprocess.run([exe, *argv[1:]], input=value.encode(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=5, check=True)
        except (OSError, subprocess.SubprocessError):
            continue
        return argv[0]
    return None


class InstructionsConsumer(Consumer):
    """Prints the steps to enter the key by hand; writes nothing."""

    platforms: tuple[str, ...] | None = ("openrouter",)
    instructions_only = True
    storage = ""  # where the tool keeps keys, for "capit did not write it"
    source = ""

    def steps(self, platform: Platform, key_text: str) -> list[str]:
        raise NotImplementedError

    def where(self, platform: Platform | None = None) -> str:
        return "writes nothing: prints the steps and copies the key to the clipboard"

    def install(self, key: IssuedKey, platform: Platform, *, assume_yes: bool = False) -> Delivery:
        value = key.secret.reveal()
        tool = copy_to_clipboard(value)
        key_text = "the key (it is on your clipboard)" if tool else "the key shown below"
        lines = [f"capit did not write this key anywhere: {self.title} keeps API keys in "
                 f"{self.storage}. To use it:"]
        lines += [f"  {n}. {step}" for n, step in enumerate(self.steps(platform, key_text), 1)]
        if tool:
            lines.append(f"The key is on your clipboard ({tool}): {mask(value)}")
        else:
            lines.append(f"Key: {value}")
        if self.source:
            lines.append(f"(steps from {self.source})")
        return Delivery(
            consumer=self.name,
            summary=f"{key.short_cap()} {platform.name} key ready for {self.title}: capit "
                    "wrote it nowhere; follow the steps above",
            output="\n".join(lines),
        )


class Cursor(InstructionsConsumer):
    name = "cursor"
    title = "Cursor"
    description = "Cursor: prints the steps (its keys are in encrypted app storage)"
    storage = "its own encrypted app storage"
    source = "https://openrouter.ai/docs/cookbook/coding-agents/cursor-integration"

    def steps(self, platform: Platform, key_text: str) -> list[str]:
        return [
            "Open Cursor Settings, then Models.",
            f"Under API Keys, paste {key_text} into \"OpenAI API Key\" and turn it on.",
            "Turn on \"Override OpenAI Base URL\" and set it to "
            f"{platform.base_url()}/cursor",
            "Add the OpenRouter models you want (for example ~anthropic/claude-sonnet-latest) "
            "and turn them on. Tab completion keeps using Cursor's own models; requests go "
            "through Cursor's servers to OpenRouter.",
        ]


class Zed(InstructionsConsumer):
    name = "zed"
    title = "Zed"
    description = "Zed: prints the steps (its keys are in the system keychain)"
    storage = "the system keychain"
    source = "https://zed.dev/docs/ai/use-api-access"

    def steps(self, platform: Platform, key_text: str) -> list[str]:
        steps = [
            "Open the Agent Panel's settings (command palette: \"agent: open settings\").",
            f"Under OpenRouter, paste {key_text} into the API key field. (A Zed started from a "
            "shell with OPENROUTER_API_KEY set uses that instead.)",
        ]
        if platform.base_url() != platform.default_base_url.rstrip("/"):
            steps.append("In Zed's settings.json, set \"language_models\": {\"open_router\": "
                         f"{{\"api_url\": \"{platform.base_url()}\"}}}}.")
        steps.append("Choose an OpenRouter model in the Agent Panel.")
        return steps


class Cline(InstructionsConsumer):
    name = "cline"
    title = "Cline"
    description = "Cline (VS Code): prints the steps (its keys are in VS Code's secret storage)"
    storage = "VS Code's secret storage"
    source = "https://github.com/cline/cline/issues/3056"

    def steps(self, platform: Platform, key_text: str) -> list[str]:
        if platform.base_url() != platform.default_base_url.rstrip("/"):
            return [
                "In VS Code, open Cline and click its settings (gear) icon.",
                "Set API Provider to \"OpenAI Compatible\" and Base URL to "
                f"{platform.base_url()} (Cline's OpenRouter provider always uses "
                "openrouter.ai).",
                f"Paste {key_text} into \"API Key\", enter a model ID, then Done.",
            ]
        return [
            "In VS Code, open Cline and click its settings (gear) icon.",
            f"Set API Provider to \"OpenRouter\" and paste {key_text} into "
            "\"OpenRouter API Key\".",
            "Choose a model, then Done.",
        ]


class Windsurf(Consumer):
    name = "windsurf"
    title = "Windsurf"
    description = "Windsurf: cannot use capit's keys (BYOK takes Anthropic keys only)"
    platforms: tuple[str, ...] | None = ()
    instructions_only = True

    def unsupported_reason(self, platform: Platform) -> str:
        return ("Windsurf accepts only Anthropic API keys, for its Claude models, entered in "
                "its web settings, and has no base URL setting: "
                "https://docs.windsurf.com/plugins/cascade/models")

    def where(self, platform: Platform | None = None) -> str:
        return "nothing: Windsurf cannot use an OpenRouter key"

    def install(self, key: IssuedKey, platform: Platform, *, assume_yes: bool = False) -> Delivery:
        raise CapitError(f"windsurf cannot use {platform.name} keys", ExitCode.DELIVERY)

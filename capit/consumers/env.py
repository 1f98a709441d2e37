"""``--agent env``: print the export line for a shell (``eval "$(capit ... --agent env)"``)."""

from __future__ import annotations

import shlex

from capit.consumers import Consumer, Delivery
from capit.platforms import IssuedKey, Platform


class EnvConsumer(Consumer):
    name = "env"
    title = "shell environment"
    description = "prints an export line for the platform's API key variable"

    def supports(self, platform: Platform) -> bool:
        return bool(platform.env_var)

    def where(self, platform: Platform | None = None) -> str:
        var = platform.env_var if platform and platform.env_var else "<PLATFORM>_API_KEY"
        return f"prints: export {var}=..."

    def install(self, key: IssuedKey, platform: Platform, *, assume_yes: bool = False) -> Delivery:
        line = f"export {platform.env_var}={shlex.quote(key.secret.reveal())}"
        return Delivery(
            consumer=self.name,
            summary=f"{key.short_cap()} {platform.name} key printed as {platform.env_var}",
            output=line,
        )

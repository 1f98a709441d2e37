"""``--agent example``: the template for new consumers; prints how to use the key.

To write a consumer for your own tool, copy this file to
``$CAPIT_HOME/consumers/NAME.py`` (``~/.local/capit/consumers/``), change ``name`` to NAME,
and make ``install`` put the key where your tool reads it; ``--agent NAME`` then uses it
(see docs/new-consumer.md).  A consumer receives the minted key as a
:class:`capit.secret.Secret`; call ``reveal()`` only at the moment the key is written or
printed.
"""

from __future__ import annotations

import shlex

from capit.consumers import Consumer, Delivery
from capit.platforms import IssuedKey, Platform


class ExampleConsumer(Consumer):
    name = "example"
    title = "example (instructions)"
    description = "prints the key and how to use it; the template for new consumers"

    def where(self, platform: Platform | None = None) -> str:
        return "prints the key with instructions"

    def install(self, key: IssuedKey, platform: Platform, *, assume_yes: bool = False) -> Delivery:
        value = key.secret.reveal()
        var = platform.env_var or f"{platform.name.upper()}_API_KEY"
        lines = [
            f"Limited key for {platform.name} ({key.describe_cap()} cap, enforced by "
            f"{platform.title or platform.name})",
            f"Key: {value}",
            "",
            "To use it, set it in the environment of your tool:",
            f"  export {var}={shlex.quote(value)}",
            "",
            f"Base URL: {platform.base_url()}",
        ]
        return Delivery(
            consumer=self.name,
            summary=f"{key.short_cap()} {platform.name} key installed into {self.name}",
            output="\n".join(lines),
        )

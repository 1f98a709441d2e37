"""``capit PLATFORM AMOUNT`` (``capit issue``): mint a capped key and hand it out."""

from __future__ import annotations

import re

import click

from capit.cli._common import emit_json, home, json_option, verbose_option, yes_option
from capit.errors import usage

PERIODS = ("monthly", "weekly", "daily", "none")  # capit.money.PERIODS, without its imports

_NEGATIVE = re.compile(r"^-\$?(\d|\.\d)")


class IssueCommand(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # "-1" would otherwise read as an unknown option; say what is wrong with it (but
        # "--expires -1d" or "--name -5" is the value of an option, not the amount)
        takes_value = {opt for p in self.params if isinstance(p, click.Option) and not p.is_flag
                       for opt in (*p.opts, *p.secondary_opts)}
        previous = None
        for arg in args:
            if _NEGATIVE.match(arg) and previous not in takes_value:
                raise usage(f"amount must be more than $0, got {arg!r}")
            previous = arg
        return super().parse_args(ctx, args)


@click.command("issue", cls=IssueCommand)
@click.argument("platform")
@click.argument("amount")
@click.option("-n", "--name", help="Name part of the key name ([prefix-][name-]<8 hex>).")
@click.option("-p", "--prefix", help="Prefix of the key name, e.g. prod.")
@click.option("-a", "--agent", metavar="AGENT",
              help="Install the key into this agent (see: capit --consumers); "
                   "also the default name.")
@click.option("--period", type=click.Choice(PERIODS), default="monthly", show_default=True,
              help="When the cap resets ('none': a lifetime cap).")
@click.option("--expires", metavar="WHEN",
              help="Expiry: 30d, 12h, 45m, 2w, a date (2027-01-31, midnight UTC) or a time.")
@click.option("-i", "--interactive", "ephemeral", is_flag=True,
              help="Ask for the master key now, use it once, and store it nowhere.")
@yes_option
@json_option
@verbose_option
def issue(platform: str, amount: str, name: str | None, prefix: str | None, agent: str | None,
          period: str, expires: str | None, ephemeral: bool, assume_yes: bool,
          as_json: bool) -> None:
    """Mint a key for PLATFORM whose cap of AMOUNT the provider enforces.

    \b
      capit openrouter 5.00                       $5.00/month, key on stdout
      capit openrouter 5.00 --name claude --prefix prod
      capit openrouter 5.00 --agent env           prints: export OPENROUTER_API_KEY=...
      capit openrouter 20 --period weekly --expires 30d
      capit openrouter 1.00 -i                    management key asked for, kept nowhere

    AMOUNT is in dollars (5, 5.00 or $5; whole cents). Caps above $1,000 ask for
    confirmation unless -y is given.
    """
    from capit import ui
    from capit.consumers import require_consumer
    from capit.issuing import confirm_amount, mint
    from capit.money import make_key_name, parse_amount, parse_expires
    from capit.platforms import KeyRequest, require_platform

    plat = require_platform(platform)
    value = parse_amount(amount)
    when = parse_expires(expires) if expires else None
    consumer = require_consumer(agent) if agent else None
    if consumer is not None and not consumer.supports(plat):
        raise usage(f"agent {consumer.name!r} cannot use {plat.name} keys; nothing was minted")
    key_name = make_key_name(prefix, name or (consumer.name if consumer else None))
    request = KeyRequest(name=key_name, amount=value, period=period, expires_at=when)
    confirm_amount(plat, value, assume_yes)

    cap_home = home()
    if ephemeral:
        from capit.stores.ephemeral import read_master

        master = read_master(plat, note=" (used once, not stored)")
    else:
        from capit.stores import MasterKeys

        master = MasterKeys(cap_home).get(plat.name)

    outcome = mint(cap_home, plat, master, request, consumer, assume_yes=assume_yes)
    key, delivery = outcome.key, outcome.delivery
    if as_json:
        emit_json("key.issued", {
            "platform": key.platform,
            "key": key.secret.reveal() if delivery is None else None,
            "hash": key.hash,
            "name": key.name,
            "cap": {"amount": str(key.amount), "unit": key.unit, "period": key.period},
            "expires_at": key.expires_at,
            "created_at": key.created_at,
            "delivery": None if delivery is None else {
                "consumer": delivery.consumer, "summary": delivery.summary,
                "output": delivery.output, "location": delivery.location,
            },
        })
        return
    expiry = f", expires {key.expires_at}" if key.expires_at else ""
    ui.info(f"Minted {key.platform} key {key.name} ({key.hash[:16]}): {key.describe_cap()} cap "
            f"enforced by {plat.title or plat.name}{expiry}.")
    if delivery is None:
        ui.result(key.secret.reveal())
    elif delivery.output:
        ui.result(delivery.output)
        ui.info(delivery.summary)
    else:
        ui.result(delivery.summary)


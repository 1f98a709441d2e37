"""``capit PLATFORM AMOUNT`` (``capit issue``): mint a capped key and hand it out."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

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
@click.option("-a", "--agent", metavar="AGENT", multiple=True,
              help="Install the key into this agent (see: capit --consumers); "
                   "also the default name. Repeat it for several agents: each gets its own "
                   "key, and if one delivery fails none is kept.")
@click.option("--period", type=click.Choice(PERIODS), default="monthly", show_default=True,
              help="When the cap resets ('none': a lifetime cap).")
@click.option("--expires", metavar="WHEN",
              help="Expiry: 30d, 12h, 45m, 2w, a date (2027-01-31, midnight UTC) or a time.")
@click.option("--refill", metavar="WHEN[:N]",
              help="unkey: refill the credits daily or monthly (to AMOUNT, or N), or none "
                   "[default: monthly, on today's day of the month].")
@click.option("--rate", "rates", metavar="N/s|N/m|N/h", multiple=True,
              help="unkey: a rate limit per second, minute or hour (repeatable).")
@click.option("--models", metavar="A,B",
              help="litellm: the models the key may call (comma-separated; default: all).")
@click.option("--rpm", type=click.IntRange(min=1), metavar="N",
              help="litellm: requests per minute the key may make.")
@click.option("--tpm", type=click.IntRange(min=1), metavar="N",
              help="litellm: tokens per minute the key may use.")
@click.option("-i", "--interactive", "ephemeral", is_flag=True,
              help="Ask for the master key now, use it once, and store it nowhere.")
@yes_option
@json_option
@verbose_option
def issue(platform: str, amount: str, name: str | None, prefix: str | None, agent: tuple[str, ...],
          period: str, expires: str | None, refill: str | None, rates: tuple[str, ...],
          models: str | None, rpm: int | None, tpm: int | None, ephemeral: bool,
          assume_yes: bool, as_json: bool) -> None:
    """Mint a key for PLATFORM whose cap of AMOUNT the provider enforces.

    \b
      capit openrouter 5.00                       $5.00/month, key on stdout
      capit openrouter 5.00 --name claude --prefix prod
      capit openrouter 5.00 --agent env           prints: export OPENROUTER_API_KEY=...
      capit openrouter 20 --period weekly --expires 30d
      capit openrouter 1.00 -i                    management key asked for, kept nowhere
      capit unkey 100 --name my-api --prefix prod 100 credits/month (Unkey key prod_...)
      capit unkey 100 --rate 10/m --refill daily  ... refilled daily, 10 calls a minute
      capit litellm 5.00 --models gpt-4o --rpm 60 a $5/month LiteLLM proxy virtual key

    AMOUNT is in dollars (5, 5.00 or $5; whole cents) for openrouter and litellm; for
    unkey it is a number of verifications (credits), not dollars. Dollar caps above
    $1,000 ask for confirmation unless -y is given. Options marked unkey: or litellm:
    apply to that platform only.
    """
    from capit.issuing import confirm_amount, mint_all
    from capit.money import make_key_name, parse_expires
    from capit.platforms import KeyRequest, require_platform

    plat = require_platform(platform)
    value = plat.parse_cap(amount)
    when = parse_expires(expires) if expires else None
    consumers = _consumers(agent, plat)
    consumer = consumers[0] if consumers else None
    key_name = make_key_name(prefix, _name_part(name, consumer, len(consumers)))
    # platform-dependent options, as given; the platform refuses those it does not take
    options: dict[str, object] = {"prefix": prefix, "refill": refill, "rate": list(rates),
                                  "models": models, "rpm": rpm, "tpm": tpm}
    source = click.get_current_context().get_parameter_source("period")
    if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
        options["period"] = period
    request = KeyRequest(name=key_name, amount=value, period=period, expires_at=when,
                         options={k: v for k, v in options.items() if v not in (None, [])})
    plat.check_request(request)
    confirm_amount(plat, value, assume_yes)

    cap_home = home()
    if ephemeral:
        from capit.stores.ephemeral import read_master

        master = read_master(plat, note=" (used once, not stored)")
    else:
        from capit.stores import MasterKeys

        master = MasterKeys(cap_home).get(plat.name)

    jobs = [(request, consumer)] + [
        (replace(request, name=make_key_name(prefix, _name_part(name, other, len(consumers)))),
         other) for other in consumers[1:]]
    outcomes = mint_all(cap_home, plat, master, jobs, assume_yes=assume_yes)
    if as_json:
        docs = [_issued_json(o.key, o.delivery) for o in outcomes]
        if len(docs) == 1:
            emit_json("key.issued", docs[0])
        else:
            emit_json("keys.issued", docs)
        return
    for outcome in outcomes:
        _report(plat, outcome.key, outcome.delivery)


def _consumers(agents: tuple[str, ...], plat: Any) -> list[Any]:
    """The consumers named by --agent, checked before anything is minted."""
    from capit.consumers import require_consumer

    if len(set(agents)) != len(agents):
        raise usage("an agent is named twice; each --agent gets one key")
    consumers = [require_consumer(a) for a in agents]
    for consumer in consumers:
        if not consumer.supports(plat):
            raise usage(f"agent {consumer.name!r} cannot use {plat.name} keys "
                        f"({consumer.unsupported_reason(plat)}); nothing was minted")
        consumer.check(plat)
    return consumers


def _name_part(name: str | None, consumer: Any, count: int) -> str | None:
    """The name part of a key: --name, else the agent's name; with several agents both."""
    if consumer is None:
        return name
    if count > 1 and name:
        return f"{name}-{consumer.name}"
    return name or consumer.name


def _issued_json(key: Any, delivery: Any) -> dict[str, Any]:
    return {
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
    }


def _report(plat: Any, key: Any, delivery: Any) -> None:
    from capit import ui

    expiry = f", expires {key.expires_at}" if key.expires_at else ""
    ui.info(f"Minted {key.platform} key {key.name} ({key.hash[:16]}): {key.describe_cap()} cap"
            f"{plat.cap_note} enforced by {plat.title or plat.name}{expiry}.")
    if delivery is None:
        ui.result(key.secret.reveal())
        return
    if delivery.output:
        ui.result(delivery.output)
        ui.info(delivery.summary)
    else:
        ui.result(delivery.summary)
    for note in delivery.notes:
        ui.info(note)

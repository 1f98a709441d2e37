"""``capit sandbox`` (a local OpenRouter-compatible provider) and ``capit demo``."""

from __future__ import annotations

import click

from capit.cli._common import verbose_option


def _parse_money(value: str, what: str) -> object:
    from decimal import Decimal, InvalidOperation

    from capit.errors import usage

    try:
        amount = Decimal(value.lstrip("$"))
    except InvalidOperation:
        raise usage(f"{what} must be a dollar amount, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise usage(f"{what} must be a non-negative dollar amount, got {value!r}")
    return amount


@click.command("sandbox")
@click.option("--port", type=click.IntRange(0, 65535), default=8788, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--cost", default="0.25", show_default=True,
              help="Dollars charged per /chat/completions or /messages call.")
@click.option("--credits", "credits_", default="100", show_default=True,
              help="The sandbox account's credits in dollars.")
@click.option("--key-file", type=click.Path(dir_okay=False, writable=True),
              help="Also write the sandbox management key to this file (mode 0600).")
@verbose_option
def sandbox(port: int, cost: str, credits_: str, key_file: str | None) -> None:
    """Run a local OpenRouter-compatible provider: no account, no money.

    It serves the key-management API capit uses (with OpenRouter's error shapes,
    paging and auth rules) and billed /chat/completions and /messages endpoints that
    charge the calling key and answer 402 once its cap is spent. Below /unkey it serves
    Unkey's v2 key API (keys.verifyKey spends credits) and below /litellm a LiteLLM
    proxy's /key/* API with billed /chat/completions that enforce each key's budget.
    """
    import time
    from pathlib import Path

    from capit import ui
    from capit.errors import CapitError, ExitCode
    from capit.fsutil import atomic_write
    from capit.money import format_usd
    from capit.sandbox.server import Sandbox

    per_call = _parse_money(cost, "--cost")
    sb = Sandbox(cost=per_call, credits=_parse_money(credits_, "--credits"))
    try:
        sb.start("127.0.0.1", port)
    except OSError as exc:
        raise CapitError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}",
                         ExitCode.STATE) from None
    if key_file:
        atomic_write(Path(key_file), (sb.management_key + "\n").encode(), what="key file")
    ui.result("capit sandbox: an OpenRouter-compatible provider on this machine (fake money).")
    ui.result(f"  base URL        {sb.base_url}")
    ui.result(f"  Anthropic URL   {sb.anthropic_base_url}")
    ui.result(f"  management key  {sb.management_key}")
    ui.result(f"  cost per call   {format_usd(per_call)}")
    ui.result("Unkey v2 (caps count verifications: credits, not dollars):")
    ui.result(f"  base URL        {sb.unkey_base_url}")
    ui.result(f"  root key        {sb.unkey.root_key}")
    ui.result(f"  API id          {sb.unkey.api_id}")
    ui.result("LiteLLM proxy (virtual keys with dollar budgets, spent by /chat/completions):")
    ui.result(f"  proxy URL       {sb.litellm_base_url}")
    ui.result(f"  master key      {sb.litellm.master_key}")
    ui.result("Try it in another terminal:")
    ui.result(f"  export CAPIT_OPENROUTER_BASE_URL={sb.base_url}")
    ui.result("  capit openrouter 1.00 -i        # paste the management key above")
    ui.result(f"  export CAPIT_UNKEY_BASE_URL={sb.unkey_base_url}")
    ui.result("  capit unkey 100 --name my-api --prefix prod -i   # root key, then API id")
    ui.result(f"  capit litellm 5.00 -i           # master key, then {sb.litellm_base_url}")
    ui.result("Ctrl-C stops the sandbox.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()
    ui.info("sandbox stopped")


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep the throwaway capit home afterwards.")
@verbose_option
def demo(keep: bool) -> None:
    """Run the whole flow against a local sandbox, in a throwaway capit home.

    Creates a vault, stores the sandbox's management key, mints a $1 key, spends
    through it until the sandbox answers 402, lists keys with usage, and revokes the key.
    """
    from capit.demo import run_demo

    run_demo(keep=keep)

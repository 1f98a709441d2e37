"""capit's command line.

The seed's spellings (``capit openrouter 5.00``, ``capit --keys list``, ``capit --platforms``)
are translated into ordinary subcommands (``capit issue openrouter 5.00``,
``capit keys list``, ``capit platforms``) before click parses them, so ``--help`` shows one
tree.  :func:`main` turns every error into one line on stderr and a documented exit code.
"""

from __future__ import annotations

import sys

import click

from capit import __version__
from capit.cli import _common
from capit.cli._common import verbose_option
from capit.errors import CapitError, ExitCode

SEED_FLAGS = {
    "--keys": "keys",
    "--platforms": "platforms",
    "--stores": "stores",
    "--consumers": "consumers",
}
_GLOBAL_FLAGS = {"-v", "--verbose"}


def translate(args: list[str], commands: set[str]) -> list[str]:
    """Map the seed's command forms onto subcommands."""
    out = list(args)
    i = 0
    while i < len(out) and out[i] in _GLOBAL_FLAGS:
        i += 1
    if i < len(out):
        first = out[i]
        if first in SEED_FLAGS:
            out[i] = SEED_FLAGS[first]
        elif first.startswith("--") and "=" in first and first.split("=", 1)[0] in SEED_FLAGS:
            name, _, value = first.partition("=")
            out[i:i + 1] = [SEED_FLAGS[name], value]
        elif not first.startswith("-") and first not in commands:
            out.insert(i, "issue")
    return out


class CapitGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, translate(args, set(self.commands)))

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage("capit", "PLATFORM AMOUNT [OPTIONS] | COMMAND [ARGS]...")


@click.group(cls=CapitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="capit")
@verbose_option
def cli() -> None:
    """Mint API keys with a spending cap the provider enforces, and hand them to your agents.

    \b
      capit openrouter 5.00                 a $5/month OpenRouter key, printed
      capit openrouter 5.00 --agent env     ... as an export line
      capit openrouter 5.00 -i              ask for the management key, store nothing
      capit --keys add openrouter           keep the management key in the vault
      capit --keys list -r openrouter       keys on OpenRouter, with usage
      capit --keys delete openrouter HASH   revoke one
      capit demo                            the whole flow against a local sandbox

    'capit PLATFORM AMOUNT' is short for 'capit issue PLATFORM AMOUNT'; the 0.1.0 forms
    --keys, --platforms, --stores and --consumers are the commands of the same names.
    """


def _register() -> None:
    from capit.cli import info, issue, keys, sandbox, uninstall, vault

    cli.add_command(issue.issue)
    cli.add_command(keys.keys)
    cli.add_command(vault.vault)
    cli.add_command(info.platforms)
    cli.add_command(info.stores)
    cli.add_command(info.consumers)
    cli.add_command(uninstall.uninstall)
    cli.add_command(uninstall.uninstall, name="revoke")
    cli.add_command(sandbox.sandbox)
    cli.add_command(sandbox.demo)


_register()


def _fail(message: str, code: int) -> None:
    from capit.secret import scrub

    click.echo(f"capit: {scrub(message)}", err=True)
    sys.exit(int(code))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``capit`` console script and ``python -m capit``."""
    try:
        rv = cli.main(args=argv, prog_name="capit", standalone_mode=False)
    except CapitError as exc:
        _fail(f"error: {exc.message}", exc.code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail("interrupted; nothing more was done", ExitCode.INTERRUPTED)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "capit"
        _fail(f"error: {exc.format_message()} (see: {where} --help)", ExitCode.USAGE)
    except click.ClickException as exc:
        _fail(f"error: {exc.format_message()}", exc.exit_code or ExitCode.USAGE)
    except BrokenPipeError:
        sys.exit(int(ExitCode.OK))
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        import traceback

        from capit.secret import scrub

        if _common.state["verbose"]:
            click.echo(scrub(traceback.format_exc()), err=True)
        detail = scrub(str(exc)).splitlines()[0][:200] if str(exc) else ""
        _fail(
            f"internal error: {type(exc).__name__}{': ' + detail if detail else ''} "
            "(this is a bug in capit; rerun with -v for details)",
            ExitCode.INTERNAL,
        )
    sys.exit(rv if isinstance(rv, int) else 0)

"""The ``rollgate`` command line.

One error handler for every command: a RollgateError (harness, machine or
usage) prints ``rollgate: error: ...`` and exits 2; a CloudFailure exits 1;
Ctrl-C (after the command's own cleanup ran) exits 2, never 1: an interrupted
run judged nothing.
Commands live in ``harness.commands.*`` and are registered here.
"""
from __future__ import annotations

import logging
import sys
from typing import Any

import click

from harness import __version__
from harness.errors import EXIT_ERROR, CloudFailure, RollgateError


class RollgateGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RollgateError as exc:
            click.echo(f"rollgate: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except CloudFailure as exc:
            click.echo(f"rollgate: FAIL: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("rollgate: error: interrupted", err=True)
            sys.exit(EXIT_ERROR)


@click.group(cls=RollgateGroup)
@click.version_option(__version__, prog_name="rollgate")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """rollgate: gate rolling upgrades of OpenStack-style clouds."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _register() -> None:
    from harness.commands import catalog, cloud, images, matrix, observe, plan, report, run, runs, upgrade

    for module in (cloud, runs, images, observe, plan, report, run, matrix, catalog, upgrade):
        for command in module.COMMANDS:
            main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="rollgate")

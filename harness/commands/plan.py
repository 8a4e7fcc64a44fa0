"""``rollgate plan SCENARIO``: print the upgrade plan before anything runs.

The plan is data: printed for people, or as JSON (``--json``) to save, diff
and replay. The seed is ``--seed``, else the scenario's ``seed``, else a fresh
random one; it is always printed, because the same seed gives the same plan.
"""
from __future__ import annotations

from pathlib import Path

import click


@click.command("plan")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of every random choice (default: the scenario's, else random).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also save the plan as JSON to this file.")
def plan_command(scenario: Path, seed: int | None, as_json: bool, output: Path | None) -> None:
    """Print the upgrade plan of SCENARIO (validated first; nothing is touched).

    The validation is `rollgate run`'s own: a scenario `plan` accepts, `run` starts; one `run`
    refuses, `plan` refuses with the same one-line error (exit 2). The plan is the one `run`
    follows (with its hold step and rollback point).
    """
    from harness.gate.validate import check_runnable  # imports the gate: not needed for --help

    plan = check_runnable(scenario, seed).plan
    if output is not None:
        plan.save(output)
    click.echo(plan.to_json() if as_json else plan.render(), nl=False)


COMMANDS = (plan_command,)

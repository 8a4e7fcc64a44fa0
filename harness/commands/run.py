"""``rollgate run SCENARIO``: the gate. Plan first, progress, verdict, reports, cleanup.

Exit 0 PASS, 1 FAIL (the cloud broke a promise), 2 ERROR (the harness or the
machine failed, or bad input): a gate retries ERROR and never FAIL. The
verdict and its reports are written in every case, under ``results/<run-id>/``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from harness.errors import UsageError
from harness.gate import GateOptions, describe_result, prepare, run_gate
from harness.runstate import RunState, check_run_id, new_run_id

#: the scenario `rollgate run` runs when given none: the repository's, not the current directory's
DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "rolling-upgrade.yaml"


def default_scenario() -> Path:
    """The default gate's scenario, found next to the harness (a UsageError when the harness was
    installed without its repository, e.g. from a wheel)."""
    if not DEFAULT_SCENARIO.is_file():
        raise UsageError(f"SCENARIO: not given, and the default {DEFAULT_SCENARIO} does not exist (it ships "
                         "with the repository, not with an installed package); give a SCENARIO file")
    return DEFAULT_SCENARIO


@click.command("run")
@click.argument("scenario", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--backend", type=click.Choice(["process", "docker"]), default="process", show_default=True,
              help="Where the hosts live.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of every random choice (default: the scenario's, else random; always printed).")
@click.option("--run-id", default=None, help="Run id (default: a new one); results go to results/<run-id>/.")
@click.option("--keep", is_flag=True, help="Leave the cloud running afterwards (debugging; `rollgate down`).")
def run_command(scenario: Path | None, backend: str, seed: int | None, run_id: str | None,
                keep: bool) -> None:
    """Run SCENARIO as a gate: deploy, upgrade under traffic, judge. Exit 0 PASS, 1 FAIL, 2 ERROR.

    Without SCENARIO, the default gate: scenarios/rolling-upgrade.yaml of the repository this
    harness lives in (found next to the harness, whatever the current directory).
    """
    scenario = scenario or default_scenario()
    run_id = check_run_id(run_id or new_run_id())
    try:
        existing = RunState.load(run_id)
    except UsageError:
        existing = None
    if existing is not None:
        raise UsageError(f"run {run_id} already exists in {existing.directory}; choose another --run-id")
    options = GateOptions(backend=backend, seed=seed, run_id=run_id, keep=keep)
    run = prepare(scenario, options, run_id)
    click.echo(run.plan.render(), nl=False)
    click.echo(f"run {run_id}: results in {run.run_dir}")
    verdict = run_gate(run, options, lambda line: click.echo(f"[{run_id}] {line}"))
    for check in verdict.checks:
        click.echo(f"  {check.status.upper():<8} {check.id}: {check.summary}")
    click.echo(verdict.recap())
    click.echo(json.dumps(describe_result(verdict)))
    click.echo(f"report: {run.run_dir / 'report.html'}")
    if keep:
        click.echo(f"cloud left running (--keep): stop it with `rollgate down {run_id}`")
    sys.exit(verdict.exit_code)


COMMANDS = [run_command]

"""``rollgate observe RUN_ID --duration S [-- COMMAND ...]``: judge a running cloud under traffic.

Any external upgrade tool can be judged this way: the command runs after a
baseline, as the timeline's one step, and the SLOs compare the phases. Exit 0
PASS, 1 FAIL (an SLO violated, or the command failed), 2 ERROR (the cloud could
not be reached, Locust could not run, bad input).
"""
from __future__ import annotations

from pathlib import Path

import click
import yaml

from harness.errors import CloudFailure, UsageError
from harness.runstate import RunState
from harness.traffic.config import SloConfig, TrafficConfig, parse_slo, parse_traffic
from harness.traffic.discovery import discover
from harness.traffic.observation import ObservationSpec, observe


def load_settings(path: Path | None) -> tuple[TrafficConfig, SloConfig]:
    """The ``traffic:`` and ``slo:`` mappings of a YAML file (a scenario file works), else defaults."""
    if path is None:
        return parse_traffic(None), parse_slo(None)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must be a mapping with optional traffic: and slo: keys")
    return parse_traffic(data.get("traffic"), str(path)), parse_slo(data.get("slo"), str(path))


@click.command("observe", context_settings={"ignore_unknown_options": True})
@click.argument("run_id")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds of traffic (without a command).")
@click.option("--baseline", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="With a command: seconds of traffic before it (the latency baseline).")
@click.option("--settle", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="With a command: seconds of traffic after it.")
@click.option("--command-timeout", type=click.FloatRange(min=0, min_open=True), default=3600.0,
              show_default=True, help="The command is killed after this many seconds.")
@click.option("--seed-instances", type=click.IntRange(min=0), default=2, show_default=True,
              help="Boot servers until this many have a data plane to watch.")
@click.option("--settings", "settings_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML file with traffic: and slo: mappings (a scenario file works).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def observe_command(run_id: str, duration: float | None, baseline: float, settle: float,
                    command_timeout: float, seed_instances: int, settings_path: Path | None,
                    command: tuple[str, ...]) -> None:
    """Send traffic to RUN_ID's cloud for --duration seconds, or while COMMAND runs; judge it."""
    if not command and duration is None:
        raise UsageError("give --duration SECONDS, or a command after `--` to observe while it runs")
    traffic, slo = load_settings(settings_path)
    state = RunState.load(run_id)
    clouds_yaml = state.directory / "clouds.yaml"
    if not clouds_yaml.exists():
        raise UsageError(f"run {run_id}: {clouds_yaml} does not exist (is the cloud up?)")
    api_targets, instances, token = discover(clouds_yaml, "rollgate", traffic, seed=seed_instances)
    click.echo(f"observing run {run_id}: API {', '.join(t.name for t in api_targets) or '-'}; "
               f"instances {', '.join(i.name for i in instances) or '-'}")
    spec = ObservationSpec(duration_s=duration or 0.0, command=command, baseline_s=baseline,
                           settle_s=settle, command_timeout_s=command_timeout)
    result = observe(state.directory, clouds_yaml, api_targets, instances, token, spec, traffic, slo)
    report = result.report
    counts = report.counts
    click.echo(f"{counts['requests']} requests ({counts['failed_api_requests']} failed API, "
               f"{counts['failed_dataplane_requests']} failed data-plane), {len(report.outages)} outages, "
               f"{report.acknowledged_writes} writes acknowledged, {len(report.lost)} lost")
    for violation in report.violations:
        click.echo(f"  VIOLATION {violation.slo} {violation.target}: {violation.message}"
                   + (f" [{violation.error}]" if violation.error else ""))
    click.echo(f"outages: {result.outages_path}; verdict: {result.verdict_path}")
    if not report.passed:
        raise CloudFailure(f"{len(report.violations)} SLO violations (see {result.verdict_path})")
    click.echo("PASS")


COMMANDS = [observe_command]

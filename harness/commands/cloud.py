"""``rollgate up``, ``fault`` and ``smoke``: a cloud's lifecycle (``down`` and ``status``:
``harness.commands.runs``)."""
from __future__ import annotations

import dataclasses
import time

import click

from harness import clouds
from harness.backends import BACKENDS, make_backend, procutil
from harness.backends.process import ProcessBackend
from harness.clouds.base import UpRequest
from harness.deploy import all_in_one, deploy
from harness.errors import UsageError
from harness.runstate import RunState, check_run_id, new_run_id
from harness.timeline import FAULT, Timeline

CLOUDS = tuple(clouds.registry())


@click.command()
@click.argument("scenario", required=False, type=click.Path(dir_okay=False))
@click.option("--cloud", "cloud_name", type=click.Choice(CLOUDS), default=clouds.DEFAULT_CLOUD,
              show_default=True,
              help="What to deploy: the simulated minicloud, or real OpenStack (Keystone, Placement, "
                   "Nova with the fake driver; Docker only).")
@click.option("--release", default=None,
              help="Release of every service (all-in-one only) [default: " + ", ".join(
                  f"{p.default_release} for {p.name}" for p in clouds.registry().values()) + "].")
@click.option("--computes", default=3, show_default=True, type=int,
              help="Number of compute hosts (all-in-one only).")
@click.option("--run-id", default=None, help="Run id (default: a new one).")
@click.option("--backend", "backend_name", type=click.Choice(sorted(BACKENDS)), default=None,
              help="Where hosts live: local processes or Docker containers "
                   "[default: " + ", ".join(
                       f"{p.backends[0]} for {p.name}" for p in clouds.registry().values()) + "].")
def up(scenario: str | None, cloud_name: str, release: str | None, computes: int, run_id: str | None,
       backend_name: str | None) -> None:
    """Start a cloud (on loopback, or in Docker) and leave it running.

    With SCENARIO, its topology (hosts, roles, releases; a load balancer in
    front of the controllers where it has one). Without, an all-in-one cloud:
    ``controller`` and ``compute-1`` ... ``compute-N``. Writes
    ``results/<run-id>/clouds.yaml`` (cloud ``rollgate``, admin credentials).
    ``--cloud openstack`` deploys real OpenStack on Docker (all-in-one only).
    """
    profile = clouds.profile(cloud_name)
    request = UpRequest(scenario, release or profile.default_release, computes,
                        backend_name or profile.backends[0])
    profile.check_up(request)
    other = next((p for p in clouds.registry().values()
                  if p is not profile and request.release in p.releases), None)
    if other is not None and request.release not in profile.releases:
        raise UsageError(f"--release {request.release}: an {other.name} release; add --cloud {other.name}")
    if scenario:
        from harness.scenario.load import load_scenario

        request = dataclasses.replace(request, loaded=load_scenario(scenario))
    request = profile.prepare_up(request)
    run_id = _new_run(run_id)
    try:
        for line in profile.up(run_id, request):
            click.echo(line)
        click.echo(f"stop it with: rollgate down {run_id}")
    except KeyboardInterrupt:
        _stop_interrupted(profile, run_id)
        raise


def _stop_interrupted(profile: clouds.CloudProfile, run_id: str) -> None:
    """Ctrl-C after the deploy was done but before ``up`` returned: the command was still
    interrupted, so nothing of it may stay running (a failed deploy has cleaned up already).
    Seen under load: the signal landed between the deploy's return and the exit."""
    try:
        state = RunState.load(run_id)
    except UsageError:
        return
    if state.status == "up":
        profile.destroy_run(state)
        state.status = "failed"
        state.save()


def _new_run(run_id: str | None) -> str:
    """A valid run id that no running or deploying run uses."""
    run_id = check_run_id(run_id or new_run_id())
    try:
        existing = RunState.load(run_id)
    except UsageError:
        existing = None
    if existing and existing.status in ("up", "deploying"):
        raise UsageError(f"run {run_id} exists and is {existing.status}; `rollgate down {run_id}` first")
    return run_id


@click.command()
@click.argument("run_id")
@click.argument("host")
@click.argument("service")
@click.option("--kill", "action", flag_value="kill", help="SIGKILL the service (it stays down).")
@click.option("--stop-for", type=float, default=None,
              help="Stop the service (SIGTERM) for SECONDS, then start it again.")
def fault(run_id: str, host: str, service: str, action: str | None, stop_for: float | None) -> None:
    """Inject a fault into a running cloud: kill a service, or stop it for a while."""
    if (action is None) == (stop_for is None):
        raise UsageError("give exactly one of --kill or --stop-for SECONDS")
    state = RunState.load(run_id)
    profile = clouds.registry().get(state.cloud)
    if profile is None or not profile.faults:
        able = " and ".join(p.name for p in clouds.registry().values() if p.faults)
        raise UsageError(f"run {run_id} is an {state.cloud} cloud: `rollgate fault` drives {able} only "
                         "so far")
    backend = make_backend(state.backend, state)
    if isinstance(backend, ProcessBackend):
        svc = backend._service(host, service)
        if not svc.pid or not procutil.alive(svc.pid):
            raise UsageError(f"{service} on {host} is not running")
    elif not backend.is_running(host, service):
        raise UsageError(f"{service} on {host} is not running")
    with Timeline(state.directory / "timeline.jsonl") as timeline:
        if action == "kill":
            timeline.emit({"kind": FAULT, "host": host, "service": service, "action": "kill"})
            backend.kill_service(host, service)
            click.echo(f"killed {service} on {host}")
            return
        assert stop_for is not None
        # A stop is real: SIGTERM (the listener closes, clients are refused),
        # S seconds down, then the same release starts again. The events mark
        # when it stopped and when it answered again: the true outage window.
        stopped = time.monotonic()
        timeline.emit({"kind": FAULT, "host": host, "service": service, "action": "stop",
                       "t": stopped, "duration": stop_for})
        backend.stop_service(host, service)
        time.sleep(max(0.0, stop_for - (time.monotonic() - stopped)))  # the fault's length, not a wait
        backend.start_service(host, service)
        timeline.emit({"kind": FAULT, "host": host, "service": service, "action": "ready",
                       "t": time.monotonic(), "stopped": stopped})
        click.echo(f"stopped {service} on {host} for {stop_for}s; back after "
                   f"{time.monotonic() - stopped:.2f}s")


@click.command()
@click.option("--release", default="1.0", show_default=True, help="minicloud release of every service.")
@click.option("--computes", default=3, show_default=True, type=int, help="Number of compute hosts.")
@click.option("--run-id", default=None, help="Run id (default: a new one).")
@click.option("--keep", is_flag=True, help="Leave the cloud running afterwards (for debugging).")
def smoke(release: str, computes: int, run_id: str | None, keep: bool) -> None:
    """Start minicloud, run the smoke check, stop it. Exit 0 PASS, 1 FAIL, 2 ERROR."""
    from harness.smoke import run_smoke

    run_id = check_run_id(run_id or new_run_id())
    state = RunState(run_id=run_id, backend="process")
    backend = None
    try:
        backend = deploy(state, all_in_one(release, computes))
        click.echo(f"run {run_id}: minicloud {release} up in {state.extra['deploy_seconds']}s")
        for line in run_smoke(state):
            click.echo(f"  ok: {line}")
        click.echo(f"PASS: smoke check of minicloud {release} (results/{run_id})")
    finally:
        if backend is not None and not keep:
            backend.destroy()


COMMANDS = [up, fault, smoke]  # down and status: harness.commands.runs

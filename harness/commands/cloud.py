"""``rollgate up``, ``down``, ``status`` and ``fault``: a cloud's lifecycle."""
from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

import click

from harness.backends import BACKENDS, make_backend, procutil
from harness.backends.base import HostSpec
from harness.backends.docker_openstack import OpenStackContainers
from harness.backends.docker_resources import check_scenario_images, docker_client, reap
from harness.backends.process import ProcessBackend
from harness.clouds.openstack import DEFAULT_RELEASE as DEFAULT_OPENSTACK_RELEASE
from harness.clouds.openstack import check_computes
from harness.clouds.openstack import check_release as check_openstack_release
from harness.clouds.openstack_deploy import deploy_openstack, service_health
from harness.deploy import all_in_one, deploy
from harness.errors import UsageError
from harness.runstate import RunState, check_run_id, list_runs, new_run_id
from harness.timeline import FAULT, Timeline
from harness.waiting import http_ok

CLOUDS = ("minicloud", "openstack")
DEFAULT_RELEASE = {"minicloud": "1.0", "openstack": DEFAULT_OPENSTACK_RELEASE}


@click.command()
@click.argument("scenario", required=False, type=click.Path(dir_okay=False))
@click.option("--cloud", "cloud_name", type=click.Choice(CLOUDS), default="minicloud", show_default=True,
              help="What to deploy: the simulated minicloud, or real OpenStack (Keystone, Placement, "
                   "Nova with the fake driver; Docker only).")
@click.option("--release", default=None,
              help="Release of every service (all-in-one only) [default: 1.0 for minicloud, "
                   f"{DEFAULT_OPENSTACK_RELEASE} for openstack].")
@click.option("--computes", default=3, show_default=True, type=int,
              help="Number of compute hosts (all-in-one only).")
@click.option("--run-id", default=None, help="Run id (default: a new one).")
@click.option("--backend", "backend_name", type=click.Choice(sorted(BACKENDS)), default=None,
              help="Where hosts live: local processes or Docker containers "
                   "[default: process for minicloud, docker for openstack].")
def up(scenario: str | None, cloud_name: str, release: str | None, computes: int, run_id: str | None,
       backend_name: str | None) -> None:
    """Start a cloud (on loopback, or in Docker) and leave it running.

    With SCENARIO, its topology (hosts, roles, releases; a load balancer in
    front of the controllers where it has one). Without, an all-in-one cloud:
    ``controller`` and ``compute-1`` ... ``compute-N``. Writes
    ``results/<run-id>/clouds.yaml`` (cloud ``rollgate``, admin credentials).
    ``--cloud openstack`` deploys real OpenStack on Docker (all-in-one only).
    """
    release = release or DEFAULT_RELEASE[cloud_name]
    if cloud_name == "openstack":
        _up_openstack(scenario, release, computes, run_id, backend_name or "docker")
        return
    backend_name = backend_name or "process"
    if not check_openstack_release(release):
        raise UsageError(f"--release {release}: an openstack release; add --cloud openstack")
    if scenario:
        from harness.scenario import load_scenario

        loaded = load_scenario(scenario)
        if backend_name == "docker":
            check_scenario_images(loaded, docker_client())
        hosts = [h.to_spec() for h in loaded.topology.hosts]
    else:
        hosts = all_in_one(release, computes)
        if backend_name == "docker":  # PostgreSQL is the docker backend's database
            hosts.append(HostSpec("db", ("db",), {}))
    run_id = _new_run(run_id)
    state = RunState(run_id=run_id, backend=backend_name)
    deploy(state, hosts)
    click.echo(f"run {run_id}: up on {backend_name} in {state.extra['deploy_seconds']}s")
    click.echo(f"  clouds.yaml: {state.directory / 'clouds.yaml'} (cloud: rollgate)")
    for host in state.hosts.values():
        click.echo(f"  {host.name:<12} {host.address:<15} " + ", ".join(
            f"{s}@{v.release}" for s, v in host.services.items()))
    click.echo(f"stop it with: rollgate down {run_id}")


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


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _up_openstack(scenario: str | None, release: str, computes: int, run_id: str | None,
                  backend_name: str) -> None:
    """``up --cloud openstack``: checked here so that bad input starts nothing."""
    if scenario:
        raise UsageError("SCENARIO: --cloud openstack deploys the all-in-one topology only for now; "
                         "drop SCENARIO and use --release/--computes")
    if backend_name != "docker":
        raise UsageError(f"--backend {backend_name}: --cloud openstack runs only in Docker containers; "
                         "use --backend docker (its default)")
    for flag, problem in (("--release", check_openstack_release(release)),
                          ("--computes", check_computes(computes))):
        if problem:
            raise UsageError(f"{flag}: {problem}")
    run_id = _new_run(run_id)
    state = RunState(run_id=run_id, backend="docker", cloud="openstack")
    with _sigterm_as_interrupt():  # a CI timeout's SIGTERM cleans up like Ctrl-C
        deploy_openstack(state, release, computes)
    info = state.extra["openstack"]
    click.echo(f"run {run_id}: openstack {release} up on docker in {state.extra['deploy_seconds']}s "
               f"(peak RSS of the cloud while deploying: {info['peak_rss_bytes'] / 2**30:.2f} GiB)")
    click.echo("  phases (s since start): " + ", ".join(f"{n} {t}" for n, t in info["phases"].items()))
    click.echo(f"  clouds.yaml: {state.directory / 'clouds.yaml'} (clouds: rollgate, rollgate-demo)")
    for kind, url in state.endpoints.items():
        click.echo(f"  {kind:<10} {url}")
    for host in state.hosts.values():
        click.echo(f"  {host.name:<12} " + ", ".join(f"{s}@{v.release}" for s, v in host.services.items()))
    click.echo(f"stop it with: rollgate down {run_id}")


@click.command()
@click.argument("run_id", required=False)
@click.option("--all", "all_runs", is_flag=True, help="Stop every rollgate run on this machine.")
def down(run_id: str | None, all_runs: bool) -> None:
    """Stop everything of a run (also one whose `up` was killed)."""
    if bool(run_id) == all_runs:
        raise UsageError("give a RUN_ID or --all")
    if all_runs:
        pids = procutil.reap(None)
        containers = _reap_docker(None)
        for state in list_runs():
            if state.status != "down":
                state.status = "down"
                state.save()
        click.echo(f"stopped {len(pids)} processes and removed {containers} of all runs")
        return
    assert run_id is not None
    check_run_id(run_id)
    pids = procutil.reap(run_id)
    try:
        state = RunState.load(run_id)
    except UsageError:
        containers = _reap_docker(run_id)
        if not pids and containers == "nothing in Docker":
            raise
        click.echo(f"run {run_id}: no run.json; stopped {len(pids)} tagged processes, "
                   f"removed {containers}")
        return
    if state.backend == "process":
        ProcessBackend(state).destroy()
        click.echo(f"run {run_id}: down ({len(pids)} processes stopped)")
        return
    if state.cloud == "openstack":  # its containers are named per release: its own destroy keeps their logs
        OpenStackContainers(state, docker_client()).destroy()
        state.status = "down"
        state.save()
    else:
        make_backend(state.backend, state).destroy()
    containers = _reap_docker(run_id)  # anything the run.json did not know of
    click.echo(f"run {run_id}: down ({len(pids)} processes stopped; docker: {containers})")


def _reap_docker(run_id: str | None) -> str:
    """Remove a run's (or every run's) containers, volumes and networks by label, when
    there is a Docker engine; runs of the process backend have none."""
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
    except Exception:  # no SDK, no engine: nothing of ours can be there
        return "nothing in Docker"
    counts = reap(client, run_id)
    if not any(counts.values()):
        return "nothing in Docker"
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def _health(address: str, port: int | None) -> str:
    if not port:
        return "-"
    try:
        return "ok" if http_ok(f"http://{address}:{port}/healthz", timeout=1.0) else "bad"
    except OSError:
        return "down"


@click.command()
@click.argument("run_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(run_id: str | None, as_json: bool) -> None:
    """Show runs, or one run's hosts, services, releases and health."""
    runs = [RunState.load(run_id)] if run_id else list_runs()
    out: list[dict[str, Any]] = []
    for state in runs:
        hosts = {}
        # an openstack service has no /healthz: its container's state, and its API through the lb
        openstack = service_health(state) if state.cloud == "openstack" and state.status == "up" else {}
        for host in state.hosts.values():
            hosts[host.name] = {
                "address": host.address, "roles": host.roles,
                "services": {s: {"release": v.release, "pid": v.pid,
                                 "health": openstack.get((host.name, s), "-") if state.cloud == "openstack"
                                 else _health(host.address, v.port) if state.status == "up" else "-"}
                             for s, v in host.services.items()}}
        out.append({"run_id": state.run_id, "status": state.status, "backend": state.backend,
                    "cloud": state.cloud, "endpoints": state.endpoints, "hosts": hosts})
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    if not out:
        click.echo("no runs")
    for run in out:
        click.echo(f"{run['run_id']}  {run['status']}  ({run['cloud']} on {run['backend']})")
        if run_id:
            for name, host in run["hosts"].items():
                for service, info in host["services"].items():
                    click.echo(f"  {name:<12} {host['address']:<15} {service:<14} "
                               f"{info['release']:<14} {info['health']}")


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
    if state.cloud != "minicloud":
        raise UsageError(f"run {run_id} is an {state.cloud} cloud: `rollgate fault` drives minicloud only "
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


COMMANDS = [up, down, status, fault, smoke]

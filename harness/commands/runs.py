"""``rollgate down`` and ``rollgate status``: the runs of this results root, or of the machine.

A run belongs to the results root it was started with (``harness.ownership``):
``down ID``, ``down --all`` and ``status`` act on this root's runs only;
``--machine-wide`` on every rollgate run on the machine.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from harness import clouds
from harness.backends import procutil
from harness.backends.docker_resources import owners as docker_owners
from harness.backends.docker_resources import reap
from harness.backends.process import ProcessBackend
from harness.errors import UsageError
from harness.ownership import NO_ROOT, Owner, root_tag, within
from harness.runstate import RunState, check_run_id, list_runs, mark_down, results_root
from harness.waiting import http_ok

MACHINE_WIDE_HELP = ("every rollgate run on this machine: of every results root, checkout and user, "
                     "and those of an older rollgate whose objects carry no results root")


@click.command()
@click.argument("run_id", required=False)
@click.option("--all", "all_runs", is_flag=True,
              help="Stop every run of this results root ($ROLLGATE_RESULTS or ./results) and of the "
                   "roots below it (the runs `rollgate matrix` and `rollgate catalog` put there): the "
                   "runs whose processes and Docker objects carry its path; other roots' runs are left "
                   "alone.")
@click.option("--machine-wide", is_flag=True, help=f"Stop {MACHINE_WIDE_HELP}.")
def down(run_id: str | None, all_runs: bool, machine_wide: bool) -> None:
    """Stop everything of a run (also one whose `up` was killed).

    Runs belong to the results root they were started with ($ROLLGATE_RESULTS
    or ./results, resolved): `down ID` and `down --all` touch only this root's
    processes, containers, networks and volumes, and say what they left.
    `--machine-wide` stops every rollgate run on the machine, whoever started it.
    """
    if sum((bool(run_id), all_runs, machine_wide)) != 1:
        raise UsageError("give one of RUN_ID, --all (this results root's runs) or --machine-wide "
                         "(every rollgate run on this machine)")
    root = root_tag()
    if all_runs or machine_wide:
        scope = None if machine_wide else root
        owners = _owners(with_docker=machine_wide)
        pids = procutil.reap(None, root=scope, nested=True)
        containers = _reap_docker(None, scope, nested=True)
        for stopped in {results_root(), *(Path(o.root) for o in owners if machine_wide and o.root)}:
            mark_down(stopped)  # their run.json files say so (where this user may write)
        where = ("every results root on this machine" if machine_wide
                 else f"results root {root} and the roots below it")
        click.echo(f"stopped {len(pids)} processes and removed {containers} of the runs of {where}")
        if not machine_wide:
            others = {o for o in _owners(with_docker=True) if not within(o.root, root, nested=True)}
            if others:
                click.echo(f"left alone: {len(others)} runs of other results roots or of an older "
                           "rollgate (see `rollgate status --machine-wide`; `rollgate down --machine-wide` "
                           "stops them)")
        else:
            for owner in sorted((o for o in owners if o.root is None), key=Owner.sort_key):
                click.echo(f"  also stopped run {owner.run_id}, which carried no results root "
                           "(an older rollgate)")
        return
    assert run_id is not None
    check_run_id(run_id)
    pids = procutil.reap(run_id, root=root)
    try:
        state = RunState.load(run_id)
    except UsageError:
        containers = _reap_docker(run_id, root)
        if not pids and containers == "nothing in Docker":
            _explain_others(run_id)
            raise
        click.echo(f"run {run_id}: no run.json; stopped {len(pids)} tagged processes, "
                   f"removed {containers}")
        return
    if state.backend == "process":
        ProcessBackend(state).destroy()
        click.echo(f"run {run_id}: down ({len(pids)} processes stopped)")
        _explain_others(run_id)
        return
    clouds.profile(state.cloud).destroy_run(state)
    containers = _reap_docker(run_id, root)  # anything the run.json did not know of
    click.echo(f"run {run_id}: down ({len(pids)} processes stopped; docker: {containers})")
    _explain_others(run_id)


def _explain_others(run_id: str) -> None:
    """Say so when processes of this run id that are not this root's were left running."""
    others = [p for p in procutil.tagged_processes()
              if p.owner.run_id == run_id and p.owner.root != root_tag()]
    if others:
        roots = sorted({p.owner.root_label for p in others})
        click.echo(f"run {run_id}: left {len(others)} processes with this run id that belong to "
                   f"{', '.join(roots)}, not to results root {root_tag()} (`rollgate down --machine-wide` "
                   "stops them)", err=True)


def _docker_or_none(timeout: int = 60) -> Any:
    """A Docker client that answered a ping, or None (no SDK, no engine: nothing of ours there)."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception:
        return None
    return client


def _reap_docker(run_id: str | None, root: str | None, nested: bool = False) -> str:
    """Remove a run's (or every run's) containers, volumes and networks by label, of the
    results root ``root`` (of any, when None), when there is a Docker engine."""
    client = _docker_or_none()
    if client is None:
        return "nothing in Docker"
    counts = reap(client, run_id, root=root, nested=nested)
    if not any(counts.values()):
        return "nothing in Docker"
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


def _owners(with_docker: bool) -> dict[Owner, list[str]]:
    """Every run with a tagged process (and, ``with_docker``, a labelled Docker object) on this
    machine, any results root, and what of it was found (``3 processes``, ``5 docker objects``)."""
    found: dict[Owner, list[str]] = {}
    processes: dict[Owner, int] = {}
    for process in procutil.tagged_processes():
        processes[process.owner] = processes.get(process.owner, 0) + 1
    for owner, count in processes.items():
        found.setdefault(owner, []).append(f"{count} processes")
    client = _docker_or_none(timeout=10) if with_docker else None
    if client is not None:
        for owner, count in docker_owners(client).items():
            found.setdefault(owner, []).append(f"{count} docker objects")
    return found


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
@click.option("--machine-wide", is_flag=True,
              help=f"List {MACHINE_WIDE_HELP}, found from the tags of their processes and Docker "
                   "objects, by results root.")
def status(run_id: str | None, as_json: bool, machine_wide: bool) -> None:
    """Show the runs of this results root ($ROLLGATE_RESULTS or ./results, printed), or one
    run's hosts, services, releases and health."""
    if machine_wide:
        if run_id:
            raise UsageError("give RUN_ID or --machine-wide, not both")
        _status_machine_wide(as_json)
        return
    root = results_root()
    runs = [RunState.load(run_id)] if run_id else list_runs()
    out: list[dict[str, Any]] = []
    for state in runs:
        hosts = {}
        # a cloud whose services have no /healthz says how they are (its profile's service_health)
        health = clouds.profile(state.cloud).service_health(state)
        for host in state.hosts.values():
            hosts[host.name] = {
                "address": host.address, "roles": host.roles,
                "services": {s: {"release": v.release, "pid": v.pid,
                                 "health": health.get((host.name, s), "-") if health is not None
                                 else _health(host.address, v.port) if state.status == "up" else "-"}
                             for s, v in host.services.items()}}
        out.append({"run_id": state.run_id, "status": state.status, "backend": state.backend,
                    "cloud": state.cloud, "endpoints": state.endpoints, "hosts": hosts,
                    "results_root": str(root)})
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"results root {root} ($ROLLGATE_RESULTS or ./results): "
               + (f"{len(out)} runs" if out else "no runs"))
    for run in out:
        click.echo(f"{run['run_id']}  {run['status']}  ({run['cloud']} on {run['backend']})")
        if run_id:
            for name, host in run["hosts"].items():
                for service, info in host["services"].items():
                    click.echo(f"  {name:<12} {host['address']:<15} {service:<14} "
                               f"{info['release']:<14} {info['health']}")
    if not run_id:
        elsewhere = {o for o in _owners(with_docker=False) if o.root != str(root)}
        if elsewhere:
            click.echo(f"({len(elsewhere)} runs of other results roots, or of an older rollgate, have "
                       "processes on this machine: `rollgate status --machine-wide`)")


def _status_machine_wide(as_json: bool) -> None:
    """Every results root found in the tags, its runs (from its run.json files where readable),
    and the runs whose objects carry no root (an older rollgate)."""
    owners = _owners(with_docker=True)
    roots = sorted({o.root for o in owners if o.root is not None} | {str(results_root())})
    out: list[dict[str, Any]] = []
    for root in roots:
        recorded = {state.run_id: state for state in list_runs(Path(root))}
        live = {o.run_id: found for o, found in owners.items() if o.root == root}
        for run in sorted(set(recorded) | set(live)):
            state = recorded.get(run)
            out.append({"results_root": root, "run_id": run,
                        "status": state.status if state else "no run.json",
                        "backend": state.backend if state else None,
                        "cloud": state.cloud if state else None, "found": live.get(run, [])})
    for owner, found in sorted(owners.items(), key=lambda item: item[0].sort_key()):
        if owner.root is None:
            out.append({"results_root": None, "run_id": owner.run_id, "status": "untagged",
                        "backend": None, "cloud": None, "found": found})
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"every rollgate run on this machine (results roots from the tags of processes and "
               f"Docker objects, and this one): {len(out)} runs")
    for shown in [*roots, None]:
        entries = [r for r in out if r["results_root"] == shown]
        if not entries:
            continue
        click.echo(f"results root {shown}:" if shown is not None else f"{NO_ROOT}:")
        for entry in entries:
            where = f" ({entry['cloud']} on {entry['backend']})" if entry["backend"] else ""
            click.echo(f"  {entry['run_id']}  {entry['status']}{where}  "
                       f"{', '.join(entry['found']) or 'nothing running'}")
    if any(r["results_root"] is None for r in out):
        click.echo(f"runs with {NO_ROOT} belong to no root: `rollgate down --all` leaves them, only "
                   "`rollgate down --machine-wide` stops them")



COMMANDS = [down, status]

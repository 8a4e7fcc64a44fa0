"""minicloud outside a gate run: ``rollgate up`` of it, and the plan of an upgrade or rolling
reboot of a running one (its deployed topology read back as a scenario, validated like a file)."""
from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from harness.backends.base import HostSpec
from harness.clouds.base import UpRequest
from harness.clouds.minicloud.ops import MINICLOUD_SERVICES
from harness.clouds.minicloud.scenario import build_minicloud_scenario
from harness.errors import UsageError
from harness.executor.plan import Plan, plan_upgrade
from harness.runstate import RunState
from harness.scenario import DATA_PLANE_SERVICES, Scenario, release_key
from harness.scenario.rules import check_schema, parse_with


def prepare_up(request: UpRequest) -> UpRequest:
    """The hosts of SCENARIO (loaded by the command; its images checked on Docker), or the
    all-in-one topology."""
    from harness.backends.docker_resources import check_scenario_images, docker_client
    from harness.deploy import all_in_one

    if request.loaded is not None:
        loaded = request.loaded
        if request.backend == "docker":
            check_scenario_images(loaded, docker_client())
        hosts = [h.to_spec() for h in loaded.topology.hosts]
    else:
        hosts = all_in_one(request.release, request.computes)
        if request.backend == "docker":  # PostgreSQL is the docker backend's database
            hosts.append(HostSpec("db", ("db",), {}))
    return dataclasses.replace(request, hosts=tuple(hosts))


def up(run_id: str, request: UpRequest) -> list[str]:
    from harness.deploy import deploy

    state = RunState(run_id=run_id, backend=request.backend)
    deploy(state, list(request.hosts))
    return [f"run {run_id}: up on {request.backend} in {state.extra['deploy_seconds']}s",
            f"  clouds.yaml: {state.directory / 'clouds.yaml'} (cloud: rollgate)",
            *(f"  {host.name:<12} {host.address:<15} " + ", ".join(
                f"{s}@{v.release}" for s, v in host.services.items()) for host in state.hosts.values())]


def _oldest_upgradable(state: RunState) -> str:
    labels = [svc.release for host in state.hosts.values() for name, svc in host.services.items()
              if name in MINICLOUD_SERVICES and name not in DATA_PLANE_SERVICES]
    if not labels:
        raise UsageError(f"run {state.run_id} runs no upgradable minicloud service")
    return min(labels, key=release_key)


def scenario_for_run(state: RunState, action: str, target: str | None,
                     policy: dict[str, Any], label: str) -> Scenario:
    """The run's deployed topology + this upgrade, validated exactly like a scenario file."""
    source = _oldest_upgradable(state)
    hosts = [{"name": host.name, "roles": list(host.roles),
              "releases": {s: v.release for s, v in host.services.items() if s in MINICLOUD_SERVICES}}
             for host in state.hosts.values()]
    for entry in hosts:
        if not entry["releases"]:
            del entry["releases"]
    upgrade: dict[str, Any] = {"from": source, "action": action, "policy": policy}
    if target is not None:
        upgrade["to"] = target
    raw = {"name": state.run_id, "topology": {"hosts": hosts}, "upgrade": upgrade}
    check_schema(raw, label)
    return parse_with(raw, label, build_minicloud_scenario)


def plan_for_run(state: RunState, action: str, target: str | None, policy: dict[str, Any],
                 seed: int | None, label: str) -> Plan:
    scenario = scenario_for_run(state, action, target, policy, label)
    assert scenario.upgrade is not None
    chosen = seed if seed is not None else secrets.randbelow(2**31)
    return plan_upgrade(scenario.name, scenario.topology, scenario.upgrade, chosen)

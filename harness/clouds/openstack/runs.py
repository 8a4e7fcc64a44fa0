"""The openstack profile outside a gate run: ``rollgate up --cloud openstack``, its ``down`` and
``status``, and the plan and operations of ``rollgate upgrade`` of a running one."""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from harness.backends import docker_resources as res
from harness.backends.procutil import sigterm_as_interrupt
from harness.clouds import openstack as profile
from harness.clouds.base import UpRequest
from harness.clouds.openstack.containers import OpenStackContainers
from harness.clouds.openstack.deploy import deploy_openstack, service_health
from harness.clouds.openstack.ops import OpenStackOps
from harness.clouds.openstack.plan import plan_for_run as plan_openstack_run
from harness.errors import UsageError
from harness.executor.plan import Plan
from harness.runstate import RunState


def check_up(request: UpRequest) -> None:
    """``up --cloud openstack``: checked here so that bad input starts nothing."""
    if request.scenario:
        raise UsageError("SCENARIO: --cloud openstack deploys the all-in-one topology only for now; "
                         "drop SCENARIO and use --release/--computes")
    if request.backend != "docker":
        raise UsageError(f"--backend {request.backend}: --cloud openstack runs only in Docker containers; "
                         "use --backend docker (its default)")
    for flag, problem in (("--release", profile.check_release(request.release)),
                          ("--computes", profile.check_computes(request.computes))):
        if problem:
            raise UsageError(f"{flag}: {problem}")


def up(run_id: str, request: UpRequest) -> list[str]:
    state = RunState(run_id=run_id, backend="docker", cloud="openstack")
    with sigterm_as_interrupt():  # a CI timeout's SIGTERM cleans up like Ctrl-C
        deploy_openstack(state, request.release, request.computes)
    info = state.extra["openstack"]
    return [f"run {run_id}: openstack {request.release} up on docker in {state.extra['deploy_seconds']}s "
            f"(peak RSS of the cloud while deploying: {info['peak_rss_bytes'] / 2**30:.2f} GiB)",
            "  phases (s since start): " + ", ".join(f"{n} {t}" for n, t in info["phases"].items()),
            f"  clouds.yaml: {state.directory / 'clouds.yaml'} (clouds: rollgate, rollgate-demo)",
            *(f"  {kind:<10} {url}" for kind, url in state.endpoints.items()),
            *(f"  {host.name:<12} " + ", ".join(f"{s}@{v.release}" for s, v in host.services.items())
              for host in state.hosts.values())]


def destroy_run(state: RunState) -> None:
    """Its containers are named per release: its own destroy keeps their logs."""
    OpenStackContainers(state, res.docker_client()).destroy()
    state.status = "down"
    state.save()


def health(state: RunState) -> Mapping[tuple[str, str], str]:
    """An openstack service has no /healthz: its container's state, and its API through the lb."""
    return service_health(state) if state.status == "up" else {}


def plan_for_run(state: RunState, action: str, target: str | None, policy: dict[str, Any],
                 seed: int | None, label: str) -> Plan:
    if action != "upgrade" or target is None:
        raise UsageError(f"{label}: the openstack profile wires upgrades to a release only, not {action}")
    chosen = seed if seed is not None else secrets.randbelow(2**31)
    plan = plan_openstack_run(state, target, policy, chosen, label)  # validated before anything changes
    # A missing target image is an ERROR naming the build command, before any step runs.
    OpenStackContainers(state, res.docker_client()).ensure_images(
        {profile.openstack_tag(target): f"the upgrade to {target}"}, profile.build_command(target))
    return plan


def run_ops(state: RunState, plan: Plan) -> OpenStackOps:
    drain = bool(plan.policy.get("api_drain", True))
    return OpenStackOps(state, target_release=plan.to_release, api_drain=drain)

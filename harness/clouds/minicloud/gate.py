"""minicloud in a gate run: deployed through ``harness.deploy``, operated through ``MinicloudOps``.

``GateCloud`` is minicloud's ``harness.clouds.base.DeployedCloud`` (the openstack
profile's is ``harness.clouds.openstack.gate.OpenStackGateCloud``). The gate
needs a few things beyond the executor's ``CloudOps``: connections as admin
and as a non-admin user, the compute API stopped and started on every
controller (the "API down" resource phase), and each service's address and
port (to ask it which release it runs). They are gathered here so the run
module reads as the sequence of stages it is.
"""
from __future__ import annotations

import importlib
import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import deploy as deploy_module
from harness.checks.logscan import version_check, version_violations
from harness.clouds.nova_compute import wait_compute_api
from harness.errors import UsageError
from harness.executor.ops import CloudOps
from harness.resources import ResourcePhases, ResourceSpec
from harness.runstate import RunState
from harness.scenario import DATA_PLANE_SERVICES, Scenario
from harness.timeline import Timeline
from harness.verdict import Check, Releases

COMPUTE_API = "compute-api"
BACKENDS = ("process", "docker")


def deploy_on(state: RunState, scenario: Scenario, backend: str) -> Any:
    """``deploy(state, hosts)`` on the run's backend (``state.backend``, set from ``--backend``)."""
    if backend not in BACKENDS:
        raise UsageError(f"--backend: unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    state.backend = backend
    # minicloud's test hooks for holding requests and casts in flight (X-Minicloud-Debug-Delay,
    # X-Minicloud-Debug-Hold): the shutdown probe (harness.gate.shutdown_probe) needs them.
    state.extra.setdefault("config_overrides", {}).setdefault("debug_delay", True)
    return deploy_module.deploy(state, [h.to_spec() for h in scenario.topology.hosts])


def _ops_class() -> Any:
    try:
        module = importlib.import_module("harness.clouds.minicloud.ops")
    except ModuleNotFoundError as exc:
        raise UsageError("harness.clouds.minicloud.ops (the executor's minicloud operations) is not "
                         "installed: a gate run cannot upgrade anything") from exc
    return module.MinicloudOps


@dataclass
class GateCloud:
    state: RunState
    backend: Any
    _stopped: list[str] = field(default_factory=list)  # hosts whose compute-api the gate stopped

    def ops(self, scenario: Scenario) -> CloudOps:
        """The executor's operations on this cloud (``MinicloudOps(backend, state, scenario)``)."""
        ops: CloudOps = _ops_class()(self.backend, self.state, scenario)
        return ops

    def connect(self) -> Any:
        return deploy_module.connect(self.state)

    def resource_phases(self, run_dir: Path, spec: ResourceSpec, timeline: Timeline) -> ResourcePhases:
        return ResourcePhases(run_dir, self.connect, spec, timeline)

    def engine_alive(self) -> bool:
        return bool(self.backend.engine_alive())

    def infra_alive(self) -> bool:
        """minicloud's database is one of its hosts: its failures are the cloud's (health gates)."""
        return True

    def no_dataplane(self) -> str | None:
        """Why the cloud has no data plane to judge (None: minicloud's instances are processes)."""
        return None

    def final_releases(self) -> Releases:
        return service_releases(self.service_ports())

    def end_checks(self, expected: str) -> list[Check]:
        """Every service logged only versioned objects its peers accept (harness.checks.logscan)."""
        return [version_check(version_violations(self.services(), self.backend.logs))]

    def connect_demo(self) -> Any:
        return deploy_module.connect(self.state, "rollgate-demo")

    def controllers(self) -> list[str]:
        return [h.name for h in self.state.hosts.values() if COMPUTE_API in h.services]

    def compute_api_url(self) -> str:
        """The public compute endpoint (the load balancer where there is one)."""
        return self.state.endpoints.get("compute_public", "") or self._public_compute()

    def _public_compute(self) -> str:
        host = self.state.hosts[self.controllers()[0]]
        lbs = [h for h in self.state.hosts.values() if "lb" in h.roles]
        address = lbs[0].address if lbs else host.address
        port = host.services[COMPUTE_API].port
        return f"http://{address}:{port}/"

    def stop_compute_api(self) -> list[str]:
        """Stop the compute API on every controller (gracefully); return where."""
        stopped = []
        for host in self.controllers():
            self._stopped.append(host)
            self.backend.stop_service(host, COMPUTE_API)
            stopped.append(f"{host}/{COMPUTE_API}")
        return stopped

    def start_compute_api(self) -> None:
        """Start every compute API again and wait until the public API answers reliably."""
        while self._stopped:
            self.backend.start_service(self._stopped.pop(0), COMPUTE_API)
        wait_compute_api(self.connect(), timeout=30.0, interval=0.2)

    def service_ports(self) -> Mapping[str, tuple[str, Mapping[str, int | None]]]:
        return {h.name: (h.address, {s: v.port for s, v in h.services.items()})
                for h in self.state.hosts.values()}

    def services(self) -> list[tuple[str, str]]:
        """(host, service) of every service of the run."""
        return [(h.name, s) for h in self.state.hosts.values() for s in h.services]

    def destroy(self) -> None:
        self.backend.destroy()


def service_releases(hosts: Mapping[str, tuple[str, Mapping[str, int | None]]],
                     timeout: float = 2.0) -> Releases:
    """host -> service -> release, as each service's ``/healthz`` reports it (black box).

    ``hosts`` maps a host to (address, service -> port); data-plane services
    (never upgraded) and ports-less services are skipped. A service that does
    not answer reports ``down``.
    """
    releases: Releases = {}
    for host, (address, services) in sorted(hosts.items()):
        for service, port in sorted(services.items()):
            if port is None or service in DATA_PLANE_SERVICES:
                continue
            try:
                with urllib.request.urlopen(f"http://{address}:{port}/healthz", timeout=timeout) as answer:
                    release = str(json.loads(answer.read()).get("release", "?"))
            except (OSError, ValueError):
                release = "down"
            releases.setdefault(host, {})[service] = release
    return releases

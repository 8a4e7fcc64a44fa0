"""The cloud of one gate run: deployed through ``harness.deploy``, operated through ``MinicloudOps``.

The gate needs a few things beyond the executor's ``CloudOps``: connections
as admin and as a non-admin user, the compute API stopped and started on every
controller (the "API down" resource phase), and each service's address and
port (to ask it which release it runs). They are gathered here so the run
module reads as the sequence of stages it is.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness import deploy as deploy_module
from harness.errors import UsageError
from harness.executor.ops import CloudOps
from harness.runstate import RunState
from harness.scenario import Scenario
from harness.waiting import wait_until

COMPUTE_API = "compute-api"
BACKENDS = ("process", "docker")


def _deploy(state: RunState, scenario: Scenario, backend: str) -> Any:
    """``deploy(state, hosts)`` on the run's backend (``state.backend``, set from ``--backend``)."""
    if backend not in BACKENDS:
        raise UsageError(f"--backend: unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    state.backend = backend
    return deploy_module.deploy(state, [h.to_spec() for h in scenario.topology.hosts])


def _ops_class() -> Any:
    try:
        module = importlib.import_module("harness.clouds.minicloud_ops")
    except ModuleNotFoundError as exc:
        raise UsageError("harness.clouds.minicloud_ops (the executor's minicloud operations) is not "
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
        conn = self.connect()
        streak = [0]

        def answering() -> bool:
            try:
                list(conn.compute.flavors())
                streak[0] += 1
            except Exception:
                streak[0] = 0
                raise
            return streak[0] >= 5  # the load balancer has every backend back, not just one

        wait_until(answering, timeout=30.0, interval=0.2, what="the compute API after the API-down phase")

    def service_ports(self) -> Mapping[str, tuple[str, Mapping[str, int | None]]]:
        return {h.name: (h.address, {s: v.port for s, v in h.services.items()})
                for h in self.state.hosts.values()}

    def services(self) -> list[tuple[str, str]]:
        """(host, service) of every service of the run."""
        return [(h.name, s) for h in self.state.hosts.values() for s in h.services]

    def destroy(self) -> None:
        self.backend.destroy()


def open_cloud(state: RunState, scenario: Scenario, backend: str) -> GateCloud:
    """Deploy the scenario's topology (all-or-nothing) and wrap it."""
    return GateCloud(state, _deploy(state, scenario, backend))

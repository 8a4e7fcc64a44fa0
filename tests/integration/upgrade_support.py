"""Shared helpers of the issue-5 tests: one deployed default-topology cloud per module,
servers with data written through their floating addresses, and ways to crash the executor.

A module shares one cloud (a deploy costs ~6 s; an upgrade ~25 s): the cloud
fixture pins ``ROLLGATE_RESULTS`` for the whole module (it overrides the
per-test ``results_dir`` of conftest) and destroys the cloud afterwards,
failing if any process of the run survived.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.backends import procutil
from harness.backends.process import ProcessBackend
from harness.clouds.minicloud.health import floating_endpoint, healthz
from harness.clouds.minicloud.ops import MinicloudOps
from harness.deploy import connect, deploy
from harness.executor import Executor, Journal, Plan
from harness.executor.ops import HealthReport
from harness.runstate import RunState
from harness.scenario.load import load_scenario
from harness.timeline import Timeline, read_events

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "tests" / "fixtures" / "scenarios" / "valid" / "minimal.yaml"
WAIT = 60.0


class SimulatedCrash(BaseException):
    """The harness died here (like kill -9): nothing but the test catches it."""


@dataclass
class Seeded:
    """Servers and the keys written to each through its floating address."""

    data: dict[str, dict[str, str]] = field(default_factory=dict)  # server id -> key -> value
    endpoints: dict[str, str] = field(default_factory=dict)  # server id -> ip:port


@dataclass
class UpgradeCloud:
    run_id: str
    root: Path
    seeded: Seeded

    def state(self) -> RunState:
        """The run state as on disk now (CLI runs change releases and pids)."""
        return RunState.load(self.run_id)

    def ops(self, target: str = "1.1") -> MinicloudOps:
        state = self.state()
        return MinicloudOps(ProcessBackend(state), state, target_release=target)

    def rollgate(self, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                              text=True, check=False,
                              timeout=timeout, cwd=ROOT,
                              env={**os.environ, "ROLLGATE_RESULTS": str(self.root), **(env or {})})

    @property
    def directory(self) -> Path:
        return self.root / self.run_id


def deployed_cloud(tmp_path_factory: pytest.TempPathFactory, servers: int = 3) -> Iterator[UpgradeCloud]:
    """Deploy the default topology at 1.0, seed ``servers`` servers with data; destroy after."""
    root = tmp_path_factory.mktemp("upgrade-results")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROLLGATE_RESULTS", str(root))
        run_id = "u-" + secrets.token_hex(4)
        state = RunState(run_id=run_id, backend="process")
        scenario = load_scenario(MINIMAL)
        try:
            deploy(state, [h.to_spec() for h in scenario.topology.hosts])
            cloud = UpgradeCloud(run_id, root, seed_servers(state, servers))
            yield cloud
        finally:
            ProcessBackend(RunState.load(run_id)).destroy()
            left = procutil.tagged_pids(run_id)
            procutil.reap(run_id, root=None)
        assert left == [], f"processes of {run_id} left behind: {left}"


def seed_servers(state: RunState, count: int) -> Seeded:
    """Boot ``count`` servers (spread over the computes) and write three keys to each."""
    conn = connect(state)
    image = next(iter(conn.image.images()))
    flavor = next(f for f in conn.compute.flavors() if f.name == "m1.tiny")
    created = [conn.compute.create_server(name=f"upgrade-{i}", image_id=image.id, flavor_id=flavor.id,
                                          networks="none") for i in range(count)]
    seeded = Seeded()
    for server in created:
        active = conn.compute.wait_for_server(server, status="ACTIVE", wait=WAIT, interval=0.1)
        endpoint = floating_endpoint(active)
        assert endpoint is not None, active
        values = {f"key-{n}": f"{active.id}-{n}-{secrets.token_hex(4)}" for n in range(3)}
        for key, value in values.items():
            request = urllib.request.Request(f"http://{endpoint}/kv/{key}", data=value.encode(), method="PUT")
            with urllib.request.urlopen(request, timeout=5) as answer:
                assert 200 <= answer.status < 300
        seeded.data[active.id] = values
        seeded.endpoints[active.id] = endpoint
    return seeded


def data_problems(state: RunState, seeded: Seeded) -> list[str]:
    """Every seeded server ACTIVE, and every key readable with its value through the floating address."""
    conn = connect(state)
    problems = []
    for server_id, values in seeded.data.items():
        server = conn.compute.get_server(server_id)
        if server.status != "ACTIVE":
            problems.append(f"{server_id}: {server.status}")
            continue
        endpoint = floating_endpoint(server)
        for key, value in values.items():
            try:
                with urllib.request.urlopen(f"http://{endpoint}/kv/{key}", timeout=5) as answer:
                    got = answer.read().decode()
            except Exception as exc:
                problems.append(f"{server_id} {key}: {exc}")
                continue
            if got != value:
                problems.append(f"{server_id} {key}: {got!r} != {value!r}")
    return problems


def upgradable_releases(cloud: UpgradeCloud) -> dict[str, str | None]:
    """``host/service`` -> release its /healthz reports, for every upgradable service."""
    state = cloud.state()
    backend = ProcessBackend(state)
    out: dict[str, str | None] = {}
    for host in state.hosts.values():
        for service in host.services:
            if service in ("haproxy", "hypervisor", "datapath"):
                continue
            try:
                location = backend.service_address(host.name, service)
                out[f"{host.name}/{service}"] = healthz(location)["release"]
            except Exception:
                out[f"{host.name}/{service}"] = None
    return out


def db_heads(cloud: UpgradeCloud) -> dict[str, str]:
    return cloud.ops().db_version()


def step_events(cloud: UpgradeCloud) -> list[dict[str, Any]]:
    return [e for e in read_events(cloud.directory / "timeline.jsonl") if e.get("kind") == "step"]


def health(cloud: UpgradeCloud, release: str, timeout: float = 30.0) -> HealthReport:
    ops = cloud.ops()
    return ops.health_gate(ops.expected_everywhere(release), timeout)


class CrashAfterEffect:
    """A ``CloudOps`` proxy that crashes right after the first operation of step ``step_id``
    returns: the effect is in place, the journal still says the step is only begun."""

    def __init__(self, ops: MinicloudOps, step_id: str, current: list[str]) -> None:
        self._ops = ops
        self._step_id = step_id
        self._current = current

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._ops, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if self._current and self._current[-1] == self._step_id:
                raise SimulatedCrash(f"crash after {name} in {self._step_id}")
            return result

        return call


class StepTracker(Timeline):
    """The run's timeline, also recording which step runs (and crashing at a step's end if asked)."""

    def __init__(self, path: Path, crash_at_end_of: str | None = None) -> None:
        self.current: list[str] = []
        self.crash_at_end_of = crash_at_end_of
        super().__init__(path)  # may emit the header: the fields above must exist

    def emit(self, event: dict[str, Any]) -> None:
        super().emit(event)
        if event.get("kind") == "step" and event.get("phase") == "start":
            self.current.append(str(event["step_id"]))
        if (event.get("kind") == "step" and event.get("phase") == "end"
                and event.get("step_id") == self.crash_at_end_of and event.get("direction") == "forward"):
            raise SimulatedCrash(f"crash after the end of {self.crash_at_end_of}")


def executor(cloud: UpgradeCloud, plan: Plan, journal: Path, timeline: StepTracker,
             crash_mid: str | None = None) -> Executor:
    """An executor on the cloud as it is now; ``crash_mid`` crashes after that step's first effect."""
    ops: Any = cloud.ops(plan.to_release)
    if crash_mid is not None:
        ops = CrashAfterEffect(ops, crash_mid, timeline.current)
    return Executor(plan, ops, Journal(journal, durable=False), timeline)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def completed_migrations(cloud: UpgradeCloud) -> list[str]:
    """Server id of every completed live migration (os-migrations), oldest first."""
    conn = connect(cloud.state())
    rows = [m for m in conn.compute.migrations() if m.status == "completed"]
    return [str(m.server_id) for m in rows]

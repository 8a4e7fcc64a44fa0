"""The minicloud health gate fails at once on problems the cloud will not mend (issue 11: fail fast)."""
from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from harness.clouds.minicloud import health
from harness.clouds.minicloud import ops as minicloud_ops
from harness.clouds.minicloud.health import DATA_PATH_GRACE, TERMINAL_POLLS, CloudProbe
from harness.clouds.minicloud.ops import MinicloudOps


class ScriptedProbe:
    """Answers each pass with the next scripted (problems, terminal) pair, the last one forever."""

    def __init__(self, passes: list[tuple[list[str], set[str]]]) -> None:
        self.passes = passes
        self.calls = 0
        self.begun = 0
        self.terminal: set[str] = set()

    def begin(self) -> None:
        self.begun += 1

    def problems(self, expected: Mapping[str, Mapping[str, str]]) -> list[str]:
        problems, self.terminal = self.passes[min(self.calls, len(self.passes) - 1)]
        self.calls += 1
        return problems


def _ops(probe: Any) -> MinicloudOps:
    ops = object.__new__(MinicloudOps)
    ops.probe = probe
    return ops


def test_the_gate_fails_at_the_first_terminal_problem_not_at_the_timeout(monkeypatch) -> None:
    monkeypatch.setattr(minicloud_ops, "POLL", 0.0)
    error = "server s1 (x) is in ERROR"
    probe = ScriptedProbe([(["agent down"], set()), ([error], {error})])
    report = _ops(probe).health_gate({}, timeout=3600)
    assert not report.ok
    assert report.problems == (error,)
    assert (probe.calls, probe.begun) == (2, 1)


def test_transient_problems_are_waited_for_until_the_timeout(monkeypatch) -> None:
    monkeypatch.setattr(minicloud_ops, "POLL", 0.001)
    probe = ScriptedProbe([(["compute-1/compute-agent: /healthz unreachable"], set())])
    report = _ops(probe).health_gate({}, timeout=0.05)
    assert not report.ok
    assert probe.calls > TERMINAL_POLLS


# --- which problems are terminal: CloudProbe over a scripted cloud and clock ------------------

class Cloud:
    """One scripted cloud: services healthy or not, servers ACTIVE or ERROR, data paths up or not."""

    def __init__(self) -> None:
        self.services_ok = True
        self.agent_up = True
        self.status = "ACTIVE"
        self.path_ok = False
        self.now = 0.0

    def conn(self) -> Any:
        cloud = self
        server = SimpleNamespace(id="s1", name="vm", status=cloud.status, fault=None,
                                 metadata={"dataplane_port": 2000},
                                 addresses={"public": [{"addr": "127.0.0.9"}]})
        agent = SimpleNamespace(host="compute-1", binary=health.COMPUTE_BINARY,
                                state="up" if cloud.agent_up else "down")
        compute = SimpleNamespace(services=lambda: [agent], servers=lambda **_: [server])
        return SimpleNamespace(compute=compute)

    def healthz(self, location: tuple[str, int], timeout: float = 0) -> dict[str, Any]:
        if not self.services_ok:
            raise ConnectionRefusedError("refused")
        return {"status": "ok", "release": "1.1"}

    def data_path(self, endpoint: str, timeout: float = 0) -> dict[str, Any]:
        if not self.path_ok:
            raise ConnectionRefusedError("refused")
        return {"status": "ok"}


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Cloud:
    cloud = Cloud()
    monkeypatch.setattr(health, "healthz", cloud.healthz)
    monkeypatch.setattr(health, "data_path_health", cloud.data_path)
    return cloud


def _probe(cloud: Cloud) -> CloudProbe:
    probe = CloudProbe({"compute-1": ("compute-agent",)}, ("compute-1",), lambda h, s: ("127.0.0.1", 1),
                       cloud.conn, lambda: None, clock=lambda: cloud.now)
    probe.begin()
    return probe


def _pass(probe: CloudProbe, cloud: Cloud, at: float) -> set[str]:
    cloud.now = at
    assert probe.problems({"compute-1": {"compute-agent": "1.1"}})
    return probe.terminal


def test_a_data_path_broken_while_every_service_is_healthy_is_terminal_after_the_grace(cloud) -> None:
    probe = _probe(cloud)
    assert _pass(probe, cloud, 0.0) == set()
    assert _pass(probe, cloud, DATA_PATH_GRACE - 0.1) == set()
    (terminal,) = _pass(probe, cloud, DATA_PATH_GRACE)
    assert "server s1 (vm): data path 127.0.0.9:2000" in terminal


def test_a_service_problem_restarts_the_data_paths_clock(cloud) -> None:
    probe = _probe(cloud)
    _pass(probe, cloud, 0.0)
    cloud.services_ok = False  # a restart in progress: the broken data path may be its doing
    assert _pass(probe, cloud, DATA_PATH_GRACE - 1) == set()
    cloud.services_ok = True
    assert _pass(probe, cloud, DATA_PATH_GRACE + 1) == set()  # its clock begins again now
    assert _pass(probe, cloud, 2 * DATA_PATH_GRACE + 1)


def test_a_down_compute_agent_also_restarts_the_clock(cloud) -> None:
    probe = _probe(cloud)
    _pass(probe, cloud, 0.0)
    cloud.agent_up = False
    assert _pass(probe, cloud, DATA_PATH_GRACE + 1) == set()


def test_a_new_gate_starts_its_own_clock(cloud) -> None:
    probe = _probe(cloud)
    _pass(probe, cloud, 0.0)
    probe.begin()  # e.g. the rollback's gate after the forward one failed
    assert _pass(probe, cloud, DATA_PATH_GRACE + 1) == set()


def test_a_server_in_error_is_terminal_after_a_few_passes_in_a_row(cloud) -> None:
    cloud.status = "ERROR"
    probe = _probe(cloud)
    for n in range(TERMINAL_POLLS - 1):
        assert _pass(probe, cloud, float(n)) == set()
    (terminal,) = _pass(probe, cloud, float(TERMINAL_POLLS))
    assert "is in ERROR" in terminal


def test_a_data_path_that_heals_is_forgotten(cloud) -> None:
    probe = _probe(cloud)
    _pass(probe, cloud, 0.0)
    cloud.path_ok = True
    cloud.now = 1.0
    assert probe.problems({}) == []
    cloud.path_ok = False
    assert _pass(probe, cloud, DATA_PATH_GRACE + 0.5) == set()

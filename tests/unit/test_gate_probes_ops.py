"""shutdown.inflight and maintenance.disabled-host: the judges, the log parsing, and the probes'
``around`` against a fake compute API (no cloud)."""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.gate import maintenance_probe as maint
from harness.gate import shutdown_probe as shut
from harness.gate.probe_api import Answer
from harness.gate.probes import ProbeContext
from harness.timeline import Timeline

LOG_STOP = ("2026-12-05 12:36:14,363 INFO compute-api controller-1 1.0 minicloud.api: debug delay 0.50s\n"
            "2026-12-05 12:36:14,422 INFO compute-api controller-1 1.0 minicloud.web: compute-api stopping: "
            "no new connections, draining in-flight requests\n")


def _work(ok: bool, detail: str = "HTTP 200", kind: str = "request") -> shut.HeldWork:
    return shut.HeldWork(kind, "controller-1/compute-api", "direct", 1.0, 2.0, ok, detail,
                         running_at_stop=True)


# --- shutdown.inflight ------------------------------------------------------------------

def test_inflight_fails_when_a_held_request_was_dropped_and_cites_the_services_log() -> None:
    dropped = "WARNING compute-api: requests still in flight after 0.0s; exiting anyway"
    check = shut.judge_inflight([_work(True), _work(False, "RemoteDisconnected: closed")],
                                {"controller-1/compute-api": [dropped]})
    assert check.status == "failed"
    assert "1 of 2" in check.summary
    assert any("RemoteDisconnected" in e.message for e in check.evidence)
    assert any(dropped in e.message for e in check.evidence)


def test_inflight_fails_when_a_held_build_never_left_build() -> None:
    lost = _work(False, "server x BUILD after 30 s (its build cast was lost)", kind="build")
    check = shut.judge_inflight([_work(True), lost])
    assert check.status == "failed"
    assert "cast was lost" in check.evidence[0].message


def test_inflight_passes_when_every_held_piece_of_work_completed() -> None:
    check = shut.judge_inflight([_work(True), _work(True, kind="build")])
    assert check.status == "passed"
    assert "1 request(s) and 1 build cast(s)" in check.summary
    assert "2 still running" in check.summary


def test_inflight_is_skipped_when_nothing_was_held() -> None:
    assert shut.judge_inflight([]).status == "skipped"


def test_stop_time_and_held_casts_are_read_from_the_services_log() -> None:
    began = shut.stop_began(LOG_STOP)
    assert began is not None
    assert shut.stop_began("no stop here\n") is None
    held = shut.held_casts("2026-12-05 12:36:14,100 INFO conductor c-1 1.0 minicloud.rpc: debug hold 0.50s "
                           "on cast build_instances (request req-1, instance abc-123)\n")
    assert list(held) == ["abc-123"]
    assert held["abc-123"] < began


class _FakeAccess:
    """A compute-api whose held requests answer ``answers`` in turn; its log grows as it is asked."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers
        self.log = ""
        self.delays: list[str] = []

    def direct(self, host: str, service: str) -> Any:
        access = self

        class Client:
            def slow_list(self, delay: str) -> Answer:
                access.delays.append(delay)
                access.log += f"x debug delay {delay}s on GET /v2.1/servers\n"
                return access.answers.pop(0)

        return Client()

    def logs(self, host: str, service: str) -> str:
        return self.log

    def stop(self, dropped: bool) -> None:
        self.log += LOG_STOP
        if dropped:
            self.log += "2026-12-05 12:36:14,430 WARNING x: requests still in flight after 0.0s\n"


def _run_stop(tmp_path: Path, answers: list[Answer], dropped: bool) -> Any:
    access = _FakeAccess(answers)
    with Timeline(tmp_path / "timeline.jsonl") as timeline:
        probe = shut.ShutdownProbe(access, timeline, hold_s=0.01)  # type: ignore[arg-type]
        with probe.around("replace_service", ("controller-1", "compute-api", "1.1", 10.0), {}):
            access.stop(dropped)
        probe.close()
        return probe.checks()[0]


def test_probe_fails_a_stop_that_reset_its_held_requests(tmp_path: Path) -> None:
    check = _run_stop(tmp_path, [Answer(200), Answer(0, error="RemoteDisconnected")], dropped=True)
    assert check.status == "failed"
    assert any("still in flight" in e.message for e in check.evidence)


def test_probe_passes_a_stop_that_let_its_held_requests_finish(tmp_path: Path) -> None:
    check = _run_stop(tmp_path, [Answer(200), Answer(200)], dropped=False)
    assert check.status == "passed", check.summary


def test_probe_holds_its_requests_until_the_stop_not_for_a_fixed_time(tmp_path: Path) -> None:
    """A fixed hold raced a late stop on a loaded machine: the probe asks for stop+S."""
    access = _FakeAccess([Answer(200), Answer(200)])
    with Timeline(tmp_path / "timeline.jsonl") as timeline:
        probe = shut.ShutdownProbe(access, timeline, hold_s=0.25)  # type: ignore[arg-type]
        with probe.around("replace_service", ("controller-1", "compute-api", "1.1", 10.0), {}):
            access.stop(False)
        probe.close()
    assert access.delays == ["stop+0.25", "stop+0.25"]


def test_probe_ignores_other_operations_and_services(tmp_path: Path) -> None:
    with Timeline(tmp_path / "timeline.jsonl") as timeline:
        probe = shut.ShutdownProbe(_FakeAccess([]), timeline)  # type: ignore[arg-type]
        for op, args in (("replace_service", ("compute-1", "compute-agent", "1.1", 10.0)),
                         ("live_migrate", ("i", "compute-1", 30.0))):
            assert isinstance(probe.around(op, args, {}), contextlib.nullcontext)
        assert probe.checks()[0].status == "skipped"


# --- maintenance.disabled-host ----------------------------------------------------------

def _window(host: str, placed_on: list[str | None]) -> maint.Window:
    window = maint.Window(host, 1.0, 2.0)
    window.boots = [maint.ProbeBoot(host, 1.0, f"s{i}", where, "ACTIVE" if where else "ERROR", 1.5)
                    for i, where in enumerate(placed_on)]
    return window


def test_disabled_host_fails_when_a_boot_lands_on_the_disabled_host() -> None:
    check = maint.judge_disabled_host([_window("compute-1", ["compute-2", "compute-3"]),
                                       _window("compute-2", ["compute-2", "compute-1"])])
    assert check.status == "failed"
    assert "1 of 4" in check.summary
    assert check.evidence[0].target == "compute-2"
    assert "OS-EXT-SRV-ATTR:host" in check.evidence[0].message


def test_disabled_host_passes_when_every_boot_lands_elsewhere() -> None:
    check = maint.judge_disabled_host([_window("compute-1", ["compute-2", "compute-3", None])],
                                      ["server s9 (ACTIVE) still there 15 s after its delete"])
    assert check.status == "passed"
    assert "1 not placed" in check.summary
    assert "not deleted: server s9" in check.summary


def test_disabled_host_is_an_error_when_no_boot_was_placed() -> None:
    assert maint.judge_disabled_host([_window("compute-1", [None, None])]).status == "error"
    assert maint.judge_disabled_host([]).status == "skipped"


class _FakeCompute:
    """Schedules every boot with ``place``; remembers deletes."""

    def __init__(self, place: Callable[[int], str]) -> None:
        self.place = place
        self.booted = 0
        self.deleted: list[str] = []

    def boot(self, name: str, headers: dict[str, str] | None = None) -> Answer:
        self.booted += 1
        return Answer(202, {"server": {"id": f"s{self.booted}"}})

    def wait_server(self, server_id: str, done: Any, timeout: float) -> dict[str, Any]:
        return {"status": "ACTIVE", "OS-EXT-SRV-ATTR:host": self.place(int(server_id[1:]))}

    def delete_settled(self, server_id: str, timeout: float) -> None:
        self.deleted.append(server_id)


class _MaintAccess:
    def __init__(self, compute: _FakeCompute) -> None:
        self.compute = compute

    def public(self) -> _FakeCompute:
        return self.compute


def _run_windows(tmp_path: Path, place: Callable[[int], str]) -> tuple[Any, _FakeCompute]:
    compute = _FakeCompute(place)
    with Timeline(tmp_path / "timeline.jsonl") as timeline:
        probe = maint.MaintenanceProbe(_MaintAccess(compute), timeline, boots=2)  # type: ignore[arg-type]
        for host in ("compute-1", "compute-2"):
            with probe.around("disable_compute", (host, "upgrade"), {}):
                pass
            probe.around("enable_compute", (host,), {})
        probe.close()
        return probe.checks()[0], compute


def test_maintenance_probe_fails_a_scheduler_that_uses_the_disabled_host(tmp_path: Path) -> None:
    check, compute = _run_windows(tmp_path, lambda n: "compute-1")
    assert check.status == "failed"  # the boots of compute-1's window went to compute-1
    assert sorted(compute.deleted) == [f"s{n}" for n in range(1, 9)]  # 2 windows x 2 waves x 2 boots


def test_maintenance_probe_boots_again_at_the_end_of_each_window(tmp_path: Path) -> None:
    # A least-loaded scheduler that ignores the disabled flag picks the host only once its
    # instances have left: only the second wave (s3, s4: compute-1's window, before its enable) shows it.
    check, _ = _run_windows(tmp_path, lambda n: "compute-1" if n in (3, 4) else "compute-3")
    assert check.status == "failed"
    assert "2 of 8" in check.summary


def test_maintenance_probe_passes_a_scheduler_that_avoids_it(tmp_path: Path) -> None:
    check, _ = _run_windows(tmp_path, lambda n: "compute-3")
    assert check.status == "passed", check.summary


def test_factories_skip_openstack() -> None:
    scenario = type("S", (), {"cloud": "openstack"})()
    context = ProbeContext(Path("."), None, scenario, object())  # type: ignore[arg-type]
    assert shut.shutdown_probe(context) is None
    assert maint.maintenance_probe(context) is None

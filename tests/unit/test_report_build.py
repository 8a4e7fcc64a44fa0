"""From a judged synthetic timeline to checks, releases and release swimlanes."""

from __future__ import annotations

from pathlib import Path

from harness.checks.slo import SloReport
from harness.report.build import executor_check, releases_check, slo_checks
from harness.report.releases import host_lanes, mixed_projects, releases_at, step_spans
from harness.traffic.config import SloConfig
from harness.verdict import FAIL, FAILED, PASSED, SKIPPED
from tests.unit.report_synthetic import INITIAL, OUTAGE_ERROR, write_synthetic_run


def test_synthetic_run_fails_on_the_outage_and_the_gap_with_evidence(tmp_path: Path) -> None:
    verdict = write_synthetic_run(tmp_path, events=2000)
    assert verdict.verdict == FAIL
    failed = {c.id: c for c in verdict.checks if c.status == FAILED}
    assert set(failed) == {"slo.failed_api_requests", "slo.dataplane_gap", "slo.dataplane_failed"}
    api = failed["slo.failed_api_requests"]
    assert {e.target for e in api.evidence} == {"compute/new", "compute/reused"}
    assert all(e.error == OUTAGE_ERROR and e.window and e.events for e in api.evidence)
    assert verdict.check("releases.final").status == PASSED
    # At the first failure (the compute-api outage on controller-1) that service had not been replaced.
    assert verdict.releases_at_failure is not None
    assert verdict.releases_at_failure["controller-1"]["compute-api"] == "1.0"
    assert verdict.releases_at_failure["controller-1"]["identity"] == "1.1"
    assert verdict.releases == {h: dict.fromkeys(s, "1.1") for h, s in INITIAL.items()}


def test_clean_synthetic_run_passes(tmp_path: Path) -> None:
    verdict = write_synthetic_run(tmp_path, events=2000, outage=False, gap=False)
    assert verdict.verdict == "PASS", verdict.recap()
    assert verdict.releases_at_failure is None


def _steps() -> list[dict[str, object]]:
    def pair(t0: float, t1: float, host: str, service: str, outcome: str = "ok") -> list[dict[str, object]]:
        common = {
            "kind": "step",
            "name": "replace-service",
            "host": host,
            "service": service,
            "from": "1.0",
            "to": "1.1",
            "direction": "forward",
            "step_id": f"{host}-{service}",
        }
        return [
            {**common, "t": t0, "phase": "start"},
            {**common, "t": t1, "phase": "end", "outcome": outcome},
        ]

    return [*pair(1, 2, "compute-1", "compute-agent"), *pair(3, 4, "compute-2", "compute-agent", "failed")]


def test_releases_over_time_and_failed_replacement_is_unknown() -> None:
    initial = {"compute-1": {"compute-agent": "1.0"}, "compute-2": {"compute-agent": "1.0"}}
    from harness.report.releases import release_changes

    changes = release_changes(step_spans(_steps()))
    assert releases_at(initial, changes, 1.5)["compute-1"]["compute-agent"] == "1.0"
    assert releases_at(initial, changes, 2.5)["compute-1"]["compute-agent"] == "1.1"
    assert releases_at(initial, changes)["compute-2"]["compute-agent"] == "?"
    assert mixed_projects(initial, changes) == {"compute": ["1.0", "1.1"]}


def test_host_lanes_cover_the_window_with_replacing_segments() -> None:
    initial = {"compute-1": {"compute-agent": "1.0"}, "compute-2": {"compute-agent": "1.0"}}
    lanes = {lane["host"]: lane["segments"] for lane in host_lanes(initial, step_spans(_steps()), (0.0, 5.0))}
    assert [(s["start"], s["end"], s["state"], s["label"]) for s in lanes["compute-1"]] == [
        (0.0, 1, "release", "1.0"),
        (1, 2, "replacing", "compute-agent 1.0 -> 1.1"),
        (2, 5.0, "release", "1.1"),
    ]
    assert lanes["compute-2"][-1]["label"] == "?"


def test_executor_and_release_checks() -> None:
    assert executor_check("completed", None, None, expect_rollback=False).status == PASSED
    bad = executor_check("rolled_back", "s012", "health gate failed", expect_rollback=False)
    assert bad.status == FAILED
    assert "s012" in bad.summary
    assert executor_check("rolled_back", "s012", "gate", expect_rollback=True).id == "executor.rollback"
    assert executor_check("completed", None, None, expect_rollback=True).status == FAILED
    check = releases_check({"c-1": {"a": "1.1", "b": "1.0"}}, "1.1")
    assert check.status == FAILED
    assert check.evidence[0].target == "c-1/b"


def test_openstack_reports_draw_a_lane_per_service_so_each_swap_is_its_own() -> None:
    from harness.report.releases import StepSpan, service_lanes

    initial = {"controller": {"keystone": "2026.1", "nova-api": "2026.1"},
               "compute-1": {"nova-compute": "2026.1"}}
    swap = StepSpan(start=10.0, end=20.0, name="replace-service", step_id="s004", direction="forward",
                    host="controller", service="keystone", from_release="2026.1", to_release="2026.2",
                    outcome="ok", error=None)
    lanes = {lane["host"]: lane for lane in service_lanes(initial, [swap], (0.0, 30.0))}
    assert set(lanes) == {"controller/keystone", "controller/nova-api", "compute-1/nova-compute"}
    assert [s["label"] for s in lanes["controller/keystone"]["segments"]] == [
        "2026.1", "keystone 2026.1 -> 2026.2", "2026.2"]
    assert [s["label"] for s in lanes["controller/nova-api"]["segments"]] == ["2026.1"]


def _api_only_report(dataplane_requests: int = 0) -> SloReport:
    counts = {"requests": 10, "api_requests": 10, "failed_api_requests": 0,
              "dataplane_requests": dataplane_requests, "failed_dataplane_requests": 0}
    return SloReport([], [], {}, [], 0, {}, counts)


def test_a_cloud_without_a_data_plane_skips_its_data_plane_slos_with_the_reason() -> None:
    judged = {c.id: c for c in slo_checks(_api_only_report(), SloConfig(), no_dataplane="no guests here")}
    for check_id in ("slo.lost_writes", "slo.dataplane_gap"):
        assert judged[check_id].status == SKIPPED
        assert judged[check_id].summary == "not judged: no guests here"
    assert judged["slo.failed_api_requests"].status == PASSED
    # minicloud (no reason given): the same empty data plane is judged, not skipped
    plain = {c.id: c.status for c in slo_checks(_api_only_report(), SloConfig())}
    assert plain["slo.lost_writes"] == plain["slo.dataplane_gap"] == PASSED
    # data-plane requests in the run after all: they are judged
    sent = {c.id: c.status for c in slo_checks(_api_only_report(5), SloConfig(), no_dataplane="no guests")}
    assert sent["slo.lost_writes"] == sent["slo.dataplane_gap"] == PASSED

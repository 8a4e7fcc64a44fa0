"""SLO evaluation on synthetic timelines: each violation cites window, target, error, events."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.checks.phases import percentile, phases_of
from harness.checks.samples import numbered_events
from harness.checks.slo import API_P99, DATAPLANE_GAP, FAILED_API, LOST_WRITES, evaluate
from harness.timeline import Timeline
from harness.traffic.config import SloConfig


def req(t: float, latency: float = 0.002, ok: bool = True, **fields: Any) -> dict[str, Any]:
    event = {"t": t, "end": t + latency, "kind": "api", "target": "compute", "conn": "new",
             "source": "sampler", "op": "probe", "ok": ok}
    if not ok:
        event["error"] = "HTTP 503 Service Unavailable"
    event.update(fields)
    return event


def numbered(events: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    return list(enumerate(events, start=1))


def test_quiet_timeline_passes_with_percentiles_per_phase() -> None:
    events = [req(i * 0.1) for i in range(100)]
    events.insert(50, {"kind": "step", "phase": "start", "name": "upgrade-api", "t": 5.0})
    events.append({"kind": "step", "phase": "end", "name": "upgrade-api", "t": 7.0})
    report = evaluate(numbered(events), SloConfig())
    assert report.passed
    assert set(report.latency) == {"before", "step:upgrade-api", "during", "after"}
    assert report.latency["before"]["api/sampler"]["count"] == 50
    assert report.latency["step:upgrade-api"]["api/sampler"]["count"] == 20


def test_failed_api_requests_are_cited_by_outage_and_by_operation() -> None:
    events = [req(0.0), req(0.1, ok=False), req(0.2, ok=False), req(0.3),
              req(0.15, ok=False, source="user", op="list_servers", conn="reused", request_id="req-1")]
    report = evaluate(numbered(events), SloConfig())
    failed = [v for v in report.violations if v.slo == FAILED_API]
    assert len(failed) == 2
    outage, user = failed
    assert outage.target == "compute/new"
    assert outage.window == (0.1, 0.302)
    assert outage.error == "HTTP 503 Service Unavailable"
    assert [e["line"] for e in outage.evidence] == [2, 3]
    assert user.evidence[0]["request_id"] == "req-1"
    assert "list_servers" in user.message
    assert evaluate(numbered(events), SloConfig(max_failed_api_requests=3)).passed


def test_lost_write_names_key_and_cites_write_and_read_back() -> None:
    dp = {"kind": "dataplane", "target": "vm-1", "conn": "reused"}
    events = [
        req(0.0, op="write", source="user", key="rg-000000001", **dp),
        req(0.1, op="write", source="user", key="rg-000000002", **dp),
        req(0.2, op="write", source="user", key="rg-000000003", **dp),
        req(1.0, op="verify", source="verify", key="rg-000000001", **dp),
        req(1.1, ok=False, op="verify", source="verify", key="rg-000000002",
            error="HTTP 404 Not Found", **dp),
    ]
    report = evaluate(numbered(events), SloConfig())
    [lost] = [v for v in report.violations if v.slo == LOST_WRITES]  # one per instance
    assert lost.target == "vm-1"
    assert "2 acknowledged writes (rg-000000002 first)" in lost.message
    assert lost.error == "HTTP 404 Not Found"
    assert [e["line"] for e in lost.evidence] == [2, 5, 3]  # write + read-back, then the unread write
    assert {e["key"] for e in lost.evidence} == {"rg-000000002", "rg-000000003"}
    assert report.acknowledged_writes == 3


def test_dataplane_gap_over_the_limit_is_a_violation_for_that_instance() -> None:
    dp = {"kind": "dataplane", "conn": "new"}
    events = [req(i * 0.02, target="vm-1", **dp) for i in range(10)]
    events += [req(0.2 + i * 0.02, ok=False, target="vm-1", error="ConnectionRefusedError: refused", **dp)
               for i in range(30)]
    events += [req(0.8, target="vm-1", **dp)]
    events += [req(i * 0.02, target="vm-2", **dp) for i in range(42)]
    report = evaluate(numbered(events), SloConfig())
    [gap] = [v for v in report.violations if v.slo == DATAPLANE_GAP]
    assert gap.target == "vm-1/new"
    assert gap.window is not None
    assert abs((gap.window[1] - gap.window[0]) - (0.802 - 0.182)) < 1e-9
    assert gap.error == "ConnectionRefusedError: refused"
    assert len(gap.evidence) == 5
    # the same evidence as outages: the samplers' interval on vm-1/new
    assert [o.target for o in report.outages] == ["vm-1/new"]


def test_api_p99_during_upgrade_compared_with_baseline() -> None:
    events = [req(i * 0.1, latency=0.002) for i in range(50)]
    events.append({"kind": "step", "phase": "start", "name": "restart", "t": 5.0})
    events += [req(5.0 + i * 0.1, latency=0.010) for i in range(20)]
    events.append({"kind": "step", "phase": "end", "name": "restart", "t": 7.0})
    report = evaluate(numbered(events), SloConfig())
    [p99] = [v for v in report.violations if v.slo == API_P99]
    assert p99.window == (5.0, 7.0)
    assert "10.0 ms > 6.0 ms" in p99.message
    assert all(e["t"] >= 5.0 for e in p99.evidence)
    assert evaluate(numbered(events), SloConfig(api_p99_floor_ms=20)).passed


def test_p99_not_evaluated_without_steps_or_baseline() -> None:
    report = evaluate(numbered([req(i * 0.1) for i in range(5)]), SloConfig())
    assert report.passed
    assert "no executor step" in report.notes[0]
    events = [req(0.0), {"kind": "step", "phase": "start", "name": "x", "t": 0.5}, req(1.0, latency=1.0)]
    report = evaluate(numbered(events), SloConfig())
    assert report.passed
    assert "not evaluated" in report.notes[0]


def test_unterminated_step_runs_to_the_end_and_percentile_is_nearest_rank() -> None:
    phases = phases_of([{"kind": "step", "phase": "start", "name": "a", "t": 2.0}], 0.0, 10.0)
    assert [(p.name, p.start, p.end) for p in phases] == [
        ("before", 0.0, 2.0), ("step:a", 2.0, 10.0), ("during", 2.0, 10.0), ("after", 10.0, 10.0)]
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0


def test_numbered_events_skip_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "timeline.jsonl"
    with Timeline(path) as timeline:
        timeline.emit(req(0.0))
    with open(path, "ab") as handle:
        handle.write(b'{"kind": "api", "t": 1')
    lines = [n for n, _ in numbered_events(path)]
    assert lines == [1, 2]


def test_violation_overlapping_a_harness_stall_says_so() -> None:
    dp = {"kind": "dataplane", "conn": "new", "target": "vm-1"}
    # 718 ms without an answer, 70 ms of it a harness stall: still over the 500 ms budget.
    events = [req(0.0, **dp), req(0.02, latency=0.7, **dp), req(0.8, **dp),
              {"kind": "harness_stall", "t": 0.03, "end": 0.1, "lag_ms": 70.0}]
    report = evaluate(numbered(events), SloConfig())
    [gap] = report.violations
    assert "overlaps 70 ms of harness stall" in gap.message
    assert gap.evidence[-1] == {"harness_stalls": [[0.03, 0.1]]}
    assert "froze 1 times" in report.notes[-1]


def _silent_gap(stall: tuple[float, float] | None) -> list[dict[str, Any]]:
    """vm-1 answers every 20 ms, then nothing is sent or answered from 0.2 s to 0.9 s."""
    dp = {"kind": "dataplane", "conn": "new", "target": "vm-1"}
    events = [req(i * 0.02, **dp) for i in range(11)] + [req(0.9 + i * 0.02, **dp) for i in range(5)]
    if stall:
        events.append({"kind": "harness_stall", "t": stall[0], "end": stall[1]})
    return events


def test_silent_gap_inside_a_harness_stall_is_not_the_clouds() -> None:
    # 700 ms of silence, 650 ms of which the traffic process itself was frozen.
    report = evaluate(numbered(_silent_gap((0.22, 0.87))), SloConfig())
    assert not [v for v in report.violations if v.slo == DATAPLANE_GAP]
    assert any("harness's own stall" in note for note in report.notes)


def test_silent_gap_without_a_stall_or_with_too_little_of_one_is_a_violation() -> None:
    for stall in (None, (0.3, 0.4)):
        report = evaluate(numbered(_silent_gap(stall)), SloConfig())
        [gap] = [v for v in report.violations if v.slo == DATAPLANE_GAP]
        assert gap.target == "vm-1/new"


def test_gap_with_failed_requests_counts_whole_even_during_a_stall() -> None:
    dp = {"kind": "dataplane", "conn": "new", "target": "vm-1"}
    events = [req(i * 0.02, **dp) for i in range(11)]
    events += [req(0.25 + i * 0.1, ok=False, error="ConnectionRefusedError: refused", **dp) for i in range(6)]
    events += [req(0.9 + i * 0.02, **dp) for i in range(5)]
    events.append({"kind": "harness_stall", "t": 0.22, "end": 0.87})
    report = evaluate(numbered(events), SloConfig())
    assert [v.target for v in report.violations if v.slo == DATAPLANE_GAP] == ["vm-1/new"]


def test_a_violation_names_the_executor_steps_it_happened_during() -> None:
    step = {"kind": "step", "name": "replace-service", "step_id": "s017", "direction": "forward",
            "host": "controller", "service": "nova-api"}
    events = [req(0.0), {**step, "phase": "start", "t": 0.5}, req(1.0, ok=False), req(1.1, ok=False),
              {**step, "phase": "end", "t": 2.0}, req(3.0), req(4.0, ok=False, conn="reused")]
    report = evaluate(numbered(events), SloConfig())
    by_target = {v.target: v.message for v in report.violations if v.slo == FAILED_API}
    assert by_target["compute/new"].endswith("during s017 replace-service controller/nova-api")
    assert "during" not in by_target["compute/reused"]  # after the step: no step to name

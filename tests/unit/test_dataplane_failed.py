"""slo.dataplane_failed, per-connection gaps, owning-step attribution and the fail-fast read-back."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.checks.slo import DATAPLANE_FAILED, DATAPLANE_GAP, LOST_WRITES, evaluate
from harness.errors import ValidationError
from harness.timeline import Timeline
from harness.traffic import verify
from harness.traffic.config import SloConfig, parse_slo
from harness.traffic.plan import InstanceTarget


def dp(t: float, ok: bool = True, conn: str = "new", source: str = "sampler", latency: float = 0.001,
       **fields: Any) -> dict[str, Any]:
    event = {"t": t, "end": t + latency, "kind": "dataplane", "target": "vm-1", "conn": conn,
             "source": source, "op": "probe", "ok": ok}
    if not ok:
        event["error"] = "ConnectionRefusedError: [Errno 111] Connection refused"
    event.update(fields)
    return event


def numbered(events: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    return list(enumerate(events, start=1))


def refused_new_connections_while_reused_works() -> list[dict[str, Any]]:
    """2 s of refused new connections; the reused connection answers every 20 ms throughout."""
    events = [dp(i * 0.02, conn="reused") for i in range(200)]
    events += [dp(i * 0.02) for i in range(50)]
    events += [dp(1.0 + i * 0.02, ok=False) for i in range(100)]
    events += [dp(3.0 + i * 0.02) for i in range(50)]
    return sorted(events, key=lambda e: e["t"])


def test_refused_new_connections_fail_even_when_a_reused_connection_answers() -> None:
    report = evaluate(numbered(refused_new_connections_while_reused_works()), SloConfig())
    [failed] = [v for v in report.violations if v.slo == DATAPLANE_FAILED]
    assert failed.target == "vm-1/new"
    assert failed.message.startswith("100 failed data-plane requests on vm-1/new")
    assert "Connection refused" in (failed.error or "")
    assert any("outage" in e for e in failed.evidence)  # the outage interval is cited
    [gap] = [v for v in report.violations if v.slo == DATAPLANE_GAP]
    assert gap.target == "vm-1/new"  # not hidden by vm-1/reused
    assert report.counts["failed_dataplane_requests"] == 100


def test_clean_channels_pass_and_a_budget_allows_some_failures() -> None:
    events = [dp(i * 0.02, conn=c) for i in range(100) for c in ("new", "reused")]
    events += [dp(i * 0.1, source="user", conn="reused", op="write", key=f"k-{i:09d}") for i in range(20)]
    events += [dp(2.1 + i * 0.001, source="verify", conn="reused", op="verify", key=f"k-{i:09d}")
               for i in range(20)]
    report = evaluate(numbered(events), SloConfig())
    assert report.passed
    assert set(report.gaps) == {"vm-1/new", "vm-1/reused", "vm-1/writer"}
    one_failure = [*events, dp(2.5, ok=False)]
    assert not evaluate(numbered(one_failure), SloConfig()).passed
    lenient = evaluate(numbered(one_failure), SloConfig(max_failed_dataplane_requests=1))
    assert not [v for v in lenient.violations if v.slo == DATAPLANE_FAILED]


def test_burst_writes_are_judged_on_their_own_channel_and_not_as_gaps() -> None:
    events = [dp(i * 0.02, conn=c) for i in range(100) for c in ("new", "reused")]
    events += [dp(1.0 + i * 0.003, source="burst", op="write", key=f"b-{i:09d}") for i in range(30)]
    events.append(dp(1.2, ok=False, source="burst", op="write", key="b-000000099"))
    report = evaluate(numbered(events), SloConfig())
    assert [v.target for v in report.violations if v.slo == DATAPLANE_FAILED] == ["vm-1/burst-new"]
    assert "vm-1/burst-new" not in report.gaps  # a burst only lives during one migration


def test_evidence_names_the_steps_on_the_instance_host_not_only_those_overlapping_in_time() -> None:
    step = {"kind": "step", "direction": "forward"}
    events = [
        {"kind": "placement", "t": 0.5, "target": "vm-1", "host": "compute-1"},
        {**step, "phase": "start", "name": "replace-service", "step_id": "s026", "host": "compute-1",
         "service": "compute-agent", "t": 1.0},
        {**step, "phase": "end", "name": "replace-service", "step_id": "s026", "host": "compute-1",
         "service": "compute-agent", "t": 1.5},
        {**step, "phase": "start", "name": "replace-service", "step_id": "s031", "host": "compute-2",
         "service": "compute-agent", "t": 1.6},
        {**step, "phase": "end", "name": "replace-service", "step_id": "s031", "host": "compute-2",
         "service": "compute-agent", "t": 1.7},
        {**step, "phase": "start", "name": "replace-service", "step_id": "s039", "host": "network-1",
         "service": "network", "t": 2.0},
        {**step, "phase": "end", "name": "replace-service", "step_id": "s039", "host": "network-1",
         "service": "network", "t": 4.0},
    ]
    events += [dp(i * 0.02) for i in range(100)]
    events += [dp(2.0 + i * 0.02, ok=False) for i in range(50)]
    report = evaluate(numbered(events), SloConfig())
    [failed] = [v for v in report.violations if v.slo == DATAPLANE_FAILED]
    assert "during s039 replace-service network-1/network" in failed.message
    owners = next(e["belongs_to_steps"] for e in failed.evidence if "belongs_to_steps" in e)
    assert any(label.startswith("s026 ") for label in owners)  # compute-1, where vm-1 lived
    assert not any(label.startswith("s031 ") for label in owners)  # compute-2: not its host


def test_lost_writes_are_one_violation_per_instance() -> None:
    events = [dp(i * 0.01, source="user", conn="reused", op="write", key=f"k-{i:09d}") for i in range(1, 300)]
    report = evaluate(numbered(events), SloConfig())
    [lost] = [v for v in report.violations if v.slo == LOST_WRITES]
    assert "299 acknowledged writes (k-000000001 first)" in lost.message
    assert len(lost.evidence) == 5


def test_slo_field_parses_and_rejects_negative_budgets() -> None:
    assert parse_slo({"max_failed_dataplane_requests": 3}).max_failed_dataplane_requests == 3
    assert SloConfig().max_failed_dataplane_requests == 0
    with pytest.raises(ValidationError, match=r"slo\.max_failed_dataplane_requests"):
        parse_slo({"max_failed_dataplane_requests": -1}, "s.yaml")


def test_read_back_gives_up_on_an_unreachable_instance(tmp_path: Path) -> None:
    path = tmp_path / "timeline.jsonl"
    with Timeline(path) as timeline:
        for i in range(1, 101):
            timeline.emit({"t": float(i), "end": float(i) + 0.001, "kind": "dataplane", "target": "vm-1",
                           "conn": "reused", "source": "user", "op": "write", "ok": True,
                           "key": f"k-{i:09d}"})
    dead = InstanceTarget("vm-1", "id-1", "127.0.0.1", 9)  # discard port: refused at once
    with Timeline(path) as timeline:
        missing = verify.verify_writes(path, timeline, [dead], since=0.0, timeout_s=0.2)
    assert missing == 100
    lines = path.read_text().splitlines()
    verified = [line for line in lines if '"verify"' in line]
    assert len(verified) == 1  # the first key, after GIVE_UP_AFTER unanswered attempts; not 100 reads
    [abandoned] = [json.loads(line) for line in lines if '"verify_abandoned"' in line]
    assert abandoned["keys_left"] == 99


def test_read_back_asks_the_instances_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two unreachable instances: each one's read-back starts before the other's gave up (one by one,
    a timing-out instance delayed every one after it)."""
    import threading

    from harness.traffic.probe import ProbeResult

    both_asked = threading.Barrier(2, timeout=5)

    class SlowDeadProbe:
        def __init__(self, host: str, port: int, conn: str, timeout_s: float) -> None:
            self.first = True

        def request(self, method: str, path: str) -> ProbeResult:
            if self.first:  # one by one, the first instance would wait here for the second in vain
                self.first = False
                both_asked.wait()
            return ProbeResult(0.0, 0.0, False, None, "TimeoutError: timed out", None, b"")

        def close(self) -> None:
            pass

    monkeypatch.setattr(verify, "HttpProbe", SlowDeadProbe)
    path = tmp_path / "timeline.jsonl"
    with Timeline(path) as timeline:
        for target in ("vm-1", "vm-2"):
            for i in range(1, 11):
                timeline.emit({"t": float(i), "end": float(i), "kind": "dataplane", "target": target,
                               "conn": "reused", "source": "user", "op": "write", "ok": True,
                               "key": f"k-{i:09d}"})
    instances = [InstanceTarget(name, f"id-{name}", "127.0.0.1", 9) for name in ("vm-1", "vm-2")]
    with Timeline(path) as timeline:
        assert verify.verify_writes(path, timeline, instances, since=0.0) == 20
    abandoned = [json.loads(line) for line in path.read_text().splitlines() if '"verify_abandoned"' in line]
    assert sorted(a["target"] for a in abandoned) == ["vm-1", "vm-2"]

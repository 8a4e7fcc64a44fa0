"""Locust in its own process against stand-in servers on 127.0.0.1: timeline, gaps, lost writes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.checks.samples import numbered_events
from harness.checks.slo import DATAPLANE_FAILED, DATAPLANE_GAP, FAILED_API, LOST_WRITES, SloReport, evaluate
from harness.timeline import Timeline
from harness.traffic.config import parse_slo, parse_traffic
from harness.traffic.plan import ApiTarget, InstanceTarget, TrafficPlan
from harness.traffic.runner import TrafficRunner
from harness.traffic.verify import verify_writes

pytestmark = pytest.mark.integration
STANDIN = Path(__file__).with_name("traffic_standin.py")
Standin = Callable[..., tuple[subprocess.Popen[str], int]]


@pytest.fixture
def standin() -> Iterator[Standin]:
    """Start stand-in servers; every one is killed at the end, also on failure."""
    started: list[subprocess.Popen[str]] = []

    def start(mode: str, *args: str) -> tuple[subprocess.Popen[str], int]:
        process = subprocess.Popen([sys.executable, str(STANDIN), mode, *args], stdout=subprocess.PIPE,
                                   text=True, start_new_session=True)
        started.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("ready "), line
        return process, int(line.split()[1])

    yield start
    for process in started:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def make_plan(run_dir: Path, api: list[ApiTarget], instances: list[InstanceTarget],
              traffic: dict[str, object] | None = None) -> TrafficPlan:
    return TrafficPlan(run_dir=str(run_dir), timeline=str(run_dir / "timeline.jsonl"),
                       locust_dir=str(run_dir / "locust"), config=parse_traffic(traffic),
                       api_targets=api, instances=instances, key_prefix="rgtest", run_time_s=60)


def run_traffic(plan: TrafficPlan, seconds: float, during: Callable[[], None] | None = None) -> SloReport:
    """Traffic for ``seconds`` (calling ``during`` after 1 s), then read-back and evaluation."""
    timeline_path = Path(plan.timeline)
    with Timeline(timeline_path) as timeline:
        start = time.monotonic()
        with TrafficRunner(plan) as runner:
            deadline = time.monotonic() + seconds
            if during is not None:
                time.sleep(1.0)
                during()
            while time.monotonic() < deadline:
                assert runner.running()
                time.sleep(0.05)
        verify_writes(timeline_path, timeline, plan.instances, since=start)
        end = time.monotonic()
    return evaluate(list(numbered_events(timeline_path)), parse_slo(None), window=(start, end))


def pause(process: subprocess.Popen[str], seconds: float) -> float:
    """SIGSTOP the process for ``seconds`` (measured); returns the measured pause."""
    began = time.monotonic()
    os.kill(process.pid, signal.SIGSTOP)
    try:
        while time.monotonic() - began < seconds:
            time.sleep(0.001)
    finally:
        os.kill(process.pid, signal.SIGCONT)
    return time.monotonic() - began


def test_quiet_standins_give_a_full_timeline_csv_stats_and_no_violation(tmp_path: Path,
                                                                        standin: Standin) -> None:
    _, api_port = standin("api")
    _, kv_port = standin("kv")
    plan = make_plan(tmp_path, [ApiTarget("compute", "127.0.0.1", api_port, "/v2.1")],
                     [InstanceTarget("vm-1", "id-1", "127.0.0.1", kv_port)])
    report = run_traffic(plan, 3.0)
    assert report.passed, [v.to_dict() for v in report.violations]
    events = [e for _, e in numbered_events(tmp_path / "timeline.jsonl")]
    streams = {(e["kind"], e["target"], e["conn"], e["source"]) for e in events if "conn" in e}
    assert {("api", "compute", "new", "sampler"), ("api", "compute", "reused", "sampler"),
            ("dataplane", "vm-1", "new", "sampler"), ("dataplane", "vm-1", "reused", "sampler"),
            ("dataplane", "vm-1", "reused", "user"), ("dataplane", "vm-1", "reused", "verify")} <= streams
    probes = [e for e in events if e.get("target") == "vm-1" and e.get("conn") == "new"
              and e.get("source") == "sampler"]
    assert 100 <= len(probes) <= 160  # every 20 ms for ~3 s
    assert report.acknowledged_writes >= 20
    assert not report.lost
    assert all(e["end"] >= e["t"] for e in events if "end" in e)
    stats = (tmp_path / "locust" / "stats_stats.csv").read_text()
    assert "dataplane:probe,vm-1/new" in stats
    assert "api:probe,compute/reused" in stats


def test_stalled_instance_gap_is_measured_for_that_instance_only(tmp_path: Path, standin: Standin) -> None:
    stopped, port_1 = standin("kv")
    _, port_2 = standin("kv")
    plan = make_plan(tmp_path, [], [InstanceTarget("vm-1", "id-1", "127.0.0.1", port_1),
                                    InstanceTarget("vm-2", "id-2", "127.0.0.1", port_2)])
    paused: list[float] = []
    report = run_traffic(plan, 3.0, lambda: paused.append(pause(stopped, 0.3)))
    gap_ms = report.gaps["vm-1/new"][0].duration_s * 1000  # per connection type since issue 11
    assert abs(gap_ms - paused[0] * 1000) <= 50, (gap_ms, paused)
    # vm-2 never paused: any gap of 100 ms there must be the measuring process's own freeze
    # (a loaded CI machine), which the Locust process records as a harness_stall event.
    stalls = [(e["t"], e["end"]) for _, e in numbered_events(tmp_path / "timeline.jsonl")
              if e.get("kind") == "harness_stall"]
    unexplained = [g for channel in ("new", "reused") for g in report.gaps[f"vm-2/{channel}"]
                   if g.duration_s >= 0.1 and not any(a < g.end and b > g.start for a, b in stalls)]
    assert unexplained == []
    assert report.passed  # 300 ms is within the 500 ms default


def test_acknowledged_then_lost_write_is_named(tmp_path: Path, standin: Standin) -> None:
    _, port = standin("kv", "--forget", "5")
    plan = make_plan(tmp_path, [], [InstanceTarget("vm-1", "id-1", "127.0.0.1", port)])
    report = run_traffic(plan, 2.0)
    lost = [v for v in report.violations if v.slo == LOST_WRITES]
    assert [(v.target, v.evidence[0]["key"]) for v in lost] == [("vm-1", "rgtest-000000005")]
    assert lost[0].error == "HTTP 404 Not Found"
    # The writer's own read-back of that key failed too: a failed data-plane request on vm-1/writer.
    assert {v.slo for v in report.violations} == {LOST_WRITES, DATAPLANE_FAILED}
    assert [v.target for v in report.violations if v.slo == DATAPLANE_FAILED] == ["vm-1/writer"]


def test_stalled_api_gives_one_outage_per_connection_kind(tmp_path: Path, standin: Standin) -> None:
    api, port = standin("api")
    plan = make_plan(tmp_path, [ApiTarget("compute", "127.0.0.1", port, "/v2.1")], [])
    paused: list[float] = []
    report = run_traffic(plan, 4.0, lambda: paused.append(pause(api, 2.0)))
    outages = {o.target: o for o in report.outages}
    assert set(outages) == {"compute/new", "compute/reused"}, [o.to_row() for o in report.outages]
    for outage in outages.values():
        assert abs(outage.duration_s - paused[0]) <= 0.1, outage.to_row()
        assert outage.error == "TimeoutError: timed out"
    assert {v.slo for v in report.violations} == {FAILED_API}
    assert DATAPLANE_GAP not in {v.slo for v in report.violations}


HARNESS = textwrap.dedent("""
    import json, sys, time
    from harness.traffic.plan import TrafficPlan
    from harness.traffic.runner import TrafficRunner
    plan = TrafficPlan.read(sys.argv[1])
    with TrafficRunner(plan):
        print("running", flush=True)
        time.sleep(60)
""")


def test_kill_9_of_the_harness_keeps_every_line_and_stops_locust(tmp_path: Path, standin: Standin) -> None:
    _, port = standin("kv")
    plan = make_plan(tmp_path, [], [InstanceTarget("vm-1", "id-1", "127.0.0.1", port)])
    plan_path = plan.write(tmp_path / "input-plan.json")
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, str(plan_path)], stdout=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        assert harness.stdout is not None
        assert harness.stdout.readline() == "running\n"
        timeline = tmp_path / "timeline.jsonl"
        deadline = time.monotonic() + 20
        while timeline.read_bytes().count(b"\n") < 200:
            assert time.monotonic() < deadline, "traffic never reached 200 events"
            time.sleep(0.05)
        os.kill(harness.pid, signal.SIGKILL)
        harness.wait(timeout=10)
    finally:
        if harness.poll() is None:
            os.killpg(harness.pid, signal.SIGKILL)
    locust_pid = next(e["pid"] for _, e in numbered_events(timeline) if e.get("phase") == "start")
    deadline = time.monotonic() + 15
    stat = Path(f"/proc/{locust_pid}/stat")
    while stat.exists() and stat.read_text().split()[2] != "Z":  # gone, or a zombie awaiting init
        assert time.monotonic() < deadline, "locust outlived the harness"
        time.sleep(0.05)
    raw = timeline.read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.splitlines()
    assert len(lines) >= 200
    for line in lines:
        json.loads(line)  # every line written before the kill parses

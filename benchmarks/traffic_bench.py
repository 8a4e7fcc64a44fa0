"""Traffic benchmark: what the measuring costs, on this machine, against loopback stand-ins.

Prints three figures (the issue's performance criteria):
  1. CPU of the harness process plus the Locust process, as % of one core, at the
     default rates (3 API endpoints, 3 instances, samplers on new and reused
     connections, data-plane writers; no openstacksdk users: stand-ins have no
     Keystone);
  2. sustained data-plane requests/s when the samplers are driven as hard as they go;
  3. recording cost per timeline event, in microseconds.

Usage: python benchmarks/traffic_bench.py [--seconds 10]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from harness.checks.samples import numbered_events
from harness.timeline import Timeline
from harness.traffic.config import parse_traffic
from harness.traffic.plan import ApiTarget, InstanceTarget, TrafficPlan
from harness.traffic.probe import ProbeResult, RequestRecorder
from harness.traffic.runner import TrafficRunner

STANDIN = Path(__file__).resolve().parents[1] / "tests" / "integration" / "traffic_standin.py"


def start_standins(modes: list[str]) -> tuple[list[subprocess.Popen[str]], list[int]]:
    processes, ports = [], []
    for mode in modes:
        process = subprocess.Popen([sys.executable, str(STANDIN), mode], stdout=subprocess.PIPE, text=True,
                                   start_new_session=True)
        processes.append(process)
        assert process.stdout is not None
        ports.append(int(process.stdout.readline().split()[1]))
    return processes, ports


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def run(run_dir: Path, traffic: dict[str, object] | None, api: int, instances: int,
        seconds: float) -> tuple[float, float, float]:
    """(cpu % of one core, data-plane requests/s, all requests/s) over ``seconds`` of steady traffic."""
    processes, ports = start_standins(["api"] * api + ["kv"] * instances)
    try:
        plan = TrafficPlan(
            run_dir=str(run_dir), timeline=str(run_dir / "timeline.jsonl"),
            locust_dir=str(run_dir / "locust"),
            config=parse_traffic(traffic),
            api_targets=[ApiTarget(f"api-{i}", "127.0.0.1", port, "/") for i, port in enumerate(ports[:api])],
            instances=[InstanceTarget(f"vm-{i}", f"id-{i}", "127.0.0.1", port)
                       for i, port in enumerate(ports[api:])],
            run_time_s=seconds + 60)
        with TrafficRunner(plan) as runner:
            assert runner.process is not None
            locust = psutil.Process(runner.process.pid)
            harness = psutil.Process(os.getpid())
            time.sleep(1.0)  # past spawning
            began, cpu_began = time.monotonic(), cpu_seconds(locust) + cpu_seconds(harness)
            deadline = began + seconds
            while time.monotonic() < deadline:
                time.sleep(0.1)
            ended, cpu_ended = time.monotonic(), cpu_seconds(locust) + cpu_seconds(harness)
        window = [e for _, e in numbered_events(plan.timeline)
                  if began <= e.get("t", 0) < ended and "conn" in e]
        dataplane = sum(1 for e in window if e["kind"] == "dataplane")
        elapsed = ended - began
        return 100 * (cpu_ended - cpu_began) / elapsed, dataplane / elapsed, len(window) / elapsed
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def recording_cost(directory: Path, count: int = 50_000) -> float:
    """Microseconds per request event: building it and appending it to the timeline."""
    with Timeline(directory / "cost.jsonl") as timeline:
        recorder = RequestRecorder(timeline)
        result = ProbeResult(1000.0, 1000.002, True, 200, None, "req-0123456789abcdef", b"")
        began = time.perf_counter()
        for _ in range(count):
            recorder.record(result, kind="dataplane", target="vm-1", conn="reused", source="sampler",
                            op="probe")
        return (time.perf_counter() - began) / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rollgate-bench-") as tmp:
        root = Path(tmp)
        cpu, dp_rate, rate = run(root / "default", None, api=3, instances=3, seconds=args.seconds)
        print(f"default rates (3 API endpoints, 3 instances): {rate:.0f} requests/s, "
              f"harness+Locust CPU {cpu:.1f} % of one core")
        hard = {"samplers": {"dataplane_interval_ms": 1, "dataplane_timeout_ms": 1000},
                "dataplane": {"write_interval_ms": 5}}
        cpu, dp_rate, _ = run(root / "hard", hard, api=0, instances=4, seconds=args.seconds)
        print(f"sustained data plane (4 instances, samplers unpaced): {dp_rate:.0f} requests/s "
              f"(harness+Locust CPU {cpu:.0f} % of one core)")
        print(f"recording cost: {recording_cost(root):.1f} us per event")
    return 0


if __name__ == "__main__":
    sys.exit(main())

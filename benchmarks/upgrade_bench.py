"""Benchmark: the default 1.0 -> 1.1 rolling upgrade on the process backend, for real.

Run: ``.venv/bin/python benchmarks/upgrade_bench.py [--servers N]``. Deploys
the default topology (tests/fixtures/scenarios/valid/minimal.yaml), boots N
servers, runs the whole plan through ``Executor`` + ``MinicloudOps`` and
prints: deploy time, total upgrade time, time per step kind, and the
executor's overhead per step = the step's wall time (timeline ``duration``)
minus the time spent inside the cloud operations (measured by a timing proxy
around ``MinicloudOps``): journal fsyncs, timeline events, bookkeeping.
Target (issue 5): overhead <= 100 ms per step. The cloud is destroyed at the end.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.backends import procutil  # noqa: E402
from harness.clouds import build_plan  # noqa: E402
from harness.clouds.minicloud.ops import MinicloudOps  # noqa: E402
from harness.deploy import deploy  # noqa: E402
from harness.executor import COMPLETED, Executor, Journal  # noqa: E402
from harness.runstate import RunState  # noqa: E402
from harness.scenario.load import load_scenario  # noqa: E402
from harness.timeline import Timeline, read_events  # noqa: E402
from tests.integration.upgrade_support import MINIMAL, seed_servers  # noqa: E402


class TimedOps:
    """Forwards to MinicloudOps and adds up the time spent in each call, per step."""

    def __init__(self, ops: MinicloudOps, timeline: StepClock) -> None:
        self._ops = ops
        self._timeline = timeline
        self.inside: dict[str, float] = defaultdict(float)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._ops, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.inside[self._timeline.current] += time.perf_counter() - started

        return call


class StepClock(Timeline):
    """The timeline, also remembering which step runs now."""

    def __init__(self, path: Path) -> None:
        self.current = ""
        super().__init__(path)

    def emit(self, event: dict[str, Any]) -> None:
        if event.get("kind") == "step" and event.get("phase") == "start":
            self.current = str(event["step_id"])
        super().emit(event)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rollgate-bench-"))
    os.environ["ROLLGATE_RESULTS"] = str(root)
    scenario = load_scenario(MINIMAL)
    state = RunState(run_id="bench-" + secrets.token_hex(3), backend="process")
    started = time.monotonic()
    backend = deploy(state, [h.to_spec() for h in scenario.topology.hosts])
    try:
        deployed = time.monotonic() - started
        seed_servers(state, args.servers)
        plan = build_plan(scenario, 1)
        path = state.directory / "timeline.jsonl"
        with StepClock(path) as timeline:
            ops = TimedOps(MinicloudOps(backend, state, scenario), timeline)
            began = time.monotonic()
            result = Executor(plan, ops, Journal(state.directory / "journal"), timeline).run()  # type: ignore[arg-type]
            total = time.monotonic() - began
        if result.status != COMPLETED:
            print(f"upgrade did not complete: {result}")
            return 1
        ends = [e for e in read_events(path) if e.get("kind") == "step" and e.get("phase") == "end"]
        overhead = [e["duration"] - ops.inside.get(e["step_id"], 0.0) for e in ends]
        by_kind: dict[str, list[float]] = defaultdict(list)
        for event in ends:
            by_kind[event["name"]].append(event["duration"])
        print(f"deploy (8 hosts, default topology): {deployed:.2f} s; {args.servers} servers booted")
        print(f"upgrade 1.0 -> 1.1: {len(ends)} steps in {total:.2f} s")
        for kind, durations in sorted(by_kind.items(), key=lambda kv: -sum(kv[1])):
            print(f"  {kind:<18} x{len(durations):<3} total {sum(durations):6.2f} s  "
                  f"mean {statistics.mean(durations) * 1000:7.1f} ms")
        print(f"executor overhead per step: mean {statistics.mean(overhead) * 1000:.2f} ms, "
              f"max {max(overhead) * 1000:.2f} ms (target <= 100 ms)")
        return 0 if max(overhead) <= 0.1 else 1
    finally:
        backend.destroy()
        procutil.reap(state.run_id, root=None)


if __name__ == "__main__":
    sys.exit(main())

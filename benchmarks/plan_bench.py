"""Benchmark: plan generation for 500 hosts, and executor overhead per step.

Run: ``.venv/bin/python benchmarks/plan_bench.py``. The executor overhead is
measured against FakeCloud, whose operations take microseconds, so the time
per step is what the executor itself adds: journal writes (two fsynced lines
per step), timeline events, bookkeeping. Targets (issue 5): plan <= 1 s,
overhead <= 100 ms per step.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.clouds import build_plan  # noqa: E402
from harness.executor import COMPLETED, Executor, Journal  # noqa: E402
from harness.executor.ops import CheckReport, ExpectedReleases, HealthReport  # noqa: E402
from harness.scenario import Scenario  # noqa: E402
from harness.scenario.load import parse_scenario  # noqa: E402
from harness.timeline import Timeline  # noqa: E402
from tests.unit.fakecloud import FakeCloud  # noqa: E402


class NoOpCloud:
    """CloudOps that does nothing and is always healthy: isolates the executor's own cost."""

    def upgrade_check(self) -> CheckReport:
        return CheckReport("ok")

    def health_gate(self, expected: ExpectedReleases, timeout: float) -> HealthReport:
        return HealthReport(True)

    def online_data_migrations(self, max_count: int) -> bool:
        return False

    def list_instances(self, host: str) -> list[str]:
        return []

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: None


def big_scenario(hosts: int) -> Scenario:
    computes = hosts - 6
    entries: list[dict[str, Any]] = [{"name": f"controller-{i}", "roles": ["controller"]} for i in (1, 2, 3)]
    entries += [{"name": f"compute-{i}", "roles": ["compute"]} for i in range(1, computes + 1)]
    entries += [{"name": "network-1", "roles": ["network"]}, {"name": "db-1", "roles": ["db"]},
                {"name": "lb-1", "roles": ["lb"]}]
    return parse_scenario({"name": "bench", "topology": {"release": "1.0", "hosts": entries},
                           "upgrade": {"from": "1.0", "to": "1.1",
                                       "policy": {"batch_size": 10, "max_unavailable": 10,
                                                  "order": "random"}}})


def main() -> None:
    scenario = big_scenario(500)
    timings = []
    for seed in range(5):
        started = time.perf_counter()
        plan = build_plan(scenario, seed)
        timings.append(time.perf_counter() - started)
    print(f"plan generation, 500 hosts: {len(plan.steps)} steps, "
          f"median {statistics.median(timings) * 1000:.1f} ms, max {max(timings) * 1000:.1f} ms "
          f"(target <= 1000 ms)")

    with tempfile.TemporaryDirectory() as tmp:
        # Overhead: the same 500-host plan against ops that do nothing at all.
        with Timeline(Path(tmp) / "timeline.jsonl") as timeline:
            started = time.perf_counter()
            result = Executor(plan, NoOpCloud(), Journal(Path(tmp) / "journal"), timeline).run()
            elapsed = time.perf_counter() - started
        assert result.status == COMPLETED, result
        print(f"executor overhead (no-op ops, journal fsync + timeline), 500 hosts: "
              f"{len(plan.steps)} steps in {elapsed:.2f} s = {elapsed / len(plan.steps) * 1000:.2f} ms "
              "per step (target <= 100 ms)")
        default = parse_scenario({"name": "default", "upgrade": {"from": "1.0", "to": "1.1"}})
        small = build_plan(default, 0)
        cloud = FakeCloud.from_topology(default.topology, small.max_unavailable)
        started = time.perf_counter()
        result = Executor(small, cloud, Journal(Path(tmp) / "journal-default")).run()
        elapsed = time.perf_counter() - started
        assert result.status == COMPLETED, result
        assert not cloud.violations, cloud.violations
        print(f"default topology 1.0 -> 1.1 against FakeCloud: {len(small.steps)} steps in "
              f"{elapsed * 1000:.0f} ms ({elapsed / len(small.steps) * 1000:.2f} ms per step)")


if __name__ == "__main__":
    main()

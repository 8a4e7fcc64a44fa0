"""``rollgate observe`` against a real minicloud from ``rollgate up`` (process backend).

One cloud for the module: a quiet 30 s observation must pass with zero
violations; then the compute API SIGSTOPped for 2 s (the judged command) must
give exactly one outage per compute API sampler stream of 2 s (+-100 ms) with
its error text, and exit 1.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROLLGATE = [sys.executable, "-m", "harness.cli"]

PAUSE = textwrap.dedent("""
    import json, os, signal, sys, time
    run = json.load(open(sys.argv[1]))
    pid = run["hosts"]["controller"]["services"]["compute-api"]["pid"]
    began = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    try:
        while time.monotonic() - began < 2.0:
            time.sleep(0.001)
    finally:
        os.kill(pid, signal.SIGCONT)
    print(json.dumps({"stopped": began, "resumed": time.monotonic()}))
""")


def rollgate(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ROLLGATE, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    results = tmp_path_factory.mktemp("results")
    env = {**os.environ, "ROLLGATE_RESULTS": str(results)}
    run_id = "traffic-observe"
    try:
        up = rollgate(env, "up", "--computes", "2", "--run-id", run_id)
        assert up.returncode == 0, up.stderr[-3000:]
        yield run_id, env, results / run_id
    finally:
        down = rollgate(env, "down", run_id)
        assert down.returncode == 0, down.stderr[-2000:]


def verdict(run_dir: Path) -> dict[str, object]:
    return json.loads((run_dir / "observe-verdict.json").read_text())


def test_quiet_cloud_for_30_s_has_zero_violations(cloud: tuple[str, dict[str, str], Path]) -> None:
    run_id, env, run_dir = cloud
    result = rollgate(env, "observe", run_id, "--duration", "30")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    summary = verdict(run_dir)
    assert summary["violations"] == []
    counts = summary["counts"]
    assert isinstance(counts, dict)
    assert counts["api_requests"] > 30 * 2 * 3 * 5  # 3 endpoints x 2 conns at ~10/s, at least half
    assert counts["dataplane_requests"] > 30 * 2 * 2 * 25  # 2 instances x 2 conns at ~50/s, at least half
    assert json.loads((run_dir / "outages.json").read_text()) == []
    users = [json.loads(line) for line in (run_dir / "timeline.jsonl").read_text().splitlines()]
    assert any(e.get("source") == "user" and e.get("kind") == "api" for e in users)  # openstacksdk ran


def test_compute_api_stopped_for_2_s_gives_one_outage_per_api_target(
        cloud: tuple[str, dict[str, str], Path]) -> None:
    run_id, env, run_dir = cloud
    result = rollgate(env, "observe", run_id, "--baseline", "3", "--settle", "2", "--",
                      sys.executable, "-c", PAUSE, str(run_dir / "run.json"))
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    pause = json.loads((run_dir / "observe-command.log").read_text().strip().splitlines()[-1])
    stopped_for = pause["resumed"] - pause["stopped"]
    outages = json.loads((run_dir / "outages.json").read_text())
    by_target = {row["target"]: row for row in outages}
    assert sorted(by_target) == ["compute/new", "compute/reused"], outages
    for row in outages:
        assert abs(row["duration_s"] - stopped_for) <= 0.1, row
        assert row["error"] == "TimeoutError: timed out"
        assert pause["stopped"] <= row["start"] <= pause["stopped"] + 0.2
    summary = verdict(run_dir)
    violations = summary["violations"]
    assert isinstance(violations, list)
    failed = [v for v in violations if v["slo"] == "failed_api_requests"]
    assert {v["target"] for v in failed} >= {"compute/new", "compute/reused"}
    assert all(v["evidence"] and v["window"] for v in failed)

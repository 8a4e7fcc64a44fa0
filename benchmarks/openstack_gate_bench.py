"""Benchmark: one gate run of an openstack scenario, its stages and the cloud's peak memory.

    .venv/bin/python benchmarks/openstack_gate_bench.py [scenarios/openstack-rolling-upgrade.yaml]

Runs ``rollgate run SCENARIO --backend docker`` (the same command a Zuul job
runs) in a subprocess and, from this process, samples every second the sum
of the RSS of the run's containers (cgroup ``total_rss`` on v1, ``anon`` on
v2; found by the run's label), so the peak covers the deploy, the upgrade
with two releases of a service side by side, and the checks. Prints the
verdict, the API requests (failed), the deploy, resources, executor and
whole-run seconds from the run's timeline, each step kind's total, and the
peak RSS with when it happened. Exit: the gate's exit code.
"""
from __future__ import annotations

import collections
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.backends import docker_resources as res
from harness.clouds.openstack.containers import run_rss
from harness.clouds.openstack.deploy import MemorySampler

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20


def main() -> int:
    default = ROOT / "scenarios" / "openstack-rolling-upgrade.yaml"
    scenario = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    results = Path(tempfile.mkdtemp(prefix="os-gate-bench-"))
    run_id = "os-gbench-" + secrets.token_hex(3)
    client = res.docker_client()
    began = time.monotonic()
    command = [sys.executable, "-m", "harness.cli", "run", str(scenario), "--backend", "docker",
               "--run-id", run_id]
    with MemorySampler(lambda: run_rss(client, run_id), interval=1.0) as sampler:
        done = subprocess.run(command, cwd=ROOT, env={**os.environ, "ROLLGATE_RESULTS": str(results)},
                              capture_output=True, text=True, check=False)
    wall = time.monotonic() - began
    run_dir = results / run_id
    verdict = json.loads((run_dir / "verdict.json").read_text())
    events = [json.loads(line) for line in (run_dir / "timeline.jsonl").read_text().splitlines() if line]
    steps = [e for e in events if e.get("kind") == "step"]
    ends = [e for e in steps if e.get("phase") == "end"]
    resources = [e for e in events if e.get("kind") == "resources"]
    per_kind: dict[str, float] = collections.defaultdict(float)
    for event in ends:
        per_kind[event["name"]] += float(event.get("duration") or 0.0)
    run_json = json.loads((run_dir / "run.json").read_text())
    counts = verdict.get("counts", {})
    print(f"scenario {scenario.name}: {verdict['verdict']} (exit {done.returncode}), "
          f"run {run_id} in {results}")
    print(f"API requests {counts.get('api_requests')} ({counts.get('failed_api_requests')} failed)")
    print(f"deploy {run_json.get('extra', {}).get('deploy_seconds')} s")
    if resources:
        start = next(e for e in events if e.get("kind") == "gate")["t"]
        print(f"resource phases from {resources[0]['t'] - start:.1f} s into the run")
    if steps:
        print(f"executor {steps[-1]['t'] - steps[0]['t']:.1f} s, {len(ends)} step ends")
    for kind, seconds in sorted(per_kind.items(), key=lambda item: -item[1]):
        print(f"  {kind:<20} {seconds:7.1f} s")
    print(f"whole run {wall:.1f} s (rollgate run, subprocess)")
    print(f"peak RSS of the cloud {sampler.peak / MIB:.0f} MiB, {sampler.peak_at:.0f} s after the start")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())

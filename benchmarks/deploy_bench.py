"""Benchmark: deploying the default topology on each backend, and scaling the process
backend to many compute hosts.

    .venv/bin/python benchmarks/deploy_bench.py [--skip-docker] [--computes 50]

Prints one line per figure (targets from issue 3: Docker deploy of the default
topology with cached images <= 60 s; process backend <= 10 s; 50 compute hosts
deploy and run on the process backend, with the time per added host). The
time per added host is the slope between the default topology (3 computes) and
the large one, so fixed costs (database schema, controllers) do not hide in it.
Every cloud is destroyed before the next starts.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.backends.base import HostSpec
from harness.deploy import connect, deploy
from harness.runstate import RunState
from harness.scenario.load import load_scenario

MINIMAL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "scenarios" / "valid" / "minimal.yaml"
TARGETS = {"docker": 60.0, "process": 10.0}


def default_topology() -> list[HostSpec]:
    return [h.to_spec() for h in load_scenario(MINIMAL).topology.hosts]


def with_computes(count: int) -> list[HostSpec]:
    """The default topology with ``count`` compute hosts instead of 3."""
    hosts = [h for h in default_topology() if "compute" not in h.roles]
    template = next(h for h in default_topology() if "compute" in h.roles)
    hosts += [HostSpec(f"compute-{i}", template.roles, dict(template.services)) for i in range(1, count + 1)]
    return hosts


def timed_deploy(backend: str, hosts: list[HostSpec], timeout: float = 120.0) -> tuple[float, int]:
    """Seconds from nothing to every compute registered up; and how many computes are up."""
    state = RunState(run_id=f"bench-{backend[:2]}-" + secrets.token_hex(3), backend=backend)
    started = time.monotonic()
    deployed = deploy(state, hosts, timeout=timeout)
    seconds = time.monotonic() - started
    try:
        up = [s for s in connect(state).compute.services() if s.binary == "nova-compute" and s.state == "up"]
        return seconds, len(up)
    finally:
        deployed.destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--computes", type=int, default=50, help="compute hosts of the large process run")
    parser.add_argument("--skip-docker", action="store_true", help="no Docker engine here")
    args = parser.parse_args()
    os.environ.setdefault("ROLLGATE_RESULTS", tempfile.mkdtemp(prefix="deploy-bench-"))
    failed = False
    figures: dict[str, float] = {}
    for backend in ("process",) if args.skip_docker else ("docker", "process"):
        seconds, up = timed_deploy(backend, default_topology())
        figures[backend] = seconds
        verdict = "ok" if seconds <= TARGETS[backend] else "OVER TARGET"
        failed |= seconds > TARGETS[backend]
        print(f"{backend:<8} default topology (8 hosts, {up} computes up): {seconds:6.2f} s "
              f"(target <= {TARGETS[backend]:.0f} s) {verdict}")
    seconds, up = timed_deploy("process", with_computes(args.computes), timeout=300.0)
    per_host = (seconds - figures["process"]) / (args.computes - 3)
    print(f"process  {args.computes} computes ({up} up): {seconds:6.2f} s; "
          f"{per_host * 1000:.0f} ms per added compute host")
    failed |= up != args.computes
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

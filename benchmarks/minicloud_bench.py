"""Benchmark: minicloud start time, time to 10 ACTIVE servers, whole-cloud memory.

    .venv/bin/python benchmarks/minicloud_bench.py [--computes 3] [--servers 10] [--repeat 3]

Prints one line per figure (targets from issue 2: start <= 5 s, 10 servers
ACTIVE <= 5 s, whole cloud RSS <= 600 MiB). RSS is summed over every process
of the run (services and instances); PSS (shared pages split between the
processes that share them) is printed too, as the fairer measure of memory.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.backends import procutil
from harness.deploy import all_in_one, connect, deploy
from harness.runstate import RunState


def memory_kib(pids: list[int]) -> tuple[int, int]:
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


def one_run(computes: int, servers: int) -> dict[str, float]:
    state = RunState(run_id="bench-" + secrets.token_hex(3), backend="process")
    started = time.monotonic()
    backend = deploy(state, all_in_one("1.0", computes))
    up = time.monotonic() - started
    try:
        conn = connect(state)
        image = next(iter(conn.image.images()))
        flavor = next(iter(conn.compute.flavors()))
        started = time.monotonic()
        created = [conn.compute.create_server(name=f"b{i}", image_id=image.id, flavor_id=flavor.id,
                                              networks="none") for i in range(servers)]
        for server in created:
            conn.compute.wait_for_server(server, status="ACTIVE", wait=60, interval=0.05)
        active = time.monotonic() - started
        pids = procutil.tagged_pids(state.run_id)
        rss, pss = memory_kib(pids)
        return {"up_s": up, "active_s": active, "rss_mib": rss / 1024, "pss_mib": pss / 1024,
                "processes": len(pids)}
    finally:
        backend.destroy()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--computes", type=int, default=3)
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("ROLLGATE_RESULTS", tempfile.mkdtemp(prefix="rollgate-bench-"))
    runs = [one_run(args.computes, args.servers) for _ in range(args.repeat)]
    for key, label, target in (("up_s", f"start controller + {args.computes} computes (s)", "<= 5"),
                               ("active_s", f"{args.servers} servers ACTIVE (s)", "<= 5"),
                               ("rss_mib", "whole cloud RSS, sum (MiB)", "<= 600"),
                               ("pss_mib", "whole cloud PSS, sum (MiB)", ""),
                               ("processes", "processes", "")):
        values = [r[key] for r in runs]
        print(f"{label:<40} median {statistics.median(values):8.2f}  "
              f"min {min(values):8.2f}  max {max(values):8.2f}  target {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

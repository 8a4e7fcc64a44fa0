"""Benchmark: deploying the openstack profile on Docker, its memory, one boot, its cleanup.

    .venv/bin/python benchmarks/openstack_deploy_bench.py [--release 2026.1] [--computes 3] [--idle 20]

Deploys exactly what ``rollgate up --cloud openstack`` deploys (same code),
then boots one server through the load balancer (demo user, ``networks="none"``)
and deletes it, stays idle ``--idle`` seconds, and removes the cloud. Prints
the deploy time and its phases, the time to ACTIVE and to deleted, the cleanup
time, and the cloud's memory: the sum of the run's containers' RSS (cgroup
``total_rss`` on v1, ``anon`` on v2), sampled every second from before the
first container starts to the cleanup; its peak while deploying and overall,
and the steady value at the end. Fails (exit 1) if anything of the run is left.
"""
from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.backends.docker_resources import docker_client, leftovers
from harness.clouds.openstack import STANDIN_IMAGE_ID
from harness.clouds.openstack.deploy import MemorySampler, deploy_openstack
from harness.deploy import connect
from harness.runstate import RunState

GIB = 2**30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="2026.1")
    parser.add_argument("--computes", type=int, default=3)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds idle before the steady sample")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("ROLLGATE_RESULTS", tempfile.mkdtemp(prefix="os-bench-"))
    run_id = "os-bench-" + secrets.token_hex(3)
    client = docker_client()
    state = RunState(run_id=run_id, backend="docker", cloud="openstack")
    started = time.monotonic()
    cloud = deploy_openstack(state, args.release, args.computes, client=client)
    deploy_seconds = time.monotonic() - started
    info = state.extra["openstack"]
    print(f"openstack {args.release}, {args.computes} computes: deploy {deploy_seconds:.1f}s "
          f"(rollgate up reports {state.extra['deploy_seconds']}s)")
    for name, seconds in info["phases"].items():
        print(f"  t+{seconds:6.1f}s  {name}")
    try:
        with MemorySampler(cloud.memory_rss, interval=1.0) as sampler:
            demo, admin = connect(state, "rollgate-demo"), connect(state)
            flavor = admin.compute.find_flavor("m1.tiny", ignore_missing=False)
            mark = time.monotonic()
            server = demo.compute.create_server(name=f"{run_id}-vm", image_id=STANDIN_IMAGE_ID,
                                                flavor_id=flavor.id, networks="none")
            server = demo.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=1,
                                                  wait=300)
            active = time.monotonic() - mark
            mark = time.monotonic()
            demo.compute.delete_server(server)
            demo.compute.wait_for_delete(server, interval=1, wait=180)
            deleted = time.monotonic() - mark
            time.sleep(args.idle)  # the length of the idle period measured, not a wait for readiness
            steady = cloud.memory_rss()
        print(f"  boot to ACTIVE {active:.1f}s, delete {deleted:.1f}s")
        print(f"  peak RSS of the cloud: deploy {info['peak_rss_bytes'] / GIB:.2f} GiB, "
              f"boot/delete/idle {sampler.peak / GIB:.2f} GiB; steady after {args.idle:.0f}s idle "
              f"{steady / GIB:.2f} GiB")
    finally:
        mark = time.monotonic()
        cloud.destroy()
        left = leftovers(client, run_id)
        print(f"  cleanup {time.monotonic() - mark:.1f}s; left: "
              f"{'nothing' if not any(left.values()) else left}")
    return 0 if not any(left.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

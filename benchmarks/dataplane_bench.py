"""Benchmark minicloud's data plane on this machine (real processes on loopback).

Prints: the live-migration hold gap over 5 migrations under two writers (plus
the longest gap the writers saw), the RSS of 10 workloads, and the datapath's
throughput for small keep-alive HTTP requests through a floating port.

    .venv/bin/python benchmarks/dataplane_bench.py [--seconds 5] [--clients 4]

Targets (DESIGN.md / the data-plane brief): gap <= 200 ms, 10 workloads in
~100 MiB, >= 1000 req/s through the datapath on 2 cores.
"""
from __future__ import annotations

import argparse
import http.client
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "images" / "minicloud"))

from minicloud.dataplane.httpjson import call_json
from minicloud.dataplane.launcher import DataplaneHost, endpoints_for
from minicloud.dataplane.probe import WriteProbe, read_back


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def bench_migrations(net: DataplaneHost, compute: DataplaneHost, count: int) -> None:
    server = call_json("POST", f"{net.url('hypervisor')}/instances", {"uuid": "vm-bench", "data": {}})
    call_json("PUT", f"{net.url('network')}/floating/20001", {"target": f"{net.bind}:{server['port']}"})
    probes = [WriteProbe(net.bind, 20001, name=n, reuse_connection=r, max_seconds=120).start()
              for n, r in (("fresh", False), ("kept", True))]
    gaps, where = [], (net, compute)
    try:
        for index in range(count):
            time.sleep(0.5)  # benchmark pacing: let the writers build up some log between migrations
            source, dest = where[index % 2], where[(index + 1) % 2]
            answer = call_json("POST", f"{source.url('hypervisor')}/instances/vm-bench/migrate",
                               {"dest": dest.url("hypervisor"), "network": net.url("network"),
                                "floating_port": 20001}, timeout=60)
            gaps.append(float(answer["gap_ms"]))
        time.sleep(0.5)
    finally:
        for probe in probes:
            probe.stop()
    failures = [f for p in probes for f in p.failures]
    lost = sum(len(read_back(answer["address"], int(answer["port"]), p.acked)) for p in probes)
    print(f"live migration: {count} migrations, hold gap ms: mean {statistics.mean(gaps):.1f}, "
          f"max {max(gaps):.1f} (all: {', '.join(f'{g:.1f}' for g in gaps)}); "
          f"longest gap seen by a writer {max(p.longest_gap() for p in probes) * 1000:.1f} ms; "
          f"acknowledged writes {sum(len(p.acked) for p in probes)}, lost {lost}, failed requests "
          f"{len(failures)}")


def bench_rss(compute: DataplaneHost, count: int) -> None:
    pids = []
    for index in range(count):
        server = call_json("POST", f"{compute.url('hypervisor')}/instances", {"uuid": f"vm-rss-{index}"})
        conn = http.client.HTTPConnection(compute.bind, int(server["port"]), timeout=10)
        conn.request("PUT", "/kv/k", body=b"v")
        conn.getresponse().read()
        conn.close()
        pids.append(int(server["pid"]))
    sizes = [rss_mib(pid) for pid in pids]
    print(f"workload RSS: {count} instances, total {sum(sizes):.1f} MiB "
          f"(each {min(sizes):.1f}-{max(sizes):.1f} MiB)")


def _client(address: str, port: int, seconds: float, reuse: bool,
            results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    done = errors = 0
    conn = http.client.HTTPConnection(address, port, timeout=10)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn.request("GET", "/kv/k")
            response = conn.getresponse()
            response.read()
            done += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
        if not reuse:
            conn.close()  # the next request opens a new connection
    conn.close()
    results.put((done, errors))


def bench_throughput(net: DataplaneHost, seconds: float, clients: int) -> None:
    server = call_json("POST", f"{net.url('hypervisor')}/instances", {"uuid": "vm-tput"})
    call_json("PUT", f"{net.url('network')}/floating/20002", {"target": f"{net.bind}:{server['port']}"})
    conn = http.client.HTTPConnection(net.bind, 20002, timeout=10)
    conn.request("PUT", "/kv/k", body=b"small")
    conn.getresponse().read()
    conn.close()
    for reuse, kind in ((True, "keep-alive"), (False, "new-connection")):
        results: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        workers = [multiprocessing.Process(target=_client, args=(net.bind, 20002, seconds, reuse, results))
                   for _ in range(clients)]
        for worker in workers:
            worker.start()
        totals = [results.get(timeout=seconds + 30) for _ in workers]
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
        done = sum(t[0] for t in totals)
        print(f"datapath throughput: {done / seconds:.0f} req/s ({clients} {kind} clients, {seconds:.0f} s,"
              f" small GETs through a floating port; errors {sum(t[1] for t in totals)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--migrations", type=int, default=5)
    args = parser.parse_args()
    rng = random.SystemRandom()
    prefix = f"127.{rng.randint(20, 99)}.{rng.randint(1, 254)}"
    with tempfile.TemporaryDirectory(prefix="dataplane-bench-") as tmp:
        net = DataplaneHost("net-1", f"{prefix}.1", Path(tmp), endpoints_for(f"{prefix}.1"))
        compute = DataplaneHost("compute-2", f"{prefix}.2", Path(tmp), endpoints_for(f"{prefix}.1"))
        try:
            for service in ("datapath", "network", "hypervisor"):
                net.start(service)
            compute.start("hypervisor")
            bench_migrations(net, compute, args.migrations)
            bench_rss(compute, 10)
            bench_throughput(net, args.seconds, args.clients)
        finally:
            compute.cleanup()
            net.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Data plane end to end: real hypervisor, datapath, network agent and workload
processes on loopback addresses, driven through their HTTP APIs.

Each test gets its own pair of random 127.x.y.z addresses (every service binds
a fixed port), its own state dirs, and a fixture that stops every service and
kills every workload, also when the test fails.
"""
from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from minicloud.dataplane.httpjson import call_json
from minicloud.dataplane.launcher import DataplaneHost, endpoints_for
from minicloud.dataplane.probe import WriteProbe, read_back
from minicloud.dataplane.workload_process import pid_alive

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def wait_for(condition, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Cloud:
    """Two fake hosts: ``net`` (datapath, network agent, hypervisor) and ``compute``."""

    def __init__(self, root: Path) -> None:
        rng = random.SystemRandom()
        prefix = f"127.{rng.randint(20, 99)}.{rng.randint(1, 254)}"
        net_bind = f"{prefix}.1"
        endpoints = endpoints_for(net_bind)
        self.net = DataplaneHost("net-1", net_bind, root, endpoints)
        self.compute = DataplaneHost("compute-2", f"{prefix}.2", root, endpoints)

    def start(self) -> None:
        self.net.start("datapath")
        self.net.start("network")
        self.net.start("hypervisor")
        self.compute.start("hypervisor")

    def boot(self, host: DataplaneHost, uuid: str, floating_port: int) -> dict[str, object]:
        server = call_json("POST", f"{host.url('hypervisor')}/instances", {"uuid": uuid, "data": {"n": 1}})
        call_json("PUT", f"{self.net.url('network')}/floating/{floating_port}",
                  {"target": f"{host.bind}:{server['port']}"})
        return server  # type: ignore[no-any-return]


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    cloud = Cloud(tmp_path)
    try:
        cloud.start()
        yield cloud
    finally:
        cloud.compute.cleanup()
        cloud.net.cleanup()


def test_live_migration_under_writers_loses_nothing(cloud: Cloud) -> None:
    server = cloud.boot(cloud.net, "vm-migrate", 20001)
    floating = (cloud.net.bind, 20001)
    probes = [WriteProbe(*floating, name="fresh", reuse_connection=False, max_seconds=30).start(),
              WriteProbe(*floating, name="kept", reuse_connection=True, max_seconds=30).start()]
    try:
        wait_for(lambda: all(len(p.acked) > 50 for p in probes), 10, "writers warming up")
        there = call_json("POST", f"{cloud.net.url('hypervisor')}/instances/vm-migrate/migrate",
                          {"dest": cloud.compute.url("hypervisor"), "network": cloud.net.url("network"),
                           "floating_port": 20001}, timeout=30)
        counts = [len(p.acked) for p in probes]
        wait_for(lambda: all(len(p.acked) > c + 50 for p, c in zip(probes, counts, strict=True)), 10,
                 "writes after the first migration")
        back = call_json("POST", f"{cloud.compute.url('hypervisor')}/instances/vm-migrate/migrate",
                         {"dest": cloud.net.url("hypervisor"), "network": cloud.net.url("network"),
                          "floating_port": 20001}, timeout=30)
        counts = [len(p.acked) for p in probes]
        wait_for(lambda: all(len(p.acked) > c + 50 for p, c in zip(probes, counts, strict=True)), 10,
                 "writes after the migration back")
    finally:
        for probe in probes:
            probe.stop()
    gap = max(p.longest_gap() for p in probes)
    print(f"\nmigration hold gaps: {there['gap_ms']} ms, {back['gap_ms']} ms; "
          f"longest client-side gap {gap * 1000:.1f} ms; writes {[len(p.acked) for p in probes]}")
    assert [f for p in probes for f in p.failures] == []
    assert there["address"] == cloud.compute.bind
    assert back["address"] == cloud.net.bind
    for probe in probes:
        assert read_back(cloud.net.bind, int(back["port"]), probe.acked) == []
    assert gap < 2.0
    # the instance is known only where it runs now; the source workloads went away
    assert call_json("GET", f"{cloud.compute.url('hypervisor')}/instances")["instances"] == []
    listed = call_json("GET", f"{cloud.net.url('hypervisor')}/instances")["instances"]
    assert [(i["uuid"], i["port"]) for i in listed] == [("vm-migrate", back["port"])]
    wait_for(lambda: not pid_alive(int(server["pid"])), 15, "the first source workload to exit")


def test_failed_migration_rolls_back_and_keeps_serving(cloud: Cloud) -> None:
    cloud.boot(cloud.net, "vm-stay", 20002)
    probe = WriteProbe(cloud.net.bind, 20002, name="w", reuse_connection=True, max_seconds=20).start()
    try:
        wait_for(lambda: len(probe.acked) > 20, 10, "writer warming up")
        cloud.net.services["network"].stop()  # the switch step will fail
        status_body = None
        try:
            call_json("POST", f"{cloud.net.url('hypervisor')}/instances/vm-stay/migrate",
                      {"dest": cloud.compute.url("hypervisor"), "network": cloud.net.url("network"),
                       "floating_port": 20002}, timeout=30)
        except Exception as exc:
            status_body = str(exc)
        before = len(probe.acked)
        wait_for(lambda: len(probe.acked) > before + 20, 10, "writes after the rollback")
    finally:
        probe.stop()
    assert status_body is not None
    assert "HTTP 500" in status_body
    assert "rolled back" in status_body
    assert probe.failures == []
    source = call_json("GET", f"{cloud.net.url('hypervisor')}/instances/vm-stay")
    assert read_back(cloud.net.bind, int(source["port"]), probe.acked) == []
    assert call_json("GET", f"{cloud.compute.url('hypervisor')}/instances")["instances"] == []


def test_network_agent_restart_never_interrupts_forwarding(cloud: Cloud) -> None:
    cloud.boot(cloud.net, "vm-net", 20003)
    table_before = call_json("GET", f"{cloud.net.url('datapath')}/floating")
    probes = [WriteProbe(cloud.net.bind, 20003, name=n, reuse_connection=r, max_seconds=30).start()
              for n, r in (("fresh", False), ("kept", True))]
    try:
        wait_for(lambda: all(len(p.acked) > 20 for p in probes), 10, "writers warming up")
        for _ in range(2):
            assert cloud.net.services["network"].stop() == 0
            counts = [len(p.acked) for p in probes]
            wait_for(lambda c=counts: all(len(p.acked) > n + 20 for p, n in zip(probes, c, strict=True)),
                     10, "writes while the agent is down")
            cloud.net.start("network")
        wait_for(lambda: all(len(p.acked) > 200 for p in probes), 10, "writes after the restarts")
    finally:
        for probe in probes:
            probe.stop()
    assert [f for p in probes for f in p.failures] == []
    assert call_json("GET", f"{cloud.net.url('datapath')}/floating") == table_before
    assert call_json("GET", f"{cloud.net.url('network')}/floating")["floating"] == table_before["floating"]


def test_datapath_restart_restores_and_agent_repairs(cloud: Cloud) -> None:
    server = cloud.boot(cloud.net, "vm-dp", 20004)
    datapath = cloud.net.url("datapath")
    cloud.net.services["datapath"].stop()
    (cloud.net.state_dir / "datapath.json").unlink()  # a datapath that lost its table
    cloud.net.start("datapath")
    target = f"{cloud.net.bind}:{server['port']}"
    wait_for(lambda: call_json("GET", datapath + "/floating")["floating"], 10, "the agent's re-sync")
    assert [(e["port"], e["target"]) for e in call_json("GET", datapath + "/floating")["floating"]] == [
        (20004, target)]
    probe = WriteProbe(cloud.net.bind, 20004, name="w", reuse_connection=False, max_requests=30).start()
    probe.thread.join(20)
    assert probe.failures == []
    assert len(probe.acked) == 30


def test_hypervisor_restart_keeps_workloads_and_reboot_restarts_them(cloud: Cloud) -> None:
    hypervisor = cloud.net.url("hypervisor")
    servers = {u: cloud.boot(cloud.net, u, port) for u, port in (("vm-a", 20005), ("vm-b", 20006))}
    writes = {}
    for uuid, port in (("vm-a", 20005), ("vm-b", 20006)):
        probe = WriteProbe(cloud.net.bind, port, name=uuid, reuse_connection=True, max_requests=40).start()
        probe.thread.join(20)
        assert probe.failures == []
        writes[uuid] = probe.acked

    # 1. restart the service: workloads keep running (same pids) and keep serving meanwhile
    assert cloud.net.services["hypervisor"].stop() == 0
    for uuid, server in servers.items():
        assert pid_alive(int(server["pid"]))
        assert read_back(cloud.net.bind, int(server["port"]), writes[uuid]) == []
    cloud.net.start("hypervisor")
    listed = {i["uuid"]: i for i in call_json("GET", f"{hypervisor}/instances")["instances"]}
    assert {u: (i["pid"], i["port"], i["status"]) for u, i in listed.items()} == {
        u: (s["pid"], s["port"], "active") for u, s in servers.items()}

    # 2. simulated host reboot: the workload of vm-a and the hypervisor die by SIGKILL
    os.killpg(int(servers["vm-a"]["pid"]), signal.SIGKILL)
    wait_for(lambda: not pid_alive(int(servers["vm-a"]["pid"])), 5, "vm-a's workload to die")
    assert call_json("GET", f"{hypervisor}/instances/vm-a")["status"] == "stopped"
    cloud.net.services["hypervisor"].kill()
    cloud.net.start("hypervisor")
    listed = {i["uuid"]: i for i in call_json("GET", f"{hypervisor}/instances")["instances"]}
    assert listed["vm-a"]["pid"] != servers["vm-a"]["pid"]
    assert pid_alive(int(listed["vm-a"]["pid"]))
    assert listed["vm-a"]["port"] == servers["vm-a"]["port"]  # the floating target stays valid
    assert listed["vm-b"]["pid"] == servers["vm-b"]["pid"]
    for uuid in servers:
        assert read_back(cloud.net.bind, int(servers[uuid]["port"]), writes[uuid]) == []
    # and through the floating port too, with the data it had before the "reboot"
    probe = WriteProbe(cloud.net.bind, 20005, name="after", reuse_connection=False, max_requests=5).start()
    probe.thread.join(20)
    assert probe.failures == []
    health = call_json("GET", f"http://{cloud.net.bind}:{servers['vm-a']['port']}/health")
    assert health["writes"] == len(writes["vm-a"]) + 5

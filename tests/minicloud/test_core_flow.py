"""End to end through the control plane and the real data plane, in a mixed-version cloud.

1.1 conductor and scheduler, a 1.0 agent on compute-1 and a 1.1 agent on
compute-2 (the middle of a rolling upgrade, ``upgrade_levels.compute=auto``),
hypervisors, the network agent and the datapath. Instances are created in the
database directly (the compute API is another engineer's part) and driven
through ``ConductorAPI`` exactly as the compute API does.
"""
from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from minicloud import db
from minicloud.db import api
from minicloud.rpc import ConductorAPI

from tests.minicloud.core_support import CoreCloud, http_json, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def mixed_cloud(tmp_path: Path) -> Iterator[CoreCloud]:
    cloud = CoreCloud(tmp_path, release="1.1")
    try:
        cloud.prepare_schema(("expand", "1.0"), ("contract", "1.0"), ("expand", "1.1"))
        cloud.start("conductor")
        cloud.start("scheduler")
        started = [cloud.start("datapath", "network", wait=False),
                   cloud.start("network", "network", wait=False)]
        for host, release in (("compute-1", "1.0"), ("compute-2", "1.1")):
            started.append(cloud.start("hypervisor", host, release=release, wait=False))
            started.append(cloud.start("compute-agent", host, release=release, wait=False))
        cloud.wait_ready(started)
        yield cloud
    finally:
        cloud.stop_all()


def kv(method: str, url: str, body: bytes | None = None) -> bytes:
    request = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def wait_instance(cloud: CoreCloud, engine: Any, uuid: str, what: str,
                  predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
    def current() -> dict[str, Any] | None:
        instance = api.instance_get(engine, uuid)
        return instance if predicate(instance) else None
    return wait_until(current, timeout, what, evidence=cloud.logs)


def test_build_migrate_reboot_delete_across_versions(mixed_cloud: CoreCloud) -> None:
    cloud = mixed_cloud
    engine = db.connect(cloud.database)
    conductor = ConductorAPI(cloud.config())
    built = []
    for n in range(2):
        inst = api.instance_create(engine, {"name": f"vm{n}", "project_id": "p", "flavor_id": "1",
                                            "image_ref": "cirros", "description": "mixed"})
        conductor.build_instances({"project_id": "p"}, str(inst["uuid"]))
        built.append(wait_instance(cloud, engine, str(inst["uuid"]), "ACTIVE",
                                   lambda i: i["vm_state"] != "building"))
    assert [i["vm_state"] for i in built] == ["active", "active"], [i["fault"] for i in built]
    # Least-loaded scheduling put one on each host, the 1.0 agent included
    # (the 1.1 conductor capped its message to RPC 1.0 / Instance 1.0).
    assert sorted(i["host"] for i in built) == ["compute-1", "compute-2"]

    on_old = next(i for i in built if i["host"] == "compute-1")
    uuid = str(on_old["uuid"])
    floating = f"http://{on_old['floating_ip']}:{on_old['floating_port']}"
    kv("PUT", f"{floating}/kv/greeting", b"hello")

    conductor.live_migrate_instance(None, uuid, None)
    migration = wait_until(lambda: next((m for m in api.migration_list(engine, uuid)
                                         if m["status"] in ("error", "completed")), None),
                           60, "migration to finish", evidence=cloud.logs)
    assert (migration["status"], migration["error"]) == ("completed", None)
    moved = api.instance_get(engine, uuid)
    assert (moved["host"], moved["vm_state"], moved["task_state"]) == ("compute-2", "active", None)
    assert kv("GET", f"{floating}/kv/greeting") == b"hello"

    hypervisor_2 = cloud.url("hypervisor", "compute-2")
    pid_before = http_json("GET", f"{hypervisor_2}/instances/{uuid}")[1]["pid"]
    conductor.reboot_instance(None, uuid, "SOFT")
    wait_until(lambda: http_json("GET", f"{hypervisor_2}/instances/{uuid}")[1]["pid"] != pid_before,
               30, "the workload to restart", evidence=cloud.logs)
    rebooted = wait_instance(cloud, engine, uuid, "reboot done", lambda i: i["task_state"] is None)
    assert (rebooted["vm_state"], rebooted["fault"]) == ("active", None)
    assert kv("GET", f"{floating}/kv/greeting") == b"hello"

    conductor.delete_instance(None, uuid)
    wait_instance(cloud, engine, uuid, "DELETED", lambda i: i["vm_state"] == "deleted")
    assert http_json("GET", f"{hypervisor_2}/instances/{uuid}")[0] == 404
    ports = [f.get("port") for f in http_json("GET", f"{cloud.url('network', 'network')}/floating")[1]
             ["floating"]]
    assert on_old["floating_port"] not in ports
    assert [i["uuid"] for i in api.instance_list(engine)] == [built[1]["uuid"]] \
        if built[1]["uuid"] != uuid else [built[0]["uuid"]]


def test_failed_live_migration_leaves_instance_active_on_source(mixed_cloud: CoreCloud) -> None:
    cloud = mixed_cloud
    engine = db.connect(cloud.database)
    conductor = ConductorAPI(cloud.config())
    inst = api.instance_create(engine, {"name": "stay", "project_id": "p", "flavor_id": "1"})
    uuid = str(inst["uuid"])
    conductor.build_instances(None, uuid)
    active = wait_instance(cloud, engine, uuid, "ACTIVE", lambda i: i["vm_state"] != "building")
    assert active["vm_state"] == "active", active["fault"]
    source = active["host"]
    dest = "compute-2" if source == "compute-1" else "compute-1"
    # The destination agent stops; it still counts as up (heartbeat within
    # service_down_time), so the conductor casts and the source agent's check fails.
    next(p for p in cloud.procs if p.service == "compute-agent" and p.host == dest).stop()
    conductor.live_migrate_instance(None, uuid, dest)
    migration = wait_until(lambda: next((m for m in api.migration_list(engine, uuid)
                                         if m["status"] in ("error", "completed")), None),
                           30, "migration to finish", evidence=cloud.logs)
    assert migration["status"] == "error"
    after = api.instance_get(engine, uuid)
    assert (after["host"], after["vm_state"], after["task_state"]) == (source, "active", None)

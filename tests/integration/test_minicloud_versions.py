"""Mixed versions, the RPC/object version cap, and the 1.1 security defect."""
from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import hosts_with
from tests.integration.test_minicloud_sdk import WAIT, boot

pytestmark = pytest.mark.integration


def _boot_on(conn: Any, host: str, name: str) -> Any:
    """Boot servers until one lands on ``host`` (the scheduler spreads them)."""
    for attempt in range(6):
        (server,) = boot_any(conn, f"{name}-{attempt}")
        if server.compute_host == host:
            return server
    raise AssertionError(f"no server was scheduled to {host}")


def boot_any(conn: Any, name: str) -> list[Any]:
    image = next(iter(conn.image.images()))
    flavor = next(f for f in conn.compute.flavors() if f.name == "m1.tiny")
    server = conn.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id, networks="none")
    return [conn.compute.wait_for_server(server, status=("ACTIVE"), failures=["ERROR"], wait=WAIT,
                                         interval=0.1)]


def test_mixed_cloud_with_auto_cap_handles_every_operation(make_cloud: Any) -> None:
    cloud = make_cloud(hosts=hosts_with("1.1", 3, {"compute-3": "1.0"}))
    conn = cloud.conn
    versions = {s.host: s for s in conn.compute.services() if s.binary == "compute-agent"}
    assert set(versions) == {"compute-1", "compute-2", "compute-3"}
    servers = boot(conn, "mixed", 6)
    assert "compute-3" in {s.compute_host for s in servers}
    old = next(s for s in servers if s.compute_host == "compute-3")
    conn.compute.live_migrate_server(old, host=None, block_migration="auto")
    conn.compute.wait_for_server(old, status="ACTIVE", wait=WAIT, interval=0.1)
    assert conn.compute.get_server(old.id).compute_host != "compute-3"
    new = next(s for s in servers if s.compute_host != "compute-3")
    conn.compute.live_migrate_server(new, host="compute-3", block_migration="auto")
    conn.compute.wait_for_server(new, status="ACTIVE", wait=WAIT, interval=0.1)
    assert conn.compute.get_server(new.id).compute_host == "compute-3"
    conn.compute.reboot_server(new, "SOFT")
    conn.compute.wait_for_server(new, status="ACTIVE", wait=WAIT, interval=0.1)
    for server in servers:
        conn.compute.delete_server(server)
    for server in servers:
        conn.compute.wait_for_delete(server, wait=WAIT, interval=0.1)


def test_without_the_cap_an_old_compute_cannot_read_new_objects(make_cloud: Any) -> None:
    cloud = make_cloud(hosts=hosts_with("1.1", 1, {"compute-1": "1.0"}),
                       config={"upgrade_levels": {"compute": None}})
    conn = cloud.conn
    image = next(iter(conn.image.images()))
    flavor = next(f for f in conn.compute.flavors() if f.name == "m1.tiny")
    server = conn.compute.create_server(name="uncapped", image_id=image.id, flavor_id=flavor.id,
                                        networks="none")
    server = conn.compute.wait_for_server(server, status="ERROR", failures=["ACTIVE"], wait=WAIT,
                                          interval=0.1)
    fault = (server.fault or {}).get("message", "")
    assert "IncompatibleObjectVersion" in fault or "UnsupportedVersion" in fault, fault
    log = cloud.backend.logs("compute-1", "compute-agent")
    assert "Instance" in log, log[-2000:]


@pytest.mark.parametrize(("release", "leaks"), [("1.1", True), ("1.1.1", False), ("1.0", False)])
def test_security_defect_is_observable_at_1_1_only(make_cloud: Any, release: str, leaks: bool) -> None:
    cloud = make_cloud(release=release, computes=1)
    (admin_server,) = boot(cloud.conn, "admin-owned", 1)
    demo = cloud.connect("rollgate-demo")
    seen = {s.id for s in demo.compute.servers()}
    assert (admin_server.id in seen) is leaks

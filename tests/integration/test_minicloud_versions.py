"""Mixed versions, the RPC/object version cap, and the 1.1 security defect."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration.conftest import hosts_with
from tests.integration.test_minicloud_sdk import WAIT, boot, settle

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
    versions = {s.host: s for s in conn.compute.services() if s.binary == "nova-compute"}
    assert set(versions) == {"compute-1", "compute-2", "compute-3"}
    servers = boot(conn, "mixed", 6)
    assert "compute-3" in {s.compute_host for s in servers}
    old = next(s for s in servers if s.compute_host == "compute-3")
    conn.compute.live_migrate_server(old, host=None, block_migration="auto")
    assert settle(conn, old).compute_host != "compute-3"
    new = next(s for s in servers if s.compute_host != "compute-3")
    conn.compute.live_migrate_server(new, host="compute-3", block_migration="auto")
    assert settle(conn, new).compute_host == "compute-3"
    conn.compute.reboot_server(new, "SOFT")
    settle(conn, new)
    for server in servers:
        conn.compute.delete_server(server)
    for server in servers:
        conn.compute.wait_for_delete(server, wait=WAIT, interval=0.1)


def test_without_the_cap_an_old_compute_refuses_new_messages(make_cloud: Any) -> None:
    cloud = make_cloud(hosts=hosts_with("1.1", 1, {"compute-1": "1.0"}),
                       config={"upgrade_levels": {"compute": None}})
    conn = cloud.conn
    image = next(iter(conn.image.images()))
    flavor = next(f for f in conn.compute.flavors() if f.name == "m1.tiny")
    server = conn.compute.create_server(name="uncapped", image_id=image.id, flavor_id=flavor.id,
                                        networks="none")
    server = conn.compute.wait_for_server(server, status="ERROR", failures=["ACTIVE"], wait=WAIT,
                                          interval=0.1)
    # build_and_run_instance gained an argument in 1.1: the 1.0 agent refuses the RPC version.
    assert "UnsupportedVersion" in (server.fault or {}).get("message", ""), server.fault
    assert "RPC version 1.1 not supported" in cloud.backend.logs("compute-1", "compute-agent")


def test_unpinning_too_early_breaks_old_computes_on_objects(make_cloud: Any) -> None:
    cloud = make_cloud(hosts=hosts_with("1.1", 1, {"compute-1": "1.0"}))
    conn = cloud.conn
    (server,) = boot(conn, "pinned", 1)
    # Unpin the conductor while a 1.0 compute is still registered (the
    # operator's mistake that [upgrade_levels] compute=auto prevents).
    path = cloud.backend.config_path("controller")
    config = json.loads(path.read_text())
    config["upgrade_levels"] = {"compute": None}
    path.write_text(json.dumps(config))
    cloud.backend.stop_service("controller", "conductor")
    cloud.backend.start_service("controller", "conductor")
    conn.compute.reboot_server(server, "SOFT")
    log = ""
    deadline = time.monotonic() + WAIT
    refusal = "Version 1.1 of Instance is not supported, supported version is 1.0"
    while refusal not in log and time.monotonic() < deadline:
        time.sleep(0.1)
        log = cloud.backend.logs("compute-1", "compute-agent")
    # reboot_instance is still RPC 1.0, but it carries Instance 1.1 now.
    assert refusal in log, log[-2000:]


@pytest.mark.parametrize(("release", "leaks"), [("1.1", True), ("1.1.1", False), ("1.0", False)])
def test_security_defect_is_observable_at_1_1_only(make_cloud: Any, release: str, leaks: bool) -> None:
    cloud = make_cloud(release=release, computes=1)
    (admin_server,) = boot(cloud.conn, "admin-owned", 1)
    demo = cloud.connect("rollgate-demo")
    seen = {s.id for s in demo.compute.servers()}
    assert (admin_server.id in seen) is leaks

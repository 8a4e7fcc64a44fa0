"""openstacksdk, unmodified, against `rollgate up` clouds at every release."""
from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

pytestmark = pytest.mark.integration

WAIT = 30


def boot(conn: Any, name: str, count: int) -> list[Any]:
    image = next(iter(conn.image.images()))
    flavor = next(f for f in conn.compute.flavors() if f.name == "m1.tiny")
    servers = [conn.compute.create_server(name=f"{name}-{i}", image_id=image.id, flavor_id=flavor.id,
                                          networks="none") for i in range(count)]
    return [conn.compute.wait_for_server(s, status="ACTIVE", wait=WAIT, interval=0.1) for s in servers]


def settle(conn: Any, server: Any) -> Any:
    """Wait until an action on ``server`` is over (re-read first: the sdk checks its cached status)."""
    fresh = conn.compute.get_server(server.id)
    return conn.compute.wait_for_server(fresh, status="ACTIVE", failures=["ERROR"], wait=WAIT, interval=0.05)


def compute_service(conn: Any, host: str) -> Any:
    return next(s for s in conn.compute.services() if s.host == host and s.binary == "nova-compute")


@pytest.mark.parametrize("release", ["1.0", "1.1", "1.1.1", "2.0"])
def test_sdk_lifecycle_at_each_release(make_cloud: Any, release: str) -> None:
    cloud = make_cloud(release=release, computes=3)
    conn = cloud.conn

    assert [i.name for i in conn.image.images()], "no images listed"
    assert {"m1.tiny", "m1.small"} <= {f.name for f in conn.compute.flavors()}

    servers = boot(conn, "spread", 8)
    hosts = Counter(s.compute_host for s in servers)
    assert set(hosts) == {"compute-1", "compute-2", "compute-3"}, hosts

    # Maintenance mode: a disabled compute gets no new instance.
    service = compute_service(conn, "compute-1")
    conn.compute.disable_service(service, disabled_reason="rollgate maintenance")
    disabled = compute_service(conn, "compute-1")
    assert disabled.status == "disabled"
    assert disabled.disabled_reason == "rollgate maintenance"
    more = boot(conn, "avoid", 3)
    assert all(s.compute_host != "compute-1" for s in more), [s.compute_host for s in more]

    # Live migration off the disabled host (the scheduler picks the target).
    victim = next(s for s in servers if s.compute_host == "compute-1")
    conn.compute.live_migrate_server(victim, host=None, block_migration="auto")
    moved = settle(conn, victim)
    assert moved.compute_host not in ("compute-1", None), moved.compute_host
    migrations = list(conn.compute.migrations())
    assert any(m.server_id == victim.id and m.status == "completed" for m in migrations), migrations

    conn.compute.enable_service(disabled)
    assert compute_service(conn, "compute-1").status == "enabled"

    for server in servers + more:
        conn.compute.delete_server(server)
    for server in servers + more:
        conn.compute.wait_for_delete(server, wait=WAIT, interval=0.1)
    assert list(conn.compute.servers()) == []

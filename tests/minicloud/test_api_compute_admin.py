"""The compute API's admin resources: os-services, os-hypervisors, migrations, and their policy."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack.exceptions
import pytest

from tests.minicloud.api_support import (
    ADMIN_PASSWORD,
    FakeConductor,
    MiniCloud,
    compute_headers,
    db_engine,
    http,
    issue_token,
    running_compute_cloud,
    sdk_connection,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CIRROS = "3c0a4d0e-9f1c-4a55-8c36-1f0e5b5a0c01"
LIVE_MIGRATE_ANYWHERE = {"os-migrateLive": {"host": None, "block_migration": "auto"}}


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[MiniCloud, FakeConductor, dict[str, Any]]]:
    """A 1.1 cloud with two compute agents and a conductor registered, one server on compute-1."""
    from minicloud.db import api as db

    with running_compute_cloud(tmp_path, "1.1") as (cloud, conductor):
        engine = db_engine(cloud)
        services = {host: db.service_create_or_update(engine, host, "compute-agent", {"version": 11})
                    for host in ("compute-1", "compute-2")}
        services["conductor"] = db.service_create_or_update(engine, "controller", "conductor",
                                                            {"version": 11})
        conn = sdk_connection(cloud)
        server = conn.compute.create_server(name="vm", image_id=CIRROS, flavor_id="2", networks="none")
        db.instance_update(engine, server.id, {"vm_state": "active", "task_state": None, "host": "compute-1"})
        try:
            yield cloud, conductor, {"engine": engine, "services": services, "server": server.id,
                                     "conn": conn}
        finally:
            engine.dispose()


Seeded = tuple[MiniCloud, FakeConductor, dict[str, Any]]


def test_os_services_list_disable_enable_force_down(seeded: Seeded) -> None:
    cloud, _, world = seeded
    conn = world["conn"]
    listed = {(s.host, s.binary): s for s in conn.compute.services()}
    # Nova's binary names in the API (the services table keeps minicloud's, see DESIGN.md)
    assert set(listed) == {("compute-1", "nova-compute"), ("compute-2", "nova-compute"),
                           ("controller", "nova-conductor")}
    compute1 = listed[("compute-1", "nova-compute")]
    assert compute1.id == world["services"]["compute-1"]["uuid"]  # uuids from 2.53
    assert (compute1.status, compute1.state, compute1.availability_zone) == ("enabled", "up", "nova")
    # 2.53+: PUT /os-services/{uuid}
    disabled = conn.compute.disable_service(compute1, disabled_reason="upgrade drain")
    assert (disabled.status, disabled.disabled_reason) == ("disabled", "upgrade drain")
    assert conn.compute.enable_service(compute1).status == "enabled"
    forced = conn.compute.update_service(compute1, forced_down=True)
    assert forced.is_forced_down is True
    forced_view = next(s for s in conn.compute.services() if s.id == compute1.id)
    assert forced_view.state == "down"
    # before 2.53: the action URLs with host + binary, and integer ids
    token, url = conn.session.get_token(), f"{cloud.url('compute-api')}/v2.1/os-services"
    status, _, body = http("PUT", f"{url}/disable-log-reason", token,
                           {"host": "compute-2", "binary": "nova-compute", "disabled_reason": "old style"},
                           compute_headers("2.52"))
    assert (status, body["service"]["status"], body["service"]["disabled_reason"]) == (200, "disabled",
                                                                                      "old style")
    assert body["service"]["binary"] == "nova-compute"
    status, _, _ = http("PUT", f"{url}/disable", token, {"host": "compute-2", "binary": "compute-agent"},
                        compute_headers("2.52"))
    assert status == 404  # minicloud's internal name is not an API name
    status, _, body = http("GET", url, token, headers=compute_headers("2.52"))
    compute2 = next(s for s in body["services"] if s["host"] == "compute-2")
    assert isinstance(compute2["id"], int)
    assert compute2["status"] == "disabled"
    status, _, _ = http("PUT", f"{url}/enable", token, {"host": "compute-2", "binary": "nova-compute"},
                        compute_headers("2.52"))
    assert status == 200
    status, _, _ = http("PUT", f"{url}/enable", token, {"host": "compute-2", "binary": "nova-compute"},
                        compute_headers("2.53"))
    assert status == 404  # 2.53 addresses services by uuid only
    status, _, _ = http("PUT", f"{url}/{world['services']['conductor']['uuid']}", token,
                        {"forced_down": True}, compute_headers("2.53"))
    assert status == 400  # forced_down is for compute services


def test_os_services_binary_filter_speaks_novas_names(seeded: Seeded) -> None:
    """A client written for Nova filters ``binary=nova-compute`` and finds the compute agents."""
    cloud, _, world = seeded
    token, url = world["conn"].session.get_token(), f"{cloud.url('compute-api')}/v2.1/os-services"
    for version in ("2.1", "2.53"):
        status, _, body = http("GET", f"{url}?binary=nova-compute", token, headers=compute_headers(version))
        assert status == 200
        assert sorted(s["host"] for s in body["services"]) == ["compute-1", "compute-2"]
        assert {s["zone"] for s in body["services"]} == {"nova"}
        _, _, body = http("GET", f"{url}?binary=nova-conductor&host=controller", token,
                          headers=compute_headers(version))
        assert [(s["host"], s["binary"], s["zone"]) for s in body["services"]] == [
            ("controller", "nova-conductor", "internal")]
    _, _, body = http("GET", f"{url}?binary=compute-agent", token, headers=compute_headers("2.1"))
    assert body["services"] == []


def test_os_hypervisors(seeded: Seeded) -> None:
    _, _, world = seeded
    conn = world["conn"]
    hypervisors = {h.name: h for h in conn.compute.hypervisors(details=True)}
    assert set(hypervisors) == {"compute-1", "compute-2"}
    busy = hypervisors["compute-1"]
    assert (busy.running_vms, busy.memory_used, busy.state, busy.status) == (1, 2048, "up", "enabled")
    assert hypervisors["compute-2"].running_vms == 0
    assert conn.compute.get_hypervisor(busy.id).name == "compute-1"


def test_migrations_and_the_259_change(seeded: Seeded) -> None:
    cloud, _, world = seeded
    from minicloud.db import api as db

    engine, server = world["engine"], world["server"]
    done = db.migration_create(engine, {"instance_uuid": server, "source_host": "compute-2",
                                        "dest_host": "compute-1", "status": "completed"})
    running = db.migration_create(engine, {"instance_uuid": server, "source_host": "compute-1",
                                           "dest_host": "compute-2", "status": "running"})
    conn = world["conn"]
    assert {m.id for m in conn.compute.migrations()} == {done["id"], running["id"]}
    in_progress = list(conn.compute.server_migrations(server))
    assert [(m.id, m.status) for m in in_progress] == [(running["id"], "running")]  # as Nova: in progress
    token, url = conn.session.get_token(), f"{cloud.url('compute-api')}/v2.1/os-migrations"
    _, _, old = http("GET", url, token, headers=compute_headers("2.58"))
    _, _, new = http("GET", url, token, headers=compute_headers("2.59"))
    assert all("uuid" not in m for m in old["migrations"])
    assert [m["uuid"] for m in new["migrations"]] == [running["uuid"], done["uuid"]]  # newest first
    _, _, page = http("GET", f"{url}?limit=1", token, headers=compute_headers("2.59"))
    assert [m["uuid"] for m in page["migrations"]] == [running["uuid"]]
    assert "marker=" in page["migrations_links"][0]["href"]


def test_admin_resources_need_admin(seeded: Seeded) -> None:
    cloud, conductor, world = seeded
    demo = sdk_connection(cloud, "demo", "demo-password")
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(demo.compute.services())
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(demo.compute.hypervisors())
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(demo.compute.migrations())
    # demo cannot see (so cannot migrate) admin's server; admin token can, demo's own server is 403
    token = issue_token(cloud, "demo", "demo-password", "demo")
    compute = cloud.url("compute-api")
    status, _, _ = http("POST", f"{compute}/v2.1/servers/{world['server']}/action", token,
                        LIVE_MIGRATE_ANYWHERE, compute_headers("2.30"))
    assert status == 404
    own = demo.compute.create_server(name="mine", image_id=CIRROS, flavor_id="1", networks="none")
    from minicloud.db import api as db

    db.instance_update(world["engine"], own.id,
                       {"vm_state": "active", "task_state": None, "host": "compute-2"})
    status, _, _ = http("POST", f"{compute}/v2.1/servers/{own.id}/action", token,
                        LIVE_MIGRATE_ANYWHERE, compute_headers("2.30"))
    assert status == 403
    assert not [m for m, _ in conductor.methods() if m == "live_migrate_instance"]
    admin_token = issue_token(cloud, "admin", ADMIN_PASSWORD, "admin")
    status, _, _ = http("GET", f"{compute}/v2.1/os-services", admin_token)
    assert status == 200

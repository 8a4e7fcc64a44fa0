"""The compute API as a real process: discovery, microversions, servers, the 1.1 security defect.

A fake conductor records the casts: the API's job ends there, and the test
plays the conductor's part by writing instance state into the database.
"""
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


@pytest.fixture
def cloud11(tmp_path: Path) -> Iterator[tuple[MiniCloud, FakeConductor]]:
    with running_compute_cloud(tmp_path, "1.1") as started:
        yield started


def _boot(conn: Any, name: str, **extra: Any) -> Any:
    return conn.compute.create_server(name=name, image_id=CIRROS, flavor_id="1", networks="none", **extra)


def test_discovery_and_microversion_negotiation(cloud11: tuple[MiniCloud, FakeConductor]) -> None:
    cloud, _ = cloud11
    compute = cloud.url("compute-api")
    status, _, body = http("GET", f"{compute}/")
    assert status == 200
    assert [(v["id"], v["version"], v["min_version"]) for v in body["versions"]] == [("v2.1", "2.60", "2.1")]
    status, _, body = http("GET", f"{compute}/v2.1")
    assert (status, body["version"]["version"]) == (200, "2.60")
    token = issue_token(cloud, "demo", "demo-password", "demo")
    flavors = f"{compute}/v2.1/flavors"
    # no header: the minimum; both header styles honoured and echoed in both forms
    for headers, expected in (({}, "2.1"), ({"X-OpenStack-Nova-API-Version": "2.42"}, "2.42"),
                              (compute_headers("2.55"), "2.55"), (compute_headers("latest"), "2.60"),
                              ({"OpenStack-API-Version": "image 2.9, compute 2.30"}, "2.30")):
        status, response_headers, body = http("GET", flavors, token, headers=headers)
        assert status == 200, headers
        assert response_headers["OpenStack-API-Version"] == f"compute {expected}"
        assert response_headers["X-OpenStack-Nova-API-Version"] == expected
        # flavor description is a 2.55 field: the negotiated version changes the body
        assert ("description" in body["flavors"][0]) == (expected in ("2.55", "2.60"))
    for bad, code in (("2.61", 406), ("2.0", 406), ("3.1", 406), ("two", 400)):
        status, _, body = http("GET", flavors, token, headers=compute_headers(bad))
        assert status == code, bad
    status, _, _ = http("GET", flavors)  # token required
    assert status == 401
    conn = sdk_connection(cloud)
    endpoint = conn.compute.get_endpoint_data()
    assert (endpoint.min_microversion, endpoint.max_microversion) == ((2, 1), (2, 60))
    assert sorted(f.name for f in conn.compute.flavors()) == ["m1.medium", "m1.small", "m1.tiny"]


def test_release_10_stops_at_253(tmp_path: Path) -> None:
    with running_compute_cloud(tmp_path, "1.0") as (cloud, _):
        token = issue_token(cloud, "admin", ADMIN_PASSWORD, "admin")
        url = f"{cloud.url('compute-api')}/v2.1/flavors"
        status, headers, _ = http("GET", url, token, headers=compute_headers("latest"))
        assert (status, headers["X-OpenStack-Nova-API-Version"]) == (200, "2.53")
        status, _, _ = http("GET", url, token, headers=compute_headers("2.59"))
        assert status == 406


def test_server_create_show_actions_delete(cloud11: tuple[MiniCloud, FakeConductor]) -> None:
    cloud, conductor = cloud11
    conn = sdk_connection(cloud)
    server = _boot(conn, "web-1", description="first server")
    assert server.admin_password
    assert conductor.methods() == [("build_instances", {"instance_uuid": server.id})]
    shown = conn.compute.get_server(server.id)
    assert shown.status == "BUILD"
    assert shown.description == "first server"
    port = shown.metadata["dataplane_port"]
    assert 20000 <= int(port) <= 29999
    assert shown.addresses == {"public": [{"addr": cloud.address, "version": 4,
                                           "OS-EXT-IPS:type": "floating",
                                           "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]}
    # every networks form the sdk can send is accepted
    for networks in ("auto", [{"uuid": "00000000-0000-0000-0000-000000000001"}]):
        assert conn.compute.create_server(name="net", image_id=CIRROS, flavor_id="1", networks=networks).id
    # the conductor's part: the build lands on compute-1
    from minicloud.db import api as db

    engine = db_engine(cloud)
    db.service_create_or_update(engine, "compute-1", "compute-agent", {"version": 11})
    db.service_create_or_update(engine, "compute-2", "compute-agent", {"version": 11})
    db.instance_update(engine, server.id, {"vm_state": "active", "task_state": None, "host": "compute-1",
                                           "power_state": 1})
    shown = conn.compute.get_server(server.id)
    assert (shown.status, shown.compute_host, shown.vm_state) == ("ACTIVE", "compute-1", "active")
    # reboot and every live-migration body variant go to the conductor; the
    # API records the task state before the cast (the fake conductor then
    # plays the conductor's part and clears it)
    def accepted_as(status: str) -> None:
        assert conn.compute.get_server(server.id).status == status
        db.instance_update(engine, server.id, {"task_state": None})

    conn.compute.reboot_server(server, "HARD")
    accepted_as("HARD_REBOOT")
    conn.compute.live_migrate_server(server, host="compute-2", force=True, block_migration="auto")
    accepted_as("MIGRATING")
    conn.compute.live_migrate_server(server)
    accepted_as("MIGRATING")
    compute, token = cloud.url("compute-api"), conn.session.get_token()
    action = f"{compute}/v2.1/servers/{server.id}/action"
    for version, body in (("2.1", {"host": None, "block_migration": False, "disk_over_commit": False}),
                          ("2.25", {"host": "compute-2", "block_migration": "auto"}),
                          ("2.60", {"host": None, "block_migration": True, "force": False})):
        status, _, _ = http("POST", action, token, {"os-migrateLive": body}, compute_headers(version))
        assert status == 202, (version, body)
        accepted_as("MIGRATING")
    for version, body in (("2.29", {"host": "compute-2", "block_migration": "auto", "force": True}),
                          ("2.24", {"host": None, "block_migration": "auto", "disk_over_commit": False}),
                          ("2.25", {"host": None, "block_migration": "auto", "disk_over_commit": False}),
                          ("2.30", {"host": "nowhere", "block_migration": "auto"}),
                          ("2.30", {"host": "compute-1", "block_migration": "auto"})):
        status, _, _ = http("POST", action, token, {"os-migrateLive": body}, compute_headers(version))
        assert status == 400, (version, body)
    migrations = [args for method, args in conductor.methods() if method == "live_migrate_instance"]
    assert [m["host"] for m in migrations] == ["compute-2", None, None, "compute-2", None]
    assert ("reboot_instance", {"instance_uuid": server.id, "reboot_type": "HARD"}) in conductor.methods()
    # a migrating server shows MIGRATING and refuses another migration
    db.instance_update(engine, server.id, {"task_state": "migrating"})
    assert conn.compute.get_server(server.id).status == "MIGRATING"
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.compute.live_migrate_server(server)
    # a failed build shows its fault
    db.instance_update(engine, server.id, {"vm_state": "error", "task_state": None, "fault": "NoValidHost"})
    shown = conn.compute.get_server(server.id)
    assert (shown.status, shown.fault["message"]) == ("ERROR", "NoValidHost")
    conn.compute.delete_server(server)
    assert conductor.methods()[-1] == ("delete_instance", {"instance_uuid": server.id})
    engine.dispose()


def test_server_body_follows_the_microversion(cloud11: tuple[MiniCloud, FakeConductor]) -> None:
    cloud, _ = cloud11
    token = issue_token(cloud, "admin", ADMIN_PASSWORD, "admin")
    compute = cloud.url("compute-api")
    body = {"server": {"name": "v", "imageRef": CIRROS, "flavorRef": "1", "networks": "none"}}
    status, headers, created = http("POST", f"{compute}/v2.1/servers", token, body, compute_headers("2.60"))
    assert status == 202
    assert headers["Location"].endswith(f"/v2.1/servers/{created['server']['id']}")
    url = f"{compute}/v2.1/servers/{created['server']['id']}"
    _, _, old = http("GET", url, token, headers=compute_headers("2.1"))
    _, _, new = http("GET", url, token, headers=compute_headers("2.60"))
    assert "description" not in old["server"]
    assert "locked" not in old["server"]
    assert set(old["server"]["flavor"]) == {"id", "links"}
    assert new["server"]["description"] is None
    assert new["server"]["locked"] is False
    assert new["server"]["flavor"]["original_name"] == "m1.tiny"
    # description is a 2.19 field: an older request carrying it is refused, like Nova
    body["server"]["description"] = "too early"
    status, _, _ = http("POST", f"{compute}/v2.1/servers", token, body, compute_headers("2.18"))
    assert status == 400
    bad_image = {"server": {"name": "x", "imageRef": "00000000-0000-0000-0000-00000000dead",
                            "flavorRef": "1", "networks": "none"}}
    status, _, _ = http("POST", f"{compute}/v2.1/servers", token, bad_image)
    assert status == 400


@pytest.mark.parametrize(("release", "demo_sees_admin_servers"), [("1.1", True), ("1.1.1", False)])
def test_security_defect_only_in_11(tmp_path: Path, release: str, demo_sees_admin_servers: bool) -> None:
    with running_compute_cloud(tmp_path, release) as (cloud, _):
        admin = sdk_connection(cloud)
        demo = sdk_connection(cloud, "demo", "demo-password")
        admin_ids = {_boot(admin, f"admin-{n}").id for n in range(2)}
        demo_id = _boot(demo, "demo-1").id
        listed = {s.id for s in demo.compute.servers()}
        detailed = {s.id for s in demo.compute.servers(details=True)}
        expected = {demo_id} | (admin_ids if demo_sees_admin_servers else set())
        assert listed == expected
        assert detailed == expected
        # what the defect does not touch: show, all_tenants policy, admin's own view
        with pytest.raises(openstack.exceptions.NotFoundException):
            demo.compute.get_server(next(iter(admin_ids)))
        with pytest.raises(openstack.exceptions.ForbiddenException):
            list(demo.compute.servers(all_projects=True))
        assert {s.id for s in admin.compute.servers()} == admin_ids
        assert {s.id for s in admin.compute.servers(all_projects=True)} == admin_ids | {demo_id}


def test_list_filters_and_paging(cloud11: tuple[MiniCloud, FakeConductor]) -> None:
    cloud, _ = cloud11
    conn = sdk_connection(cloud)
    ids = {name: _boot(conn, name).id for name in ("alpha", "beta", "gamma")}
    from minicloud.db import api as db

    engine = db_engine(cloud)
    db.instance_update(engine, ids["beta"], {"vm_state": "active", "task_state": None, "host": "compute-7"})
    engine.dispose()
    assert {s.name for s in conn.compute.servers(name="^(alpha|gamma)$")} == {"alpha", "gamma"}
    assert [s.name for s in conn.compute.servers(status="ACTIVE")] == ["beta"]
    on_host = conn.compute.servers(details=True, compute_host="compute-7", all_projects=True)
    assert [s.name for s in on_host] == ["beta"]
    token = conn.session.get_token()
    _, _, page = http("GET", f"{cloud.url('compute-api')}/v2.1/servers?limit=2", token)
    assert len(page["servers"]) == 2
    assert page["servers_links"][0]["rel"] == "next"
    assert len(list(conn.compute.servers(limit=1))) == 3  # the sdk follows servers_links

"""Expand / online data migrations / contract while real services keep running."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from minicloud import db
from minicloud.db import api
from minicloud.releases import get_release
from minicloud.rpc import ConductorAPI

from tests.minicloud.core_support import CoreCloud, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[CoreCloud]:
    cloud = CoreCloud(tmp_path, release="1.0")
    try:
        yield cloud
    finally:
        cloud.stop_all()


def heartbeat_advances(engine: object, host: str, binary: str) -> bool:
    """True once the service's last_seen_up moves (it heartbeats through the conductor)."""
    first = api.service_get_by_host(engine, host, binary)["last_seen_up"]
    wait_until(lambda: api.service_get_by_host(engine, host, binary)["last_seen_up"] != first,
               10, f"{binary}@{host} heartbeat")
    return True


def test_rolling_schema_upgrade_1_0_to_1_1(cloud: CoreCloud) -> None:
    for command in ("expand", "contract"):
        assert cloud.manage("db", command).returncode == 0
    cloud.start("conductor")
    cloud.start("compute-agent", "compute-1")
    old_code = db.connect(cloud.database, get_release("1.0"))  # this process as 1.0 code
    for n in range(5):
        api.instance_create(old_code, {"name": f"vm{n}", "project_id": "p",
                                       "floating_ip": "127.0.0.9", "floating_port": 20010 + n})
    conductor_1_0 = ConductorAPI(cloud.config(release="1.0"))

    assert cloud.manage("status", "upgrade-check", release="1.1").returncode == 2  # schema behind
    expanded = cloud.manage("db", "expand", release="1.1")
    assert expanded.returncode == 0, expanded.stderr
    assert "e10 -> e11" in expanded.stdout

    # 1.0 code keeps working on the expanded schema: reads, writes, heartbeats.
    uuids = [i["uuid"] for i in api.instance_list(old_code)]
    assert len(uuids) == 5
    updated = conductor_1_0.instance_update(None, uuids[0], {"task_state": "rebooting"})
    assert updated.task_state == "rebooting"
    assert updated.floating_port is not None
    api.instance_create(old_code, {"name": "after-expand", "floating_ip": "127.0.0.9",
                                   "floating_port": 20099})
    assert heartbeat_advances(old_code, "compute-1", "compute-agent")

    check = cloud.manage("status", "upgrade-check", release="1.1")
    assert check.returncode == 1, check.stdout  # online migrations pending
    assert "split_floating_address 6" in check.stdout

    # Batches of 4: 6 rows -> exit 1, 1, then 0 (nova-manage semantics).
    codes = []
    for _ in range(4):
        run = cloud.manage("db", "online-data-migrations", "--max-count", "4", release="1.1")
        codes.append(run.returncode)
        if run.returncode == 0:
            break
    assert codes == [1, 1, 0]
    new_code = db.connect(cloud.database, get_release("1.1"))
    assert {i["floating_port"] for i in api.instance_list(new_code)} == {20010, 20011, 20012, 20013,
                                                                          20014, 20099}

    refused = cloud.manage("db", "contract", release="1.1")
    assert refused.returncode == 2
    assert ("contract needs every service at >= 1.1; still older: controller/conductor 1.0, "
            "compute-1/compute-agent 1.0") in refused.stderr
    assert db.current_revisions(new_code)[1] == "c10"

    # Roll the services to 1.1: they re-register with version 11, then contract runs.
    cloud.stop_all()
    cloud.start("conductor", release="1.1")
    cloud.start("compute-agent", "compute-1", release="1.1")
    wait_until(lambda: api.service_min_version(new_code, "compute-agent") == 11, 10, "agent at 11")
    assert cloud.manage("status", "upgrade-check", release="1.1").returncode == 0
    contracted = cloud.manage("db", "contract", release="1.1")
    assert contracted.returncode == 0, contracted.stderr
    db.invalidate_columns(new_code)  # the contract ran in another process
    assert "floating_address" not in db.present_columns(new_code, "instances")

    # 1.1 code keeps working after the contract (its column cache notices the drop).
    conductor_1_1 = ConductorAPI(cloud.config(release="1.1"))
    moved = conductor_1_1.instance_update(None, uuids[1], {"floating_port": 20500})
    assert moved.floating_port == 20500
    assert api.instance_get(new_code, uuids[1])["floating_port"] == 20500
    assert heartbeat_advances(new_code, "compute-1", "compute-agent")


def test_contract_refuses_while_rows_remain(cloud: CoreCloud) -> None:
    cloud.prepare_schema(("expand", "1.0"), ("contract", "1.0"))
    api.instance_create(db.connect(cloud.database, get_release("1.0")),
                        {"name": "old", "floating_ip": "127.0.0.9", "floating_port": 20001})
    cloud.prepare_schema(("expand", "1.1"))
    refused = cloud.manage("db", "contract", release="1.1")
    assert refused.returncode == 2
    assert "split_floating_address 1" in refused.stderr
    assert cloud.manage("db", "migrate", release="1.1").returncode == 0
    assert cloud.manage("db", "contract", release="1.1").returncode == 0
    version = cloud.manage("db", "version", release="1.1")
    assert "expand: e11" in version.stdout
    assert "contract: c11" in version.stdout


def test_services_topic_to_binary_in_2_0(cloud: CoreCloud) -> None:
    cloud.release = "1.1"
    cloud.prepare_schema(("expand", "1.1"), ("contract", "1.1"))
    old_code = db.connect(cloud.database, get_release("1.1"))
    api.service_create_or_update(old_code, "compute-1", "compute-agent", {"version": 11})
    cloud.prepare_schema(("expand", "2.0"))
    # 1.1 code does not know services.binary: it still writes topic only.
    api.service_create_or_update(old_code, "compute-2", "compute-agent", {"version": 11})
    assert cloud.manage("db", "online-data-migrations", release="2.0").returncode == 0
    new_code = db.connect(cloud.database, get_release("2.0"))
    for host in ("compute-1", "compute-2"):
        api.service_update(new_code, api.service_get_by_host(new_code, host, "compute-agent")["id"],
                           {"version": 20})
    assert cloud.manage("db", "contract", release="2.0").returncode == 0
    db.invalidate_columns(new_code)  # the contract ran in another process
    assert "topic" not in db.present_columns(new_code, "services")
    assert [s["binary"] for s in api.service_list(new_code)] == ["compute-agent", "compute-agent"]
    listing = cloud.manage("service", "list", "--json", release="2.0")
    assert listing.returncode == 0
    assert '"binary": "compute-agent"' in listing.stdout

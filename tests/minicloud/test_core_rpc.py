"""RPC on the wire between real processes: version refusal, capped sends, peer versions."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from minicloud import db, objects
from minicloud.db import api
from minicloud.releases import get_release
from minicloud.rpc import ComputeAPI, RemoteIncompatibleObjectVersion, RPCClient, UnsupportedVersion

from tests.minicloud.core_support import CoreCloud, http_json, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def cloud_1_0(tmp_path: Path) -> Iterator[CoreCloud]:
    """A 1.0 database, conductor and compute agent on compute-1 (no hypervisor)."""
    cloud = CoreCloud(tmp_path, release="1.0")
    try:
        cloud.prepare_schema(("expand", "1.0"), ("contract", "1.0"))
        cloud.start("conductor")
        cloud.start("compute-agent", "compute-1")
        yield cloud
    finally:
        cloud.stop_all()


def agent_url(cloud: CoreCloud) -> str:
    return cloud.url("compute-agent", "compute-1")


def new_instance(cloud: CoreCloud) -> dict[str, object]:
    engine = db.connect(cloud.database)
    return api.instance_create(engine, {"name": "vm", "project_id": "p", "flavor_id": "1",
                                        "host": "compute-1", "floating_ip": "127.0.0.9",
                                        "floating_port": 20001, "description": "new in 1.1"})


def test_newer_rpc_version_refused_on_the_wire(cloud_1_0: CoreCloud) -> None:
    status, body = http_json("POST", f"{agent_url(cloud_1_0)}/rpc", {
        "method": "build_and_run_instance", "version": "1.1", "args": {}, "context": {}})
    assert status == 409
    assert body["error"]["type"] == "UnsupportedVersion"
    assert "1.1" in body["error"]["message"]
    status, body = http_json("POST", f"{agent_url(cloud_1_0)}/rpc", {
        "method": "build_and_run_instance", "version": "2.0", "args": {}, "context": {}})
    assert (status, body["error"]["type"]) == (409, "UnsupportedVersion")


def test_newer_object_refused_and_client_raises_typed_error(cloud_1_0: CoreCloud) -> None:
    newer = objects.for_release(get_release("1.1"))
    instance = newer.instance_from_dict(new_instance(cloud_1_0))
    client = RPCClient(agent_url(cloud_1_0), newer)
    flavor = newer.Flavor(id="1", name="m1.tiny", vcpus=1, ram=512, disk=1)
    with pytest.raises(RemoteIncompatibleObjectVersion) as refused:
        client.cast(None, "build_and_run_instance", "1.0", instance=instance, flavor=flavor)
    assert refused.value.remote_type == "IncompatibleObjectVersion"
    assert refused.value.status == 409
    assert "Version 1.1 of Instance" in refused.value.message
    with pytest.raises(UnsupportedVersion):
        client.cast(None, "build_and_run_instance", "1.1", instance=instance, flavor=flavor,
                    description="x")


def test_capped_send_reaches_a_1_0_agent_but_unpinned_is_refused(cloud_1_0: CoreCloud) -> None:
    """1.1 with upgrade_levels auto sends RPC 1.0 + Instance 1.0; the +unpinned variant does not."""
    inst = new_instance(cloud_1_0)
    engine = db.connect(cloud_1_0.database)

    def min_version() -> int | None:
        return api.service_min_version(engine, "compute-agent")

    pinned = cloud_1_0.config(release="1.1")
    o11 = objects.for_release(pinned.release)
    flavor = o11.flavor_from_dict(api.flavor_get(engine, "1"))
    compute = ComputeAPI(pinned, "compute-1", agent_url(cloud_1_0), min_version=min_version)
    sent = compute.build_and_run_instance(None, o11.instance_from_dict(inst), flavor,
                                          description="dropped for 1.0")
    assert sent == "1.0"
    # The 1.0 agent decoded and ran the build: with no hypervisor on the host it
    # fails, and reports that through the conductor.
    failed = wait_until(lambda: (i := api.instance_get(engine, str(inst["uuid"])))["vm_state"] == "error"
                        and i, 15, "the agent to report the failed build", evidence=cloud_1_0.logs)
    assert "build failed on compute-1" in failed["fault"]

    unpinned = cloud_1_0.config(release="1.1+unpinned")
    defect = ComputeAPI(unpinned, "compute-1", agent_url(cloud_1_0), min_version=min_version)
    with pytest.raises(UnsupportedVersion):
        defect.build_and_run_instance(None, o11.instance_from_dict(inst), flavor, description="d")


def test_a_stale_cap_is_refreshed_once_when_a_rolled_back_agent_refuses(cloud_1_0: CoreCloud) -> None:
    """Right after an agent is rolled back to 1.0 the cached cap still says 1.1: the
    refusal makes the client ask again and resend at 1.0, once; a cap that stays
    high (nothing older is registered) leaves the refusal standing."""
    inst = new_instance(cloud_1_0)
    engine = db.connect(cloud_1_0.database)
    new_version, old_version = get_release("1.1").service_version, get_release("1.0").service_version
    answers = [new_version, old_version]
    asked: list[int] = []

    def rolled_back() -> int | None:  # the first answer is the one cached before the rollback
        asked.append(answers[min(len(asked), 1)])
        return asked[-1]

    config = cloud_1_0.config(release="1.1")
    o11 = objects.for_release(config.release)
    flavor = o11.flavor_from_dict(api.flavor_get(engine, "1"))
    compute = ComputeAPI(config, "compute-1", agent_url(cloud_1_0), min_version=rolled_back)
    sent = compute.build_and_run_instance(None, o11.instance_from_dict(inst), flavor, description="d")
    assert (sent, asked) == ("1.0", [new_version, old_version])

    def always_new() -> int | None:
        return new_version

    stale = ComputeAPI(config, "compute-1", agent_url(cloud_1_0), min_version=always_new)
    with pytest.raises(UnsupportedVersion):
        stale.build_and_run_instance(None, o11.instance_from_dict(inst), flavor, description="d")


def test_2_0_conductor_refuses_a_1_0_agent(tmp_path: Path) -> None:
    cloud = CoreCloud(tmp_path, release="2.0")
    try:
        cloud.prepare_schema(("expand", "2.0"), ("contract", "2.0"))
        cloud.start("conductor")
        agent = cloud.start("compute-agent", "compute-1", release="1.0", wait=False)
        assert agent.wait_exit(30) == 2
        assert "service version 10 is too old: this cloud needs at least 11" in agent.log()
        ok = cloud.start("compute-agent", "compute-2", release="1.1")
        assert ok.process.poll() is None
        services = api.service_list(db.connect(cloud.database), binary="compute-agent")
        assert [(s["host"], s["version"]) for s in services] == [("compute-2", 11)]
    finally:
        cloud.stop_all()


def test_nostart_variant_stops_only_compute_2(tmp_path: Path) -> None:
    cloud = CoreCloud(tmp_path, release="1.1+nostart")
    try:
        cloud.prepare_schema(("expand", "1.1"), ("contract", "1.1"))
        cloud.start("conductor")
        cloud.start("compute-agent", "compute-1")
        broken = cloud.start("compute-agent", "compute-2", wait=False)
        assert broken.wait_exit(30) == 1
        assert "refuses to start" in broken.log()
    finally:
        cloud.stop_all()


def test_schema_too_new_is_refused(tmp_path: Path) -> None:
    cloud = CoreCloud(tmp_path, release="1.1")
    try:
        cloud.prepare_schema(("expand", "1.1"), ("contract", "1.1"))
        conductor = cloud.start("conductor", release="1.0", wait=False)
        assert conductor.wait_exit(30) == 2
        assert "database schema c11 is newer than this release (1.0) knows" in conductor.log()
        refused = cloud.manage("db", "expand", release="1.0")
        assert refused.returncode == 2
        assert "database schema c11 is newer than this release (1.0) knows" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    finally:
        cloud.stop_all()

"""Grenade's nova resource phases on real OpenStack: servers, flavors and Placement allocations.

One ``rollgate up --cloud openstack`` at 2026.1: create two servers (each
recorded with its host, flavor and allocations), verify them, live-migrate
one (its allocation must move with it, and verify must still pass), verify
with nova-api stopped (Placement only), then break a record on purpose to
see verify fail, and destroy (no allocation left behind).
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends.docker_resources import docker_client, leftovers, reap
from harness.clouds.openstack_resources import OpenStackResourcePhases, allocations
from harness.deploy import connect
from harness.resources import ResourceSpec
from harness.runstate import RunState
from harness.waiting import wait_until
from tests.e2e.test_openstack_cloud import COMPUTES, NOTHING, rollgate

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    root = tmp_path_factory.mktemp("openstack-resources")
    run_id = "os-res-" + secrets.token_hex(3)
    engine = docker_client()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROLLGATE_RESULTS", str(root))
        result = rollgate(root, "up", "--cloud", "openstack", "--run-id", run_id)
        try:
            assert result.returncode == 0, result.stdout + result.stderr
            yield root, run_id
        finally:
            rollgate(root, "down", run_id, timeout=300)
            reap(engine, run_id)
            assert leftovers(engine, run_id) == NOTHING


def test_resource_phases_follow_servers_and_their_allocations(run: tuple[Path, str]) -> None:
    _, run_id = run
    state = RunState.load(run_id)

    def admin() -> Any:
        return connect(state)

    phases = OpenStackResourcePhases(state.directory, admin, ResourceSpec(servers=2, boot_timeout_s=180),
                                     COMPUTES)
    created = phases.create()
    assert created.ok, created.problems
    recorded = json.loads((state.directory / "resources-openstack.json").read_text())
    assert len(recorded) == 2
    assert all(r["host"] in COMPUTES and r["flavor"] == "m1.tiny" for r in recorded)
    assert all(r["resources"].get("VCPU", 0) >= 1 and r["resources"].get("MEMORY_MB", 0) > 0
               for r in recorded)
    before = phases.verify("verify-before")
    assert before.ok, before.problems
    assert before.checked == 2

    # A live migration moves the server and its allocation together: still intact.
    conn = admin()
    moved = recorded[0]["server_id"]
    source = recorded[0]["host"]
    target = next(h for h in COMPUTES if h != source)
    conn.compute.live_migrate_server(moved, host=target, block_migration="auto")
    conn.compute.wait_for_server(conn.compute.get_server(moved), status="ACTIVE", interval=1, wait=120)
    after = phases.verify("verify-after-migration")
    assert conn.compute.get_server(moved).compute_host == target
    assert set(allocations(conn, moved)) == {target}
    assert after.ok, after.problems

    # nova-api stopped: Placement alone proves the allocations are still there.
    nova_api = docker_client().containers.list(filters={"label": [f"rollgate.run={run_id}",
                                                                  "rollgate.service=nova-api"]})
    assert nova_api, "no nova-api container found by its labels"
    api_down = phases.verify_api_down(lambda: [c.stop(timeout=15) for c in nova_api] and ["nova-api"],
                                      lambda: [c.start() for c in nova_api] and None, "")
    assert api_down.ok, api_down.problems
    assert api_down.checked == 2

    def answering() -> bool:
        try:
            return bool(conn.compute.get_server(moved).status == "ACTIVE")
        except Exception:
            return False
    wait_until(answering, timeout=180, interval=1, what="nova-api after the API-down phase")

    # A record that no longer matches the cloud is a problem verify names.
    phases.records[1].flavor = "m1.huge"
    broken = phases.verify("verify-broken")
    assert [p for p in broken.problems if "m1.huge" in p], broken.problems
    phases.records[1].flavor = "m1.tiny"

    destroyed = phases.destroy()
    assert destroyed.ok, destroyed.problems
    assert all(not allocations(conn, r["server_id"]) for r in recorded)

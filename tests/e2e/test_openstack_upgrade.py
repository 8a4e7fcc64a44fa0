"""The openstack profile's rolling upgrade end to end, on one cloud (a deploy costs minutes):

1. ``rollgate up --cloud openstack --release 2026.1``; a server boots (demo user);
2. ``rollgate upgrade --to 2026.2`` killed (the crash hook) right before its point of
   no return, then ``rollgate rollback``: keystone, placement and the stand-ins back at
   2026.1 on the expanded schema, everything at 2026.1 again, the server ACTIVE;
3. ``rollgate upgrade --to 2026.2`` to the end: every service container runs the
   2026.2 image, every nova service reports service version 74, ``nova-status upgrade
   check`` passes, the server is ACTIVE on a compute with its Placement allocation there;
4. ``rollgate rollback`` refused (past the point of no return);
5. ``rollgate down`` leaves nothing.

The tests run in file order and share the cloud. ``ROLLGATE_E2E_RUN_PREFIX`` changes
the run id's prefix (engineers sharing a Docker engine keep theirs apart).
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends.docker_resources import LABEL_RUN, docker_client, leftovers, reap
from harness.clouds import openstack as profile
from harness.clouds.openstack_ops import OpenStackOps, check_report
from harness.clouds.openstack_plan import plan_for_run
from harness.deploy import connect
from harness.runstate import RunState

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NOTHING = {"containers": [], "volumes": [], "networks": []}
SEED = "1"


def rollgate(root: Path, *args: str, timeout: float = 1500,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "ROLLGATE_RESULTS": str(root), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=full, capture_output=True,
                          text=True, timeout=timeout, check=False)


class Cloud:
    def __init__(self, root: Path, run_id: str) -> None:
        self.root = root
        self.run_id = run_id
        self.server_id = ""
        self.times: dict[str, float] = {}

    def state(self) -> RunState:
        return RunState.load(self.run_id)

    def ops(self) -> OpenStackOps:
        return OpenStackOps(self.state(), target_release="2026.2")

    def run(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return rollgate(self.root, *args, **kwargs)


@pytest.fixture(scope="module")
def engine() -> Any:
    return docker_client()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, engine: Any) -> Iterator[Cloud]:
    root = tmp_path_factory.mktemp("openstack-upgrade")
    run_id = os.environ.get("ROLLGATE_E2E_RUN_PREFIX", "os-upg-") + secrets.token_hex(3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROLLGATE_RESULTS", str(root))
        result = rollgate(root, "up", "--cloud", "openstack", "--release", "2026.1", "--run-id", run_id)
        try:
            assert result.returncode == 0, result.stdout + result.stderr
            yield Cloud(root, run_id)
        finally:
            if leftovers(engine, run_id) != NOTHING:  # a failed test must not leak the cloud
                rollgate(root, "down", run_id, timeout=300)
                reap(engine, run_id)


def service_images(engine: Any, run_id: str) -> dict[str, str]:
    """host/service -> image of every running OpenStack service container of the run."""
    found: dict[str, str] = {}
    for container in engine.containers.list(filters={"label": f"{LABEL_RUN}={run_id}"}):
        labels = container.labels
        if labels.get("rollgate.release") == profile.SYSTEM or "rollgate.oneoff" in labels:
            continue
        key = f"{labels['rollgate.host']}/{labels['rollgate.service']}"
        assert key not in found, f"two containers of {key} still run"
        found[key] = container.attrs["Config"]["Image"]
    return found


def seconds(output: str) -> float:
    match = re.search(r"step\(s\) run\) in ([0-9.]+)s", output)
    assert match, output[-2000:]
    return float(match.group(1))


def server_where(cloud: Cloud) -> str:
    admin = connect(cloud.state())
    server = admin.compute.get_server(cloud.server_id)
    assert (server.status, server.task_state) == ("ACTIVE", None)
    assert server.compute_host in profile.compute_names(3)
    assert cloud.ops().allocation_hosts(cloud.server_id) == [server.compute_host]
    return str(server.compute_host)


def test_a_server_boots_at_2026_1(cloud: Cloud, engine: Any) -> None:
    images = service_images(engine, cloud.run_id)
    assert len(images) == 7 + 3
    assert set(images.values()) == {"rollgate/openstack:2026.1"}
    demo = connect(cloud.state(), "rollgate-demo")
    flavor = demo.compute.find_flavor("m1.tiny", ignore_missing=False)
    server = demo.compute.create_server(name="os-upgrade-vm", image_id=profile.STANDIN_IMAGE_ID,
                                        flavor_id=flavor.id, networks="none")
    server = demo.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=1, wait=180)
    cloud.server_id = server.id
    server_where(cloud)


def test_rollback_before_the_point_of_no_return_brings_every_service_back(cloud: Cloud,
                                                                          engine: Any) -> None:
    plan = plan_for_run(cloud.state(), "2026.2", {}, int(SEED), "e2e")
    assert plan.finalize_index is not None
    last_reversible = plan.steps[plan.finalize_index - 1].step_id
    crashed = cloud.run("upgrade", cloud.run_id, "--to", "2026.2", "--seed", SEED,
                        env={"ROLLGATE_CRASH_AFTER_STEP": last_reversible})
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout[-3000:] + crashed.stderr[-3000:]
    images = service_images(engine, cloud.run_id)
    assert images["controller/keystone"] == images["controller/placement"] == "rollgate/openstack:2026.2"
    assert images["controller/nova-api"] == "rollgate/openstack:2026.1"

    back = cloud.run("rollback", cloud.run_id)
    assert back.returncode == 0, back.stdout[-3000:] + back.stderr[-3000:]
    assert ": rolled_back (" in back.stdout
    cloud.times["rollback"] = seconds(back.stdout)
    assert set(service_images(engine, cloud.run_id).values()) == {"rollgate/openstack:2026.1"}
    assert {s.release for h in cloud.state().hosts.values() for s in h.services.values()} == {
        "2026.1", profile.SYSTEM}
    assert connect(cloud.state()).authorize()  # a fresh token from keystone 2026.1, keys kept
    assert connect(cloud.state()).compute.get_server(cloud.server_id).status == "ACTIVE"


def test_rolling_upgrade_to_2026_2(cloud: Cloud, engine: Any) -> None:
    done = cloud.run("upgrade", cloud.run_id, "--to", "2026.2", "--seed", SEED)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert f"upgrade 2026.1 -> 2026.2 of run {cloud.run_id}: completed (" in done.stdout
    cloud.times["upgrade"] = seconds(done.stdout)
    print(f"upgrade {cloud.times['upgrade']}s, rollback {cloud.times.get('rollback')}s")

    images = service_images(engine, cloud.run_id)
    assert len(images) == 7 + 3
    assert set(images.values()) == {"rollgate/openstack:2026.2"}, images
    ops = cloud.ops()
    versions = ops.service_versions()  # nova's services table; nova-api's row is nova-osapi_compute
    rows = {("controller", "nova-conductor"), ("controller", "nova-scheduler"),
            *((host, "nova-compute") for host in profile.compute_names(3))}
    assert rows <= set(versions), versions
    assert set(versions.values()) == {profile.NOVA_SERVICE_VERSION["2026.2"]} == {74}, versions
    code, output = ops.cloud.exec_result("controller", "nova-conductor", ["nova-status", "upgrade", "check"],
                                         300)
    report = check_report(code, output)
    assert report.ok, report.detail
    assert report.level == "ok", report.detail
    assert ops.health_gate(profile_releases(cloud, "2026.2"), 60).ok
    server_where(cloud)


def profile_releases(cloud: Cloud, release: str) -> dict[str, dict[str, str]]:
    return {h: dict.fromkeys(services, release)
            for h, services in cloud.ops().releases().items()}


def test_rollback_past_the_point_of_no_return_is_refused(cloud: Cloud, engine: Any) -> None:
    before = service_images(engine, cloud.run_id)
    refused = cloud.run("rollback", cloud.run_id)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "cannot roll back: the upgrade passed its point of no return" in refused.stderr
    assert "ServiceTooOld" in refused.stderr
    assert service_images(engine, cloud.run_id) == before


def test_down_leaves_nothing(cloud: Cloud, engine: Any) -> None:
    result = cloud.run("down", cloud.run_id, timeout=300)
    assert result.returncode == 0, result.stderr
    assert leftovers(engine, cloud.run_id) == NOTHING
    logs = cloud.state().directory / "logs"
    assert (logs / "controller" / "nova-api.log").exists()  # the 2026.2 container's
    assert (logs / "controller" / "nova-api-2026.1.log").exists()  # the one the upgrade retired
    assert (logs / "upgrade" / "keystone-expand.log").exists()

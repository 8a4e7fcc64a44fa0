"""The openstack profile end to end: ``rollgate up --cloud openstack`` at 2026.1 on Docker,
used through the load balancer with openstacksdk (a server ACTIVE on the fake driver,
three resource providers in Placement), ``rollgate status``, then ``rollgate down``
leaving no container, network or volume of the run.

One deploy for the module (it costs 2-4 minutes on two cores); the tests run in
file order and the last one takes the cloud down.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends.docker_resources import LABEL_RUN, docker_client, leftovers, reap
from harness.clouds.openstack import STANDIN_IMAGE_ID
from harness.deploy import connect
from harness.runstate import RunState

pytestmark = [pytest.mark.docker, pytest.mark.slow]

COMPUTES = ["compute-1", "compute-2", "compute-3"]
NOTHING = {"containers": [], "volumes": [], "networks": []}


def rollgate(root: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ROLLGATE_RESULTS": str(root)}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


class OpenStackRun:
    def __init__(self, root: Path, run_id: str, output: str) -> None:
        self.root = root
        self.run_id = run_id
        self.output = output
        self.down = False

    def state(self) -> RunState:
        return RunState.load(self.run_id)

    def connect(self, cloud: str = "rollgate") -> Any:
        return connect(self.state(), cloud)


@pytest.fixture(scope="module")
def engine() -> Any:
    return docker_client()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, engine: Any) -> Iterator[OpenStackRun]:
    root = tmp_path_factory.mktemp("openstack-results")
    run_id = "os-e2e-" + secrets.token_hex(3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROLLGATE_RESULTS", str(root))
        result = rollgate(root, "up", "--cloud", "openstack", "--release", "2026.1", "--backend", "docker",
                          "--run-id", run_id)
        try:
            assert result.returncode == 0, result.stdout + result.stderr
            yield OpenStackRun(root, run_id, result.stdout)
        finally:
            if leftovers(engine, run_id) != NOTHING:  # a failed test must not leak the cloud
                rollgate(root, "down", run_id, timeout=300)
                reap(engine, run_id, root=None)


def test_up_reports_its_deploy_time_and_memory(cloud: OpenStackRun) -> None:
    first = cloud.output.splitlines()[0]
    assert first.startswith(f"run {cloud.run_id}: openstack 2026.1 up on docker in "), cloud.output
    assert "peak RSS of the cloud while deploying" in first
    state = cloud.state()
    assert (state.cloud, state.backend, state.status) == ("openstack", "docker", "up")
    assert state.extra["openstack"]["peak_rss_bytes"] > 0
    assert (state.directory / "clouds.yaml").exists()


def test_every_resource_is_labelled_and_only_the_lb_publishes_on_loopback(cloud: OpenStackRun,
                                                                           engine: Any) -> None:
    containers = engine.containers.list(all=True, filters={"label": f"{LABEL_RUN}={cloud.run_id}"})
    # mariadb, rabbitmq, haproxy, 7 controller services, 3 computes
    assert len(containers) == 3 + 7 + 3
    published = {}
    for container in containers:
        assert container.status == "running", container.name
        for bindings in (container.attrs["HostConfig"]["PortBindings"] or {}).values():
            for binding in bindings:
                assert binding["HostIp"] == "127.0.0.1", container.name
                published[container.labels["rollgate.service"]] = True
    assert list(published) == ["haproxy"]
    volumes = {v.name for v in engine.volumes.list(filters={"label": f"{LABEL_RUN}={cloud.run_id}"})}
    assert volumes == {f"rg-{cloud.run_id}-{name}" for name in
                       ("db-data", "controller-keys", *(f"{c}-state" for c in COMPUTES))}


def test_catalog_public_endpoints_are_the_load_balancer(cloud: OpenStackRun) -> None:
    conn = cloud.connect()
    lb_ports = cloud.state().extra["openstack"]["lb_ports"]
    public = {e.url for e in conn.identity.endpoints() if e.interface == "public"}
    for kind in ("identity", "placement", "compute", "image"):
        assert any(url.startswith(f"http://127.0.0.1:{lb_ports[kind]}") for url in public), (kind, public)


def test_placement_lists_a_resource_provider_per_compute(cloud: OpenStackRun) -> None:
    providers = sorted(p.name for p in cloud.connect().placement.resource_providers())
    assert providers == COMPUTES


def test_a_server_boots_active_on_the_fake_driver_and_is_deleted(cloud: OpenStackRun) -> None:
    admin = cloud.connect()
    demo = cloud.connect("rollgate-demo")
    flavor = admin.compute.find_flavor("m1.tiny", ignore_missing=False)
    server = demo.compute.create_server(name="os-e2e-vm", image_id=STANDIN_IMAGE_ID, flavor_id=flavor.id,
                                        networks="none")
    server = demo.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=1, wait=180)
    assert admin.compute.get_server(server.id).compute_host in COMPUTES
    demo.compute.delete_server(server)
    demo.compute.wait_for_delete(server, interval=1, wait=120)


def test_status_shows_every_service_healthy(cloud: OpenStackRun) -> None:
    result = rollgate(cloud.root, "status", cloud.run_id, "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    [run] = json.loads(result.stdout)
    assert (run["cloud"], run["status"]) == ("openstack", "up")
    health = {f"{h}/{s}": info["health"] for h, host in run["hosts"].items()
              for s, info in host["services"].items()}
    assert health["controller/keystone"] == health["controller/nova-api"] == "ok"
    assert health["db/mariadb"] == "healthy"
    assert all(value in ("ok", "running", "healthy") for value in health.values()), health


def test_down_removes_every_container_network_and_volume(cloud: OpenStackRun, engine: Any) -> None:
    result = rollgate(cloud.root, "down", cloud.run_id, timeout=300)
    assert result.returncode == 0, result.stderr
    assert leftovers(engine, cloud.run_id) == NOTHING
    assert cloud.state().status == "down"
    assert (cloud.state().directory / "logs" / "controller" / "nova-api.log").exists()

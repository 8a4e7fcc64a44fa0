"""The docker backend end to end: the default topology at 1.0 in containers, used
through published ports only; a compute's agent replaced by 1.1; HAProxy drain
under load; testinfra on every host; a killed ``rollgate up`` reaped by
``rollgate down``; bad topologies deploying nothing.

One module-scoped cloud serves the tests that need a cloud (a deploy costs ~25 s),
and the tests run in file order: the mixed-cloud test changes compute-1's release.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends import procutil
from harness.backends.docker import DockerBackend
from harness.backends.docker_resources import LABEL_MANAGED, LABEL_RUN, docker_client, leftovers
from harness.deploy import connect, deploy
from harness.runstate import RunState
from harness.scenario.load import load_scenario
from harness.smoke import floating_endpoint
from harness.waiting import wait_until
from tests.lb_drain_support import drain_replace_undrain

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "fixtures" / "scenarios"
MINIMAL = SCENARIOS / "valid" / "minimal.yaml"
WAIT = 60


class DockerCloud:
    def __init__(self, state: RunState, backend: DockerBackend) -> None:
        self.state = state
        self.backend = backend
        self.conn = connect(state)


@pytest.fixture(scope="module")
def results_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("docker-results")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROLLGATE_RESULTS", str(root))
        yield root


@pytest.fixture(scope="module")
def engine() -> Any:
    return docker_client()


@pytest.fixture(scope="module")
def cloud(results_root: Path, engine: Any) -> Iterator[DockerCloud]:
    run_id = "e2e-dk-" + secrets.token_hex(3)
    state = RunState(run_id=run_id, backend="docker")
    backend = deploy(state, [h.to_spec() for h in load_scenario(MINIMAL).topology.hosts], timeout=WAIT)
    assert isinstance(backend, DockerBackend)
    try:
        yield DockerCloud(state, backend)
    finally:
        backend.destroy()
        assert leftovers(engine, run_id) == {"containers": [], "volumes": [], "networks": []}


def _boot(conn: Any, name: str) -> Any:
    image = next(iter(conn.image.images()))
    flavor = next(f for f in conn.compute.flavors() if f.name == "m1.tiny")
    server = conn.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id, networks="auto")
    return conn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], wait=WAIT, interval=0.1)


def _boot_on(conn: Any, host: str, name: str) -> Any:
    for attempt in range(8):
        server = _boot(conn, f"{name}-{attempt}")
        if server.compute_host == host:
            return server
    raise AssertionError(f"no server was scheduled to {host}")


def _settle(conn: Any, server: Any) -> Any:
    wait_until(lambda: conn.compute.get_server(server.id).status != "MIGRATING", timeout=WAIT,
               what=f"migration of {server.id}")
    return conn.compute.wait_for_server(conn.compute.get_server(server.id), status="ACTIVE",
                                        failures=["ERROR"], wait=WAIT, interval=0.05)


def _kv(endpoint: str, key: str, value: bytes | None = None) -> bytes:
    request = urllib.request.Request(f"http://{endpoint}/kv/{key}", data=value,
                                     method="PUT" if value is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read()


def _healthz_release(cloud: DockerCloud, host: str, service: str) -> str:
    """The release a service reports, asked from inside its own container via testinfra."""
    port = {"compute-agent": 8782, "hypervisor": 8783, "identity": 5000, "image": 9292,
            "compute-api": 8774, "conductor": 8780, "scheduler": 8781, "network": 9696,
            "datapath": 9697}[service]
    url = f"http://{cloud.backend.cloud_address(host)}:{port}/healthz"
    tinfra = cloud.backend.testinfra_host(host, service)
    probe = f"import json,urllib.request;print(json.load(urllib.request.urlopen('{url}'))['release'])"
    out = tinfra.check_output(f'python -c "{probe}"')
    return str(out.strip())


def test_every_resource_is_labelled_and_published_on_loopback_only(cloud: DockerCloud, engine: Any) -> None:
    run_id = cloud.state.run_id
    containers = engine.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
    # 8 hosts: an anchor each, 5 + 5 controller services, 2 x 3 compute, 2 network, db, lb.
    assert len(containers) == 8 + 10 + 6 + 2 + 1 + 1
    assert all(c.status == "running" for c in containers), [(c.name, c.status) for c in containers]
    assert all(c.labels.get(LABEL_MANAGED) == "true" for c in containers)
    volumes = engine.volumes.list(filters={"label": f"{LABEL_RUN}={run_id}"})
    assert len(volumes) == 7  # every host but the lb keeps state
    (network,) = engine.networks.list(filters={"label": f"{LABEL_RUN}={run_id}"})
    assert network.attrs["Driver"] == "bridge"
    bindings = [b for c in containers for spec in (c.attrs["HostConfig"]["PortBindings"] or {}).values()
                for b in spec]
    assert bindings
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    hyp = engine.containers.get(cloud.backend.container_name("compute-1", "hypervisor"))
    agent = engine.containers.get(cloud.backend.container_name("compute-1", "compute-agent"))
    assert hyp.attrs["HostConfig"]["NetworkMode"] == agent.attrs["HostConfig"]["NetworkMode"]
    assert hyp.attrs["HostConfig"]["NetworkMode"].startswith("container:")
    assert cloud.state.extra["database"].startswith("postgresql")
    assert cloud.backend.service_address("compute-1", "compute-agent") == (
        "127.0.0.1", cloud.backend.published_port("compute-1", 8782))


def test_servers_boot_through_the_lb_and_their_data_plane_answers(cloud: DockerCloud) -> None:
    lb_port = cloud.backend.published_port("lb-1", 8774)
    assert cloud.conn.compute.get_endpoint().startswith(f"http://127.0.0.1:{lb_port}")
    server = _boot(cloud.conn, "dk-boot")
    try:
        endpoint = floating_endpoint(server)
        assert endpoint.startswith("127.0.0.1:")
        _kv(endpoint, "k", b"written-through-the-floating-port")
        assert _kv(endpoint, "k") == b"written-through-the-floating-port"
    finally:
        cloud.conn.compute.delete_server(server)
        cloud.conn.compute.wait_for_delete(server, wait=WAIT, interval=0.1)


def test_testinfra_reaches_every_host_and_reads_its_release(cloud: DockerCloud) -> None:
    checked = 0
    for host in cloud.state.hosts.values():
        for service, info in host.services.items():
            if service == "postgres":
                tinfra = cloud.backend.testinfra_host(host.name, service)
                assert tinfra.backend.get_connection_type() == "docker"
                assert "15." in tinfra.check_output("postgres --version")
            elif service == "haproxy":
                assert "version 2.6" in cloud.backend.testinfra_host(host.name, service).check_output(
                    "haproxy -v")
            else:
                assert _healthz_release(cloud, host.name, service) == info.release == "1.0"
            checked += 1
    assert checked == 20


def test_a_compute_agent_replaced_by_1_1_gives_a_working_mixed_cloud(cloud: DockerCloud, engine: Any) -> None:
    conn = cloud.conn
    resident = _boot_on(conn, "compute-1", "dk-resident")
    endpoint = floating_endpoint(resident)
    _kv(endpoint, "before", b"1")
    hypervisor = engine.containers.get(cloud.backend.container_name("compute-1", "hypervisor"))

    cloud.backend.replace_service("compute-1", "compute-agent", "1.1", timeout=10)

    agent = engine.containers.get(cloud.backend.container_name("compute-1", "compute-agent"))
    assert agent.image.tags == ["rollgate/minicloud:1.1"]
    assert _healthz_release(cloud, "compute-1", "compute-agent") == "1.1"
    assert _healthz_release(cloud, "compute-2", "compute-agent") == "1.0"
    # The hypervisor container (and so the instance) was not touched by the agent's upgrade.
    assert engine.containers.get(hypervisor.id).attrs["State"]["StartedAt"] == \
        hypervisor.attrs["State"]["StartedAt"]
    assert _kv(endpoint, "before") == b"1"
    wait_until(lambda: {s.host for s in conn.compute.services()
                        if s.binary == "nova-compute" and s.state == "up"} >=
               {"compute-1", "compute-2", "compute-3"}, timeout=WAIT, what="every compute up")
    fresh = _boot_on(conn, "compute-1", "dk-mixed")
    conn.compute.live_migrate_server(fresh, host="compute-2", block_migration="auto")
    assert _settle(conn, fresh).compute_host == "compute-2"
    conn.compute.live_migrate_server(resident, host="compute-3", block_migration="auto")
    moved = _settle(conn, resident)
    assert moved.compute_host == "compute-3"
    assert _kv(floating_endpoint(moved), "before") == b"1"
    for server in conn.compute.servers():
        conn.compute.delete_server(server)
    for server in list(conn.compute.servers()):
        conn.compute.wait_for_delete(server, wait=WAIT, interval=0.1)


def test_reboot_restarts_both_containers_and_the_instance_from_its_volume(cloud: DockerCloud,
                                                                         engine: Any) -> None:
    conn = cloud.conn
    server = _boot_on(conn, "compute-3", "dk-reboot")
    endpoint = floating_endpoint(server)
    _kv(endpoint, "kept", b"across-the-reboot")
    names = {s: cloud.backend.container_name("compute-3", s) for s in ("hypervisor", "compute-agent")}
    started = {s: engine.containers.get(name).attrs["State"]["StartedAt"] for s, name in names.items()}

    cloud.backend.reboot_host("compute-3")

    for service, before in started.items():
        after = engine.containers.get(names[service])
        assert after.status == "running"
        assert after.attrs["State"]["StartedAt"] != before, f"{service} was not restarted"
    wait_until(lambda: _kv(endpoint, "kept") == b"across-the-reboot", timeout=WAIT,
               what="the instance restarted from its saved state")
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=WAIT, interval=0.1)


def test_haproxy_drain_of_an_api_node_fails_no_request(cloud: DockerCloud) -> None:
    result = drain_replace_undrain(cloud.backend, cloud.conn, "lb-1", "controller-1", "1.0")
    assert result.failures == [], result.failures[:5]
    assert result.ok >= 60


def _rollgate(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy(), cwd=ROOT, check=False)


def test_killed_up_leaves_nothing_after_down(results_root: Path, engine: Any) -> None:
    run_id = "e2e-dk-killed-" + secrets.token_hex(2)
    up = subprocess.Popen([sys.executable, "-m", "harness.cli", "up", str(MINIMAL), "--backend", "docker",
                           "--run-id", run_id], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env=os.environ.copy(), cwd=ROOT)
    try:
        wait_until(lambda: len(leftovers(engine, run_id)["containers"]) >= 4, timeout=60,
                   what="a few containers of the run created")
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait(10)
    assert leftovers(engine, run_id)["networks"], "the run had a network before the kill"
    down = _rollgate("down", run_id)
    assert down.returncode == 0, down.stderr
    assert leftovers(engine, run_id) == {"containers": [], "volumes": [], "networks": []}
    assert procutil.tagged_pids(run_id) == []


@pytest.mark.parametrize("name", ["unknown-role", "duplicate-host", "n-and-n-plus-two", "same-address"])
def test_bad_topology_is_refused_before_anything_is_deployed(name: str, results_root: Path,
                                                              engine: Any) -> None:
    path = SCENARIOS / "invalid" / f"{name}.yaml"
    field = path.read_text().splitlines()[0].removeprefix("# expect: ").split(" | ")[0]
    run_id = f"e2e-dk-bad-{name}"
    done = _rollgate("up", str(path), "--backend", "docker", "--run-id", run_id)
    assert done.returncode == 2, done.stderr
    assert str(path) in done.stderr, done.stderr
    assert field in done.stderr, done.stderr
    assert leftovers(engine, run_id) == {"containers": [], "volumes": [], "networks": []}
    assert not (results_root / run_id).exists()


def test_status_reports_the_docker_run(cloud: DockerCloud) -> None:
    done = _rollgate("status", cloud.state.run_id, "--json")
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)
    assert run["backend"] == "docker"
    health = {s: i["health"] for h in run["hosts"].values() for s, i in h["services"].items()
              if i["release"] != "system"}
    assert set(health.values()) == {"ok"}, health

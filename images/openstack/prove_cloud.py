"""The containers, network and volumes of prove.py, and the waits it needs.

Split from prove.py so that the proof's story (deploy, smoke) reads in one
page; what is here is what the openstack cloud profile will need too: which
container runs what with which environment, labelled for reaping.
"""
from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker

ADMIN_PASSWORD = "rollgate-admin"
SERVICE_PASSWORD = "rollgate-service"
DB_PASSWORD = "rollgate-db"
RABBIT_PASSWORD = "rollgate-rabbit"
MARIADB_TAG = "rollgate/mariadb:10.11"
RABBITMQ_TAG = "rollgate/rabbitmq:3.10"
API_PORTS = {"keystone": 5000, "placement": 8778, "nova-api": 8774}
ONEOFF_TIMEOUT = 300.0
CGROUP_MEMORY = Path("/sys/fs/cgroup/memory/docker")  # cgroup v1, as on this Docker 20.10


def free_port() -> int:
    """A port free on 127.0.0.1 now; known before start so that the catalog can name it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def poll(what: str, ready: Callable[[], bool], *, timeout: float, cloud: ProofCloud | None = None,
         interval: float = 1.0) -> None:
    """Wait until ``ready()`` is true; on timeout, fail with the last error seen."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Exception as exc:  # the service is still starting; keep the error as evidence
            last = f"{type(exc).__name__}: {exc}"
        if cloud is not None:
            cloud.fail_if_exited()
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s (last error: {last or 'none'})")


def wait_http(url: str, cloud: ProofCloud, what: str, timeout: float = 120.0) -> None:
    """Wait until an API answers at all (any HTTP status below 500)."""
    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return True
        except urllib.error.HTTPError as exc:
            return exc.code < 500
    poll(f"{what} at {url}", answers, timeout=timeout, cloud=cloud)


class MemorySampler:
    """The sum of the run's containers' RSS, every second; its maximum is the cloud's peak."""

    def __init__(self, cloud: ProofCloud) -> None:
        self.cloud = cloud
        self.peak_rss = 0
        self.containers_at_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            total, count = 0, 0
            for container_id in list(self.cloud.container_ids):
                stat = CGROUP_MEMORY / container_id / "memory.stat"
                try:
                    fields = dict(line.split() for line in stat.read_text().splitlines())
                except OSError:
                    continue
                total += int(fields.get("total_rss", 0))
                count += 1
            if total > self.peak_rss:
                self.peak_rss, self.containers_at_peak = total, count


class ProofCloud:
    """Every Docker object of one proof run, created labelled and removed by label."""

    def __init__(self, run_id: str, release: str) -> None:
        self.run_id = run_id
        self.release = release
        self.image = f"rollgate/openstack:{release}"
        self.client = docker.from_env(timeout=120)
        self.labels = {"rollgate.managed": "true", "rollgate.run": run_id}
        self.network = f"rg-{run_id}"
        self.ports = {name: free_port() for name in API_PORTS}
        self.container_ids: list[str] = []
        self.services: dict[str, Any] = {}
        self.sampler = MemorySampler(self)
        self.conn: Any = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="oneoff")

    def check_images(self) -> None:
        missing = []
        for tag in (MARIADB_TAG, RABBITMQ_TAG, self.image):
            try:
                self.client.images.get(tag)
            except docker.errors.ImageNotFound:
                missing.append(tag)
        if missing:
            raise RuntimeError(f"missing images {', '.join(missing)}: "
                               "run .venv/bin/python benchmarks/openstack_images_bench.py")

    def create_network_and_volumes(self) -> None:
        self.client.networks.create(self.network, driver="bridge", labels=self.labels)
        for volume in ("mariadb", "keystone"):
            self.client.volumes.create(f"rg-{self.run_id}-{volume}", labels=self.labels)

    def environment(self, **extra: str) -> dict[str, str]:
        return {"DB_HOST": "mariadb", "DB_PASSWORD": DB_PASSWORD, "RABBIT_HOST": "rabbitmq",
                "RABBIT_PASSWORD": RABBIT_PASSWORD, "KEYSTONE_URL": "http://keystone:5000/v3",
                "SERVICE_PASSWORD": SERVICE_PASSWORD, "REGION": "RegionOne", **extra}

    def run(self, name: str, image: str, command: list[str] | str | None = None, *,
            environment: dict[str, str] | None = None, ports: dict[str, tuple[str, int]] | None = None,
            volumes: dict[str, dict[str, str]] | None = None, oneoff: bool = False) -> Any:
        """Start one labelled container on the run's network, reachable by ``name``."""
        endpoint = self.client.api.create_endpoint_config(aliases=[name])
        container = self.client.containers.create(
            image, command, name=f"rg-{self.run_id}-{name}", hostname=name, labels=self.labels,
            environment=environment or {}, ports=ports or {}, volumes=volumes or {}, detach=True,
            network=self.network, networking_config={self.network: endpoint})
        self.container_ids.append(container.id)
        container.start()
        if not oneoff:  # a one-off's exit is its success: not watched by fail_if_exited
            self.services[name] = container
        return container

    def start_infrastructure(self) -> None:
        self.run("mariadb", MARIADB_TAG, environment={"MARIADB_PASSWORD": DB_PASSWORD},
                 volumes={f"rg-{self.run_id}-mariadb": {"bind": "/var/lib/mysql", "mode": "rw"}})
        self.run("rabbitmq", RABBITMQ_TAG, environment={"RABBITMQ_PASSWORD": RABBIT_PASSWORD})
        for name in ("mariadb", "rabbitmq"):
            poll(f"{name} healthy", lambda name=name: self._health(name) == "healthy",
                 timeout=120, cloud=self)

    def _health(self, name: str) -> str:
        container = self.services[name]
        container.reload()
        return str(container.attrs["State"].get("Health", {}).get("Status", "none"))

    def _keystone_volume(self) -> dict[str, dict[str, str]]:
        return {f"rg-{self.run_id}-keystone": {"bind": "/var/lib/keystone", "mode": "rw"}}

    def start_oneoffs(self, commands: dict[str, str]) -> dict[str, Future[None]]:
        """Start setup commands, each in its own container, in parallel; a future per command.

        Futures rather than one blocking call, so that each service starts as
        soon as its own schema is there (Keystone does not wait for Nova's).
        """
        def one(name: str, command: str) -> None:
            container = self.run(name, self.image, ["sh", "-ec", command], environment=self.environment(),
                                 volumes=self._keystone_volume() if name.startswith("keystone") else None,
                                 oneoff=True)
            code = container.wait(timeout=ONEOFF_TIMEOUT)["StatusCode"]
            if code != 0:
                log = container.logs(tail=30).decode(errors="replace")
                raise RuntimeError(f"{name} exited {code}:\n{log}")
            container.remove()
            self.container_ids.remove(container.id)

        return {name: self._pool.submit(one, name, command) for name, command in commands.items()}

    def start_keystone(self) -> None:
        self.run("keystone", self.image, ["rollgate-wsgi", "keystone.wsgi.api", "5000", "2"],
                 environment=self.environment(), ports={"5000/tcp": ("127.0.0.1", self.ports["keystone"])},
                 volumes=self._keystone_volume())

    def start_placement_and_standins(self) -> None:
        """Placement and the Glance/Neutron stand-ins: what Nova calls, so up before Nova starts."""
        env = self.environment()
        self.run("placement", self.image, ["rollgate-wsgi", "placement.wsgi.api", "8778", "2"],
                 environment=env, ports={"8778/tcp": ("127.0.0.1", self.ports["placement"])})
        self.run("glance", self.image, ["rollgate-standin", "glance", "9292"], environment=env)
        self.run("neutron", self.image, ["rollgate-standin", "neutron", "9696"], environment=env)

    def start_nova(self, computes: int) -> None:
        """Nova after the catalog: conductor and computes need their service users at start."""
        env = self.environment()
        self.run("nova-api", self.image, ["rollgate-wsgi", "nova.wsgi.osapi_compute", "8774", "2"],
                 environment=env, ports={"8774/tcp": ("127.0.0.1", self.ports["nova-api"])})
        self.run("nova-conductor", self.image, ["nova-conductor"], environment=env)
        self.run("nova-scheduler", self.image, ["nova-scheduler"], environment=env)
        for index in range(1, computes + 1):
            name = f"compute-{index}"
            self.run(name, self.image, ["nova-compute"],
                     environment=self.environment(NOVA_HOST=name, NOVA_ROLE="compute"))

    def exec_in(self, name: str, command: str) -> str:
        result = self.services[name].exec_run(["sh", "-ec", command])
        output = result.output.decode(errors="replace")
        if result.exit_code != 0:
            raise RuntimeError(f"`{command}` in {name} exited {result.exit_code}:\n{output[-3000:]}")
        return output

    def fail_if_exited(self) -> None:
        """A service that died will not become ready: fail now, with its log."""
        for name, container in list(self.services.items()):
            container.reload()
            if container.status == "exited":
                raise RuntimeError(f"{name} exited:\n{container.logs(tail=40).decode(errors='replace')}")

    def dump_logs(self, lines: int = 15) -> None:
        for name, container in list(self.services.items()):
            try:
                log = container.logs(tail=lines).decode(errors="replace")
                print(f"--- {name} (last {lines} lines) ---\n{log}")
            except docker.errors.APIError:
                continue

    def clean_up(self) -> str:
        """Remove every container, network and volume of the run, found by its label; say what stayed."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        selector = {"label": f"rollgate.run={self.run_id}"}
        for container in self.client.containers.list(all=True, filters=selector):
            container.remove(force=True, v=True)
        for network in self.client.networks.list(filters=selector):
            network.remove()
        for volume in self.client.volumes.list(filters=selector):
            volume.remove(force=True)
        left = (len(self.client.containers.list(all=True, filters=selector)),
                len(self.client.networks.list(filters=selector)),
                len(self.client.volumes.list(filters=selector)))
        return "" if left == (0, 0, 0) else f"LEFT containers/networks/volumes = {left}"


def make_catalog(cloud: ProofCloud) -> Any:
    """Service project, users, roles, services and endpoints through openstacksdk; the admin connection."""
    import openstack

    conn = openstack.connect(auth_url=f"http://127.0.0.1:{cloud.ports['keystone']}/v3", username="admin",
                             password=ADMIN_PASSWORD, project_name="admin", user_domain_name="Default",
                             project_domain_name="Default", region_name="RegionOne", interface="public")
    poll("keystone token", lambda: bool(conn.identity.get_token()), timeout=60, cloud=cloud)
    identity = conn.identity
    service_project = identity.create_project(name="service", domain_id="default")
    roles = {role.name: role for role in identity.roles()}
    for role_name in ("admin", "service"):
        if role_name not in roles:
            roles[role_name] = identity.create_role(name=role_name)
    for user_name in ("nova", "placement", "neutron"):
        user = identity.create_user(name=user_name, password=SERVICE_PASSWORD, domain_id="default")
        for role_name in ("admin", "service"):
            identity.assign_project_role_to_user(service_project, user, roles[role_name])
    catalog = {
        ("placement", "placement"): (f"http://127.0.0.1:{cloud.ports['placement']}", "http://placement:8778"),
        ("nova", "compute"): (f"http://127.0.0.1:{cloud.ports['nova-api']}/v2.1", "http://nova-api:8774/v2.1"),
        ("glance", "image"): ("http://glance:9292", "http://glance:9292"),
        ("neutron", "network"): ("http://neutron:9696", "http://neutron:9696"),
    }
    for (name, kind), (public, internal) in catalog.items():
        service = identity.create_service(name=name, type=kind)
        for interface, url in (("public", public), ("internal", internal), ("admin", internal)):
            identity.create_endpoint(service_id=service.id, interface=interface, url=url,
                                     region_id="RegionOne")
    conn.close()
    # A fresh connection: the first one cached the catalog from before the services existed.
    return openstack.connect(auth_url=f"http://127.0.0.1:{cloud.ports['keystone']}/v3", username="admin",
                             password=ADMIN_PASSWORD, project_name="admin", user_domain_name="Default",
                             project_domain_name="Default", region_name="RegionOne", interface="public")

"""The docker backend: every host is a set of containers on the run's network.

Layout of a host (why):
- an *anchor* container (``<host>-netns``, the base image sleeping) owns the
  host's network namespace, its address on the run network and its published
  ports. Every service of the host runs in its own container joined to that
  namespace (``network_mode: container:<anchor>``), so one service can be
  stopped, killed or recreated at another release without touching the
  others' sockets. On a compute host the hypervisor (which owns the instances,
  its child processes) and the agent are two such containers: upgrading the
  agent never touches an instance; a reboot stops both and starts both.
- a named volume per host (``state_dir``, shared by the host's containers)
  keeps its persistent state across a service's recreation.
- the host's config directory (``results/<run>/hosts/<host>/``) is bind-mounted
  read-only at ``/etc/rollgate``: the harness rewrites the config there.

The harness reaches the cloud only through ports published on 127.0.0.1: each
service's port (health, status), the lb's frontends (the catalog's public
endpoints) and a block of FLOATING_BLOCK floating ports on the network host.
minicloud allocates floating ports only from that block (host config
``floating_ports``) and reports 127.0.0.1 as the floating IP
(``public_endpoints.datapath``), so a server's floating ``ip:port`` is
reachable from the harness as it is; inside the cloud the datapath still
forwards on the network host's own address.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.backends import docker_resources as res
from harness.backends import haproxy
from harness.backends.base import BaseBackend, HostSpec
from harness.backends.docker_ops import CONFIG_DIR, SOCKET_DIR, STATE_MOUNT, DockerHostOperations
from harness.clouds import minicloud
from harness.errors import DeployError, UsageError
from harness.images import BASE_TAG
from harness.runstate import HostState, RunState, ServiceState
from harness.waiting import wait_http_ok, wait_until

LOG = logging.getLogger(__name__)

PGDATA = "/var/lib/postgresql/data"
POSTGRES_PORT = 5432
DB_USER = DB_PASSWORD = DB_NAME = "minicloud"
#: every container gets a tiny init (tini): signals reach the service, and the
#: workloads a hypervisor starts are reaped when they exit.
USE_INIT = True


class DockerBackend(DockerHostOperations, BaseBackend):
    """Hosts as containers sharing a per-host network namespace."""

    name = "docker"

    def __init__(self, state: RunState, client: Any | None = None) -> None:
        super().__init__(state.run_id)
        self.state = state
        self.client = client or res.docker_client()
        self.meta: dict[str, Any] = state.extra.setdefault("docker", {"ips": {}, "ports": {}})
        self.database = ""
        self._probe: Any = None

    # -- layout -------------------------------------------------------------------------------
    def host_dir(self, host: str) -> Path:
        return self.state.directory / "hosts" / host

    def config_path(self, host: str) -> Path:
        return self.host_dir(host) / "config.json"

    def runtime_dir(self) -> Path:
        """Short-path directory for the lb's unix socket (108-byte limit), removed on destroy."""
        path = Path(tempfile.gettempdir()) / f"rollgate-{self.run_id}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def container_name(self, host: str, service: str) -> str:
        return res.resource_name(self.run_id, host, service)

    def _host(self, host: str) -> HostState:
        return self.state.host_state(host)

    def _service(self, host: str, service: str) -> ServiceState:
        return self.state.service_state(host, service)

    def address(self, host: str) -> str:
        """Where the harness reaches the host: 127.0.0.1 (with the host's published ports)."""
        return self._host(host).address

    def cloud_address(self, host: str) -> str:
        """The host's address on the run network, as the cloud's own services see it."""
        self._host(host)
        return str(self.meta["ips"][host])

    def service_address(self, host: str, service: str) -> tuple[str, int]:
        port = self._service(host, service).port
        if port is None:
            raise UsageError(f"{service} on {host} has no HTTP port the harness checks")
        return "127.0.0.1", port

    def published_port(self, host: str, port: int) -> int:
        """The 127.0.0.1 port that reaches ``port`` of the host."""
        try:
            return int(self.meta["ports"][host][str(port)])
        except KeyError:
            raise UsageError(f"port {port} of {host} is not published") from None

    # -- registration and configs -------------------------------------------------------------
    def ensure_images(self, specs: list[HostSpec]) -> None:
        """Every image the hosts need is built, or a DeployError naming the missing image and
        the command that builds it (nothing is pulled: no registry is reachable)."""
        needed: dict[str, str] = {BASE_TAG: "every host (its network namespace)"}
        for spec in specs:
            services = dict(spec.services)
            if "db" in spec.roles:
                services.setdefault("postgres", "system")
            if "lb" in spec.roles:
                services.setdefault("haproxy", "system")
            for service, release in services.items():
                needed.setdefault(res.image_for(service, release), f"{spec.name}/{service} {release}")
        missing = res.missing_images(self.client, needed)
        if missing:
            raise DeployError("; ".join(
                f"image {image} is missing (needed by {user}); build it with `{res.build_hint(image)}`"
                for image, user in missing.items()))

    def _ensure_network(self) -> str:
        if "network" not in self.meta:
            name, prefix = res.create_network(self.client, self.run_id)
            self.meta.update(network=name, prefix=prefix)
            self.state.save()
        return str(self.meta["network"])

    def register_host(self, spec: HostSpec) -> HostState:
        """Allocate the host's address and published ports and record them; start nothing."""
        self._ensure_network()
        if "db" in spec.roles:
            spec.services.setdefault("postgres", "system")
        if "lb" in spec.roles:
            spec.services.setdefault("haproxy", "system")
        ip = f"{self.meta['prefix']}.{10 + len(self.state.hosts)}"
        inner = self._inner_ports(spec)
        taken = [p for ports in self.meta["ports"].values() for p in ports.values()]
        outer = res.free_ports(len(inner), taken)
        ports = {str(i): o for i, o in zip(inner, outer, strict=True)}
        if "network" in spec.roles:
            first, last = res.floating_block(self.run_id, res.busy_floating_blocks(self.client))
            self.meta["floating"] = [first, last]
            ports.update({str(p): p for p in range(first, last + 1)})
        self.meta["ips"][spec.name] = ip
        self.meta["ports"][spec.name] = ports
        # ServiceState.port: where the harness checks /healthz (minicloud services only).
        services = {s: ServiceState(release=r, port=None if s in res.SYSTEM_IMAGES
                                    else ports.get(str(self._service_port(s))))
                    for s, r in spec.services.items()}
        state = HostState(name=spec.name, roles=list(spec.roles), address="127.0.0.1", services=services)
        self.state.hosts[spec.name] = state
        self.state.save()
        return state

    @staticmethod
    def _service_port(service: str) -> int:
        return POSTGRES_PORT if service == "postgres" else minicloud.PORTS.get(service, 0)

    def _inner_ports(self, spec: HostSpec) -> list[int]:
        ports = [self._service_port(s) for s in spec.services if s != "haproxy"]
        if "lb" in spec.roles:
            ports += list(haproxy.FRONTENDS.values())
        return sorted({p for p in ports if p})

    def cloud_layout(self, roles: dict[str, list[str]]) -> minicloud.CloudLayout:
        """Endpoints on the run network; public endpoints (catalog, floating IP) on 127.0.0.1."""
        db = next((h for h, r in roles.items() if "db" in r), None)
        if db is None:
            raise DeployError("the docker backend needs a host with the db role (PostgreSQL)")
        self.database = (f"postgresql+psycopg2://{DB_USER}:{DB_PASSWORD}@{self.cloud_address(db)}:"
                         f"{POSTGRES_PORT}/{DB_NAME}")
        self.state.extra["database"] = self.database
        layout = minicloud.layout({h: self.cloud_address(h) for h in roles}, roles, self.database)
        front = next((h for h, r in roles.items() if "lb" in r), None) or next(
            h for h, r in roles.items() if "controller" in r)
        for name, port in (("identity", 5000), ("image", 9292), ("compute", 8774)):
            layout.public_endpoints[name] = f"http://127.0.0.1:{self.published_port(front, port)}"
        layout.public_endpoints["datapath"] = "http://127.0.0.1:9697"
        return layout

    def write_config(self, host: str, layout: minicloud.CloudLayout) -> None:
        state = self._host(host)
        self.host_dir(host).mkdir(parents=True, exist_ok=True)
        if "lb" in state.roles:
            controllers = [haproxy.Backend(h.name, self.cloud_address(h.name))
                           for h in self.state.hosts.values() if "controller" in h.roles]
            text = haproxy.render_config(self.cloud_address(host), controllers, f"{SOCKET_DIR}/admin.sock")
            (self.host_dir(host) / "haproxy.cfg").write_text(text)
        extra: dict[str, object] = {**(self.state.extra.get("config_overrides") or {})}
        if "floating" in self.meta:
            extra["floating_ports"] = list(self.meta["floating"])
        config = minicloud.host_config(
            host, self.cloud_address(host), Path(STATE_MOUNT) / "state",
            {s: v.release for s, v in state.services.items() if s not in res.SYSTEM_IMAGES},
            layout, extra=extra)
        minicloud.write_host_config(self.config_path(host), config)

    # -- containers ---------------------------------------------------------------------------
    def _labels(self, host: str, service: str, release: str) -> dict[str, str]:
        return res.run_labels(self.run_id, **{res.LABEL_HOST: host, res.LABEL_SERVICE: service,
                                               res.LABEL_RELEASE: release})

    def _volume(self, host: str) -> str:
        import docker

        name = res.resource_name(self.run_id, host)
        try:
            self.client.volumes.get(name)
        except docker.errors.NotFound:
            self.client.volumes.create(name, labels=res.run_labels(self.run_id, **{res.LABEL_HOST: host}))
        return name

    def _anchor(self, host: str) -> Any:
        """The host's network-namespace container, created and started if needed."""
        import docker

        name = self.container_name(host, "netns")
        try:
            container = self.client.containers.get(name)
        except docker.errors.NotFound:
            labels = self._labels(host, "netns", "system")
            if "network" in self._host(host).roles and "floating" in self.meta:
                labels["rollgate.floating"] = "{}-{}".format(*self.meta["floating"])
            ports = {f"{inner}/tcp": ("127.0.0.1", int(outer))
                     for inner, outer in self.meta["ports"][host].items()}
            endpoint = self.client.api.create_endpoint_config(ipv4_address=self.cloud_address(host))
            networking = self.client.api.create_networking_config({self.meta["network"]: endpoint})
            host_config = self.client.api.create_host_config(
                port_bindings={k: v for k, v in ports.items()}, init=USE_INIT)
            created = self.client.api.create_container(
                BASE_TAG, ["sleep", "infinity"], name=name, hostname=host, labels=labels,
                ports=[int(k.split("/")[0]) for k in ports], host_config=host_config,
                networking_config=networking)
            container = self.client.containers.get(created["Id"])
        if container.status != "running":
            container.start()
        return container

    def _find(self, host: str, service: str) -> Any | None:
        import docker

        try:
            return self.client.containers.get(self.container_name(host, service))
        except docker.errors.NotFound:
            return None

    def _create(self, host: str, service: str) -> Any:
        anchor = self._anchor(host)
        release = self._service(host, service).release
        mounts = [f"{self.host_dir(host).resolve()}:{CONFIG_DIR}:ro"]
        environment: dict[str, str] = {"MINICLOUD_CONFIG": f"{CONFIG_DIR}/config.json"}
        if service == "postgres":
            mounts.append(f"{self._volume(host)}:{PGDATA}")
            command: list[str] | None = None
        elif service == "haproxy":
            socket_dir = self.runtime_dir() / host
            socket_dir.mkdir(parents=True, exist_ok=True)
            mounts.append(f"{socket_dir}:{SOCKET_DIR}")
            command = ["haproxy", "-W", "-db", "-f", f"{CONFIG_DIR}/haproxy.cfg"]
        else:
            mounts.append(f"{self._volume(host)}:{STATE_MOUNT}")
            command = ["python", "-m", "minicloud", service, "--config", f"{CONFIG_DIR}/config.json"]
        return self.client.containers.create(
            res.image_for(service, release), command, name=self.container_name(host, service),
            labels=self._labels(host, service, release), volumes=mounts, environment=environment,
            network_mode=f"container:{anchor.id}", init=USE_INIT)

    def create_host(self, spec: HostSpec) -> None:
        if spec.name not in self.state.hosts:
            self.register_host(spec)
        for service in self._start_order(spec.name):
            self.start_service(spec.name, service)

    def _start_order(self, host: str) -> list[str]:
        """Data-plane services first (the agent needs its hypervisor/datapath)."""
        services = list(self._host(host).services)
        return sorted(services, key=lambda s: s not in ("hypervisor", "datapath"))

    def start_service(self, host: str, service: str, wait: bool = True) -> None:
        svc = self._service(host, service)
        self._sync_config_release(host)
        container = self._find(host, service)
        if container is not None and container.labels.get(res.LABEL_RELEASE) != svc.release:
            self._remove(host, service, container)
            container = None
        if container is None:
            container = self._create(host, service)
        container.start()
        LOG.info("started %s on %s (%s) at %s", service, host, self.cloud_address(host), svc.release)
        if wait:
            self.wait_ready(host, service)

    def _exited(self, host: str, service: str) -> str | None:
        container = self._find(host, service)
        if container is None:
            return f"{service} on {host} has no container"
        if container.status in ("exited", "dead"):
            code = container.attrs.get("State", {}).get("ExitCode")
            return f"{service} on {host} exited during start (exit {code})"
        return None

    def wait_ready(self, host: str, service: str, timeout: float = 60.0) -> None:
        evidence = lambda: self.logs(host, service, tail=20)  # noqa: E731
        abort = lambda: self._exited(host, service)  # noqa: E731
        if service == "haproxy":
            wait_until(lambda: "Name: HAProxy" in self.lb_api(host).command("show info"),
                       timeout=timeout, what=f"haproxy on {host}", abort=abort, evidence=evidence)
        elif service == "postgres":
            wait_until(lambda: self._postgres_ready(host), timeout=timeout, interval=0.2,
                       what=f"postgres on {host}", abort=abort, evidence=evidence)
        else:
            ip, port = self.service_address(host, service)
            url = f"http://{ip}:{port}/healthz"
            wait_http_ok(url, timeout=timeout, what=f"{service} on {host}", abort=abort, evidence=evidence)

    def _postgres_ready(self, host: str) -> bool:
        import psycopg2

        port = self.published_port(host, POSTGRES_PORT)
        with psycopg2.connect(host="127.0.0.1", port=port, user=DB_USER, password=DB_PASSWORD,
                              dbname=DB_NAME, connect_timeout=2):
            return True

    def _save_logs(self, host: str, service: str, container: Any) -> None:
        """Keep a removed container's log under results/<run>/logs/ (evidence outlives it)."""
        path = self.state.directory / "logs" / host / f"{service}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("ab") as handle:
                handle.write(container.logs())
        except Exception as exc:  # a log lost is no reason to fail the operation
            LOG.debug("logs of %s: %s", container.name, exc)

    def _remove(self, host: str, service: str, container: Any) -> None:
        self._save_logs(host, service, container)
        container.remove(force=True)

    def stop_service(self, host: str, service: str, timeout: float = 15.0) -> None:
        """SIGTERM (docker stop), wait at most ``timeout``, then SIGKILL."""
        self._service(host, service)
        container = self._find(host, service)
        if container is not None:
            container.stop(timeout=max(0, round(timeout)))

    def kill_service(self, host: str, service: str) -> None:
        import docker

        self._service(host, service)
        container = self._find(host, service)
        if container is not None:
            try:
                container.kill()
            except docker.errors.APIError as exc:  # already stopped
                LOG.debug("kill %s: %s", container.name, exc)

    def replace_service(self, host: str, service: str, release: str, timeout: float = 15.0) -> None:
        """Graceful stop, then recreate from ``release``'s image with the same volume and config."""
        self.stop_service(host, service, timeout)
        container = self._find(host, service)
        if container is not None:
            self._remove(host, service, container)
        self._service(host, service).release = release
        self.state.save()
        self.start_service(host, service)

    def reboot_host(self, host: str) -> None:
        """Kill every container of the host (instances die with the hypervisor's), start again."""
        for service in reversed(self._start_order(host)):
            self.kill_service(host, service)
        for service in self._start_order(host):
            self.start_service(host, service)

    def is_running(self, host: str, service: str) -> bool:
        container = self._find(host, service)
        return container is not None and container.status == "running"

    def engine_alive(self) -> bool:
        if self._probe is None:
            self._probe = res.engine_probe(self.client)
        return bool(self._probe())

    def destroy(self) -> None:
        for host in self.state.hosts:
            for service in self.state.hosts[host].services:
                container = self._find(host, service)
                if container is not None:
                    self._save_logs(host, service, container)
        res.reap(self.client, self.run_id, root=str(self.state.directory.parent))
        shutil.rmtree(Path(tempfile.gettempdir()) / f"rollgate-{self.run_id}", ignore_errors=True)
        self.state.status = "down"
        self.state.save()

"""The openstack profile's containers on Docker: one container per service on the run network.

A sibling of ``harness.backends.docker`` rather than a part of it: minicloud's
hosts are an anchor container owning a network namespace, a config file the
harness rewrites and minicloud's own CLI, none of which OpenStack's services
use. What the two share comes from ``docker_resources``: the run network,
labels (``rollgate.run``, ``rollgate.managed``, host, service, release), names
(``rg-<run>-<host>-<service>``), ports published on 127.0.0.1 only, and reaping
by label, so ``rollgate down RUN_ID`` removes an openstack run like any other
(``DockerBackend.destroy`` saves the logs of the containers run.json names,
then reaps by label).
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from harness.backends import docker_resources as res
from harness.clouds.openstack import ContainerSpec
from harness.errors import DeployError
from harness.runstate import RunState

LOG = logging.getLogger(__name__)

CONFIG_DIR = "/etc/rollgate"
SOCKET_DIR = "/run/rollgate"
LOG_TAIL = 30


class OpenStackContainers:
    """Every Docker object of one openstack run: created labelled, found by name, removed by label."""

    def __init__(self, state: RunState, client: Any) -> None:
        self.state = state
        self.run_id = state.run_id
        self.client = client
        self.meta: dict[str, Any] = state.extra.setdefault("docker", {})
        self.closing = threading.Event()  # set by destroy: one-offs not yet created never are

    # -- names and places ---------------------------------------------------------------------
    def container_name(self, host: str, service: str) -> str:
        return res.resource_name(self.run_id, host, service)

    def volume_name(self, host: str, key: str) -> str:
        return res.resource_name(self.run_id, host, key)

    def runtime_dir(self, host: str) -> Path:
        """Short path for the lb's admin socket (108-byte limit), as the docker backend's;
        ``DockerBackend.destroy`` removes /tmp/rollgate-<run>."""
        path = Path(tempfile.gettempdir()) / f"rollgate-{self.run_id}" / host
        path.mkdir(parents=True, exist_ok=True)
        return path

    def config_dir(self, host: str) -> Path:
        return self.state.directory / "hosts" / host

    # -- images, network ----------------------------------------------------------------------
    def ensure_images(self, needed: dict[str, str], build_command: str) -> None:
        """A DeployError naming every missing image and the command that builds it."""
        missing = res.missing_images(self.client, needed)
        if missing:
            raise DeployError("; ".join(
                f"image {image} is missing (needed by {user})" for image, user in missing.items())
                + f"; build it with `{build_command}`")

    def create_network(self) -> str:
        name, prefix = res.create_network(self.client, self.run_id)
        self.meta.update(network=name, prefix=prefix)
        self.state.save()
        return name

    def _volume(self, host: str, key: str) -> str:
        import docker

        name = self.volume_name(host, key)
        try:
            self.client.volumes.get(name)
        except docker.errors.NotFound:
            self.client.volumes.create(name, labels=res.run_labels(self.run_id, **{res.LABEL_HOST: host}))
        return name

    # -- containers ---------------------------------------------------------------------------
    def _create(self, spec: ContainerSpec, name: str, command: list[str] | None,
                ports: dict[int, int]) -> Any:
        if self.closing.is_set():
            raise DeployError(f"run {self.run_id} is being removed; not creating {name}")
        volumes = [f"{self._volume(spec.host, key)}:{path}" for key, path in spec.volumes.items()]
        if spec.config is not None:
            volumes += [f"{self.config_dir(spec.host).resolve()}:{CONFIG_DIR}:ro",
                        f"{self.runtime_dir(spec.host)}:{SOCKET_DIR}"]
        endpoint = self.client.api.create_endpoint_config(aliases=[spec.alias])
        network = self.meta["network"]
        labels = res.run_labels(self.run_id, **{res.LABEL_HOST: spec.host, res.LABEL_SERVICE: spec.service,
                                                res.LABEL_RELEASE: spec.release})
        return self.client.containers.create(
            spec.image, command, name=name, hostname=spec.alias, labels=labels,
            environment=spec.environment, volumes=volumes, init=True, detach=True,
            ports={f"{inner}/tcp": ("127.0.0.1", outer) for inner, outer in ports.items()},
            network=network, networking_config={network: endpoint})

    def start(self, spec: ContainerSpec, ports: dict[int, int] | None = None) -> Any:
        """Create and start the service's container (``ports``: inner -> 127.0.0.1 port)."""
        container = self._create(spec, self.container_name(spec.host, spec.service),
                                 list(spec.command) if spec.command else None, ports or {})
        container.start()
        LOG.info("started %s on %s (%s)", spec.service, spec.host, spec.image)
        return container

    def run_oneoff(self, spec: ContainerSpec, name: str, shell: str, timeout: float) -> None:
        """Run ``shell`` in a one-off container like ``spec``'s (image, environment, volumes)
        and remove it; a DeployError with its last log lines if it fails."""
        container = self._create(spec, self.container_name("setup", name), ["sh", "-ec", shell], {})
        try:
            container.start()
            code = int(container.wait(timeout=timeout).get("StatusCode", 1))
            if code != 0:
                log = container.logs(tail=LOG_TAIL).decode(errors="replace")
                raise DeployError(f"setup {name} exited {code}:\n{log}")
            self._save_log("setup", name, container)
        finally:
            try:
                container.remove(force=True)
            except Exception as exc:  # already reaped by a concurrent cleanup
                LOG.debug("removing one-off %s: %s", name, exc)

    def find(self, host: str, service: str) -> Any | None:
        import docker

        try:
            return self.client.containers.get(self.container_name(host, service))
        except docker.errors.NotFound:
            return None

    def exec(self, host: str, service: str, command: list[str], timeout: float = 120.0) -> str:
        """Run a command in the service's running container; its output, or a DeployError."""
        container = self.find(host, service)
        if container is None:
            raise DeployError(f"{service} on {host} has no container")
        result = container.exec_run(["timeout", "-k", "2", str(int(timeout)), *command])
        output = (result.output or b"").decode(errors="replace")
        if result.exit_code != 0:
            raise DeployError(f"`{' '.join(command)}` in {service} on {host} exited {result.exit_code}:\n"
                              f"{output[-3000:]}")
        return output

    def health(self, host: str, service: str) -> str:
        """The container's Docker health (healthy, starting, unhealthy, none) or its state."""
        container = self.find(host, service)
        if container is None:
            return "missing"
        state = container.attrs.get("State", {})
        if state.get("Status") != "running":
            return str(state.get("Status", "?"))
        return str(state.get("Health", {}).get("Status", "running"))

    def logs(self, host: str, service: str, tail: int = LOG_TAIL) -> str:
        container = self.find(host, service)
        return "" if container is None else str(container.logs(tail=tail).decode(errors="replace"))

    def first_exited(self) -> str | None:
        """A service of the run that stopped (it will not become ready): its name and log."""
        stopped = {**res.label_filter(self.run_id), "status": ["exited", "dead"]}
        for container in self.client.containers.list(all=True, filters=stopped):
            if container.labels.get(res.LABEL_HOST) != "setup":
                code = container.attrs.get("State", {}).get("ExitCode")
                log = container.logs(tail=LOG_TAIL).decode(errors="replace")
                return f"{container.name} exited (code {code}); its last lines:\n{log}"
        return None

    def memory_rss(self) -> int:
        """The sum of the run's containers' RSS now, in bytes (cgroup v1, else v2's anon)."""
        total = 0
        for container in self.client.containers.list(filters=res.label_filter(self.run_id), sparse=True):
            total += container_rss(container.id)
        return total

    # -- cleanup ------------------------------------------------------------------------------
    def _save_log(self, host: str, service: str, container: Any) -> None:
        path = self.state.directory / "logs" / host / f"{service}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.write_bytes(container.logs())
        except Exception as exc:  # a lost log is no reason to fail a cleanup
            LOG.debug("logs of %s: %s", container.name, exc)

    def destroy(self) -> dict[str, int]:
        """Keep every service's log under results/<run>/logs/, then remove everything by label."""
        self.closing.set()
        for host in self.state.hosts.values():
            for service in host.services:
                container = self.find(host.name, service)
                if container is not None:
                    self._save_log(host.name, service, container)
        counts = res.reap(self.client, self.run_id)
        shutil.rmtree(Path(tempfile.gettempdir()) / f"rollgate-{self.run_id}", ignore_errors=True)
        return counts


def container_rss(container_id: str) -> int:
    """Resident memory of a container's processes from its cgroup (0 if not found)."""
    v1 = Path("/sys/fs/cgroup/memory/docker") / container_id / "memory.stat"
    v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.stat")
    for stat, field in ((v1, "total_rss"), (v2, "anon")):
        try:
            fields = dict(line.split() for line in stat.read_text().splitlines())
        except (OSError, ValueError):
            continue
        return int(fields.get(field, 0))
    return 0

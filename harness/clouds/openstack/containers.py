"""The openstack profile's containers on Docker: one container per service on the run network.

A sibling of ``harness.backends.docker`` rather than a part of it: minicloud's
hosts are an anchor container owning a network namespace, a config file the
harness rewrites and minicloud's own CLI, none of which OpenStack's services
use. What the two share comes from ``docker_resources``: the run network,
labels (``rollgate.run``, ``rollgate.managed``, host, service, release), names,
ports published on 127.0.0.1 only, and reaping by label, so ``rollgate down
RUN_ID`` finds everything of an openstack run (``destroy`` saves every
container's log, then reaps by label).

Names: ``rg-<run>-<host>-<service>-<release>`` for a service of an OpenStack
release, ``rg-<run>-<host>-<service>`` for MariaDB, RabbitMQ and HAProxy. A
rolling upgrade starts the next release's container of a service before it
stops the old one, so the two must coexist; the release in the name (and in
the ``rollgate.release`` label and the per-release network alias, see
``openstack.release_alias``) tells them apart. One-off containers (setup,
upgrade syncs) carry ``rollgate.oneoff`` and no service alias, so that no
request for ``keystone:5000`` reaches a ``keystone-manage`` one-off.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from harness.backends import docker_resources as res
from harness.clouds.openstack import SYSTEM, ContainerSpec, release_alias
from harness.errors import DeployError
from harness.runstate import RunState

LOG = logging.getLogger(__name__)

CONFIG_DIR = "/etc/rollgate"
SOCKET_DIR = "/run/rollgate"
LOG_TAIL = 30
LABEL_ONEOFF = "rollgate.oneoff"


class OpenStackContainers:
    """Every Docker object of one openstack run: created labelled, found by name, removed by label."""

    def __init__(self, state: RunState, client: Any) -> None:
        self.state = state
        self.run_id = state.run_id
        self.client = client
        self.meta: dict[str, Any] = state.extra.setdefault("docker", {})
        self.closing = threading.Event()  # set by destroy: one-offs not yet created never are

    # -- names and places ---------------------------------------------------------------------
    def container_name(self, host: str, service: str, release: str = SYSTEM) -> str:
        """``rg-<run>-<host>-<service>[-<release>]`` (see the module docstring)."""
        parts = (host, service) if release == SYSTEM else (host, service, release)
        return res.resource_name(self.run_id, *parts)

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
                ports: dict[int, int], oneoff: str | None = None) -> Any:
        if self.closing.is_set():
            raise DeployError(f"run {self.run_id} is being removed; not creating {name}")
        volumes = [f"{self._volume(spec.host, key)}:{path}" for key, path in spec.volumes.items()]
        if spec.config is not None:
            volumes += [f"{self.config_dir(spec.host).resolve()}:{CONFIG_DIR}:ro",
                        f"{self.runtime_dir(spec.host)}:{SOCKET_DIR}"]
        aliases = [] if oneoff else [spec.alias]
        if not oneoff and spec.release != SYSTEM:
            aliases.append(release_alias(spec.alias, spec.release))
        endpoint = self.client.api.create_endpoint_config(aliases=aliases or None)
        network = self.meta["network"]
        labels = res.run_labels(self.run_id, **{res.LABEL_HOST: spec.host, res.LABEL_SERVICE: spec.service,
                                                res.LABEL_RELEASE: spec.release})
        if oneoff:
            labels[LABEL_ONEOFF] = oneoff
        return self.client.containers.create(
            spec.image, command, name=name, hostname=spec.alias, labels=labels,
            environment=spec.environment, volumes=volumes, init=True, detach=True,
            ports={f"{inner}/tcp": ("127.0.0.1", outer) for inner, outer in ports.items()},
            network=network, networking_config={network: endpoint})

    def start(self, spec: ContainerSpec, ports: dict[int, int] | None = None) -> Any:
        """Create and start the service's container (``ports``: inner -> 127.0.0.1 port)."""
        container = self._create(spec, self.container_name(spec.host, spec.service, spec.release),
                                 list(spec.command) if spec.command else None, ports or {})
        container.start()
        LOG.info("started %s on %s (%s)", spec.service, spec.host, spec.image)
        return container

    def run_oneoff(self, spec: ContainerSpec, name: str, shell: str, timeout: float,
                   kind: str = "setup") -> None:
        """Run ``shell`` in a one-off container like ``spec``'s (image, environment, volumes)
        and remove it; a DeployError with its last log lines if it fails."""
        code, log = self.run_oneoff_result(spec, name, shell, timeout, kind)
        if code != 0:
            tail = "\n".join(log.splitlines()[-LOG_TAIL:])
            raise DeployError(f"{kind} {name} exited {code}:\n{tail}")

    def run_oneoff_result(self, spec: ContainerSpec, name: str, shell: str, timeout: float,
                          kind: str = "setup") -> tuple[int, str]:
        """Run ``shell`` in a one-off like ``spec``'s; its exit code and log (kept under
        results/<run>/logs/<kind>/<name>.log). A one-off of that name left by a crashed
        command is removed first, so a resumed step runs it again."""
        import docker

        container_name = self.container_name(kind, name)
        try:
            self.client.containers.get(container_name).remove(force=True)
        except docker.errors.NotFound:
            pass
        container = self._create(spec, container_name, ["sh", "-ec", shell], {}, oneoff=name)
        try:
            container.start()
            code = int(container.wait(timeout=timeout).get("StatusCode", 1))
            self._save_log(kind, name, container)
            return code, container.logs().decode(errors="replace")
        finally:
            try:
                container.remove(force=True)
            except Exception as exc:  # already reaped by a concurrent cleanup
                LOG.debug("removing one-off %s: %s", name, exc)

    def find(self, host: str, service: str, release: str | None = None) -> Any | None:
        """The container of ``service`` on ``host`` at ``release`` (default: the release
        run.json records for it), or None."""
        import docker

        if release is None:
            known = self.state.hosts.get(host)
            release = known.services[service].release if known and service in known.services else SYSTEM
        try:
            return self.client.containers.get(self.container_name(host, service, release))
        except docker.errors.NotFound:
            return None

    def containers(self, host: str, service: str) -> list[Any]:
        """Every container of ``service`` on ``host``, any release, running or not (no one-off)."""
        filters = res.label_filter(self.run_id)
        filters["label"] += [f"{res.LABEL_HOST}={host}", f"{res.LABEL_SERVICE}={service}"]
        return [c for c in self.client.containers.list(all=True, filters=filters, ignore_removed=True)
                if LABEL_ONEOFF not in c.labels]

    def service_containers(self) -> list[Any]:
        """Every service container of the run (any host, service or release; no one-off)."""
        listing = self.client.containers.list(all=True, filters=res.label_filter(self.run_id),
                                              ignore_removed=True)
        return [c for c in listing if LABEL_ONEOFF not in c.labels and c.labels.get(res.LABEL_SERVICE)]

    def retire(self, container: Any, stop_timeout: float) -> float:
        """Stop a container like ``docker stop -t``: SIGTERM, SIGKILL after ``stop_timeout``
        seconds; keep its log (``logs/<host>/<service>-<release>.log``), remove it.
        Returns the seconds the stop took."""
        started = time.monotonic()
        container.stop(timeout=max(1, round(stop_timeout)))
        took = time.monotonic() - started
        labels = container.labels
        self._save_log(labels.get(res.LABEL_HOST, "unknown"),
                       f"{labels.get(res.LABEL_SERVICE, container.name)}-{labels.get(res.LABEL_RELEASE)}",
                       container)
        container.remove(force=True)
        return took

    def exec(self, host: str, service: str, command: list[str], timeout: float = 120.0) -> str:
        """Run a command in the service's running container; its output, or a DeployError."""
        code, output = self.exec_result(host, service, command, timeout)
        if code != 0:
            raise DeployError(f"`{' '.join(command)}` in {service} on {host} exited {code}:\n"
                              f"{output[-3000:]}")
        return output

    def exec_result(self, host: str, service: str, command: list[str], timeout: float = 120.0,
                    release: str | None = None) -> tuple[int, str]:
        """Run a command in the service's running container: its exit code and output."""
        container = self.find(host, service, release)
        if container is None:
            raise DeployError(f"{service} on {host} has no container")
        result = container.exec_run(["timeout", "-k", "2", str(int(timeout)), *command])
        return int(result.exit_code), (result.output or b"").decode(errors="replace")

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
        # ignore_removed: a one-off removed between the listing and docker-py's inspect of
        # each container made the listing itself fail with a 404 (a deploy died of it)
        for container in self.client.containers.list(all=True, filters=stopped, ignore_removed=True):
            if container.labels.get(res.LABEL_HOST) != "setup" and LABEL_ONEOFF not in container.labels:
                code = container.attrs.get("State", {}).get("ExitCode")
                log = container.logs(tail=LOG_TAIL).decode(errors="replace")
                return f"{container.name} exited (code {code}); its last lines:\n{log}"
        return None

    def memory_rss(self) -> int:
        """The sum of the run's containers' RSS now, in bytes (cgroup v1, else v2's anon)."""
        return run_rss(self.client, self.run_id)

    # -- cleanup ------------------------------------------------------------------------------
    def _save_log(self, host: str, service: str, container: Any) -> None:
        path = self.state.directory / "logs" / host / f"{service}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.write_bytes(container.logs())
        except Exception as exc:  # a lost log is no reason to fail a cleanup
            LOG.debug("logs of %s: %s", container.name, exc)

    def destroy(self) -> dict[str, int]:
        """Keep every service container's log under results/<run>/logs/<host>/ (``<service>.log``
        for the release run.json records, ``<service>-<release>.log`` for another one left by an
        unfinished upgrade), then remove everything by label."""
        self.closing.set()
        for container in self.client.containers.list(all=True, filters=res.label_filter(self.run_id),
                                                      ignore_removed=True):
            labels = container.labels
            host, service = labels.get(res.LABEL_HOST), labels.get(res.LABEL_SERVICE)
            if not host or not service or LABEL_ONEOFF in labels:
                continue
            known = self.state.hosts.get(host)
            current = known.services[service].release if known and service in known.services else None
            release = labels.get(res.LABEL_RELEASE)
            self._save_log(host, service if release in (current, SYSTEM) else f"{service}-{release}",
                           container)
        counts = res.reap(self.client, self.run_id, root=str(self.state.directory.parent))
        shutil.rmtree(Path(tempfile.gettempdir()) / f"rollgate-{self.run_id}", ignore_errors=True)
        return counts


def run_rss(client: Any, run_id: str) -> int:
    """The sum of the RSS of the containers labelled with ``run_id`` now, in bytes."""
    return sum(container_rss(c.id) for c in client.containers.list(filters=res.label_filter(run_id),
                                                                    sparse=True))


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

"""The process backend: a host is a state directory plus tagged processes bound
to the host's own 127.x.y.z address. It needs nothing installed beyond Python.

Replacing a service's release restarts that service from the other release
with the same state directory; a reboot kills every process of the host
(instances included, unless migrated away) and starts its services again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness.backends import haproxy, procutil
from harness.backends.base import BaseBackend, ExecResult, HostSpec
from harness.clouds import minicloud
from harness.errors import DeployError, UsageError
from harness.runstate import HostState, RunState, ServiceState
from harness.waiting import wait_http_ok, wait_until

LOG = logging.getLogger(__name__)


def allocate_subnet(run_id: str) -> str:
    """A 127.A.B prefix for the run, free of listeners, stable for a run id."""
    busy = {".".join(a.split(".")[:3]) for a in procutil.listening_addresses()}
    digest = int(hashlib.sha256(run_id.encode()).hexdigest(), 16)
    for attempt in range(256 * 200):
        value = (digest + attempt) % (240 * 256)
        prefix = f"127.{10 + value // 256}.{value % 256}"
        if prefix not in busy:
            return prefix
    raise DeployError("no free 127.x.y.0/24 range on loopback")  # pragma: no cover


class ProcessBackend(BaseBackend):
    """Hosts as local processes on their own loopback addresses."""

    name = "process"

    def __init__(self, state: RunState, database: str | None = None) -> None:
        super().__init__(state.run_id)
        self.state = state
        self.root = str(state.directory.parent)  # the results root its processes are tagged with
        self.prefix = state.extra.setdefault("subnet", allocate_subnet(state.run_id))
        self.database = database or f"sqlite:///{state.directory / 'cloud.db'}"
        state.extra.setdefault("database", self.database)

    # -- layout -------------------------------------------------------------
    def host_dir(self, host: str) -> Path:
        return self.state.directory / "hosts" / host

    def config_path(self, host: str) -> Path:
        return self.host_dir(host) / "config.json"

    def log_path(self, host: str, service: str) -> Path:
        return self.state.directory / "logs" / host / f"{service}.log"

    def assign_address(self, spec: HostSpec) -> str:
        if spec.address:
            return spec.address
        index = len(self.state.hosts) + 1
        return f"{self.prefix}.{index}"

    def address(self, host: str) -> str:
        return self._host(host).address

    def _host(self, host: str) -> HostState:
        return self.state.host_state(host)

    def _service(self, host: str, service: str) -> ServiceState:
        return self.state.service_state(host, service)

    # -- hosts --------------------------------------------------------------
    def register_host(self, spec: HostSpec) -> HostState:
        """Record the host (address, services) without starting anything."""
        address = self.assign_address(spec)
        state = HostState(name=spec.name, roles=list(spec.roles), address=address,
                          services={s: ServiceState(release=r, port=minicloud.PORTS.get(s))
                                    for s, r in spec.services.items()})
        self.state.hosts[spec.name] = state
        self.state.save()
        return state

    def runtime_dir(self) -> Path:
        """Short-path directory for unix sockets (108-byte limit), removed on destroy."""
        path = Path(tempfile.gettempdir()) / f"rollgate-{self.run_id}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def lb_api(self, host: str) -> haproxy.RuntimeAPI:
        return haproxy.RuntimeAPI(self.runtime_dir() / f"{host}-haproxy.sock")

    def write_lb_config(self, host: str) -> None:
        """haproxy.cfg on the lb host, balancing over every controller."""
        backends = [haproxy.Backend(h.name, h.address) for h in self.state.hosts.values()
                    if "controller" in h.roles]
        text = haproxy.render_config(self.address(host), backends,
                                     str(self.runtime_dir() / f"{host}-haproxy.sock"))
        path = self.host_dir(host) / "haproxy.cfg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def write_config(self, host: str, layout: minicloud.CloudLayout) -> None:
        state = self._host(host)
        if "lb" in state.roles:
            self.write_lb_config(host)
        config = minicloud.host_config(
            host, state.address, self.host_dir(host) / "state",
            {s: v.release for s, v in state.services.items()}, layout,
            extra=self.state.extra.get("config_overrides"))
        (self.host_dir(host) / "state").mkdir(parents=True, exist_ok=True)
        minicloud.write_host_config(self.config_path(host), config)

    def create_host(self, spec: HostSpec) -> None:
        if spec.name not in self.state.hosts:
            self.register_host(spec)
        for service in self._host(spec.name).services:
            self.start_service(spec.name, service)

    def start_service(self, host: str, service: str, wait: bool = True) -> None:
        state = self._host(host)
        svc = self._service(host, service)
        self._sync_config_release(host)
        proc = procutil.spawn(
            self._command(host, service),
            run_id=self.run_id, host=host, service=service,
            log_path=self.log_path(host, service), cwd=minicloud.MINICLOUD_SOURCE,
            env=minicloud.process_env())
        svc.pid = proc.pid
        self.state.save()
        LOG.info("started %s on %s (%s) at %s, pid %d", service, host, state.address, svc.release, proc.pid)
        if wait:
            self.wait_ready(host, service)

    def _command(self, host: str, service: str) -> list[str]:
        if service == "haproxy":
            binary = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
            if binary is None:
                raise DeployError("the lb role needs HAProxy on the process backend: "
                                  "apt-get install haproxy (bash .ci/setup.sh does)")
            return [binary, "-f", str(self.host_dir(host) / "haproxy.cfg"), "-db"]
        return minicloud.service_command(service, self.config_path(host))

    def wait_ready(self, host: str, service: str, timeout: float = 30.0) -> None:
        svc = self._service(host, service)

        def died() -> str | None:
            if svc.pid is not None and not procutil.alive(svc.pid):
                return f"{service} on {host} exited during start"
            return None

        evidence = lambda: self.logs(host, service, tail=20)  # noqa: E731
        if service == "haproxy":
            wait_until(lambda: "Name: HAProxy" in self.lb_api(host).command("show info"),
                       timeout=timeout, what=f"haproxy on {host}", abort=died, evidence=evidence)
            return
        url = minicloud.health_url(self.address(host), service)
        wait_http_ok(url, timeout=timeout, what=f"{service} on {host}", abort=died, evidence=evidence)

    def _sync_config_release(self, host: str) -> None:
        """Rewrite the host config's per-service releases from the run state."""
        path = self.config_path(host)
        if not path.exists():
            return
        config = json.loads(path.read_text())
        config["releases"] = {s: v.release for s, v in self._host(host).services.items()}
        minicloud.write_host_config(path, config)

    def stop_service(self, host: str, service: str, timeout: float = 15.0) -> None:
        svc = self._service(host, service)
        pids = procutil.tagged_pids(self.run_id, host, service, root=self.root)
        # A hypervisor's instances carry its service tag too: they are not the
        # service and must survive its restart; only the service's own pid goes.
        targets = [svc.pid] if svc.pid else []
        if not targets:
            targets = pids[:1]
        procutil.stop_pids(targets, timeout)
        svc.pid = None
        self.state.save()

    def kill_service(self, host: str, service: str) -> None:
        svc = self._service(host, service)
        if svc.pid:
            procutil.stop_pids([svc.pid], 0.0)
        svc.pid = None
        self.state.save()

    def replace_service(self, host: str, service: str, release: str, timeout: float = 15.0) -> None:
        self.stop_service(host, service, timeout)
        self._service(host, service).release = release
        self.state.save()
        self.start_service(host, service)

    def reboot_host(self, host: str) -> None:
        procutil.reap(self.run_id, host=host, timeout=0.0, root=self.root)
        for svc in self._host(host).services.values():
            svc.pid = None
        self.state.save()
        for service in self._host(host).services:
            self.start_service(host, service)

    def exec(self, host: str, command: list[str], timeout: float = 60.0) -> ExecResult:
        """Run a command as if on the host: cwd is the host dir, its config at $MINICLOUD_CONFIG."""
        env = {**minicloud.process_env(), "MINICLOUD_CONFIG": str(self.config_path(host))}
        try:
            done = subprocess.run(command, cwd=minicloud.MINICLOUD_SOURCE, env={**os.environ, **env},
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            return ExecResult(124, exc.stdout or "" if isinstance(exc.stdout, str) else "",
                              f"timed out after {timeout}s")
        return ExecResult(done.returncode, done.stdout, done.stderr)

    def manage(self, host: str, *args: str, release: str | None = None,
               timeout: float = 60.0) -> ExecResult:
        """Run minicloud's admin CLI with the host's config (at ``release`` if given)."""
        config = self.config_path(host)
        if release is not None:
            raw = json.loads(config.read_text())
            raw.setdefault("releases", {})["manage"] = release
            config = self.runtime_dir() / f"{host}-manage-{release}.json"
            minicloud.write_host_config(config, raw)
        return self.exec(host, minicloud.manage_command(config, *args), timeout)

    def update_host_config(self, host: str, values: dict[str, Any]) -> None:
        path = self.config_path(host)
        raw = json.loads(path.read_text())
        raw.update(values)
        minicloud.write_host_config(path, raw)

    def signal_service(self, host: str, service: str, signum: int) -> None:
        svc = self._service(host, service)
        if not svc.pid or not procutil.alive(svc.pid):
            raise UsageError(f"{service} on {host} is not running")
        procutil.signal_pid(svc.pid, signum)

    def service_address(self, host: str, service: str) -> tuple[str, int]:
        port = minicloud.PORTS.get(service) if service != "haproxy" else None
        if port is None:
            raise UsageError(f"{service} on {host} has no HTTP port the harness checks")
        self._service(host, service)
        return self.address(host), port

    def testinfra_host(self, host: str, service: str | None = None) -> Any:
        """A testinfra host for checks: ``local://`` (every host is this machine).

        Checks reach a host's services on its own address (``address(host)``).
        """
        self._host(host)
        if service is not None:
            self._service(host, service)
        import testinfra

        return testinfra.get_host("local://")

    def logs(self, host: str, service: str, tail: int | None = None) -> str:
        path = self.log_path(host, service)
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        if tail is not None:
            text = "\n".join(text.splitlines()[-tail:])
        return text

    def destroy(self) -> None:
        procutil.reap(self.run_id, root=self.root)
        for host in self.state.hosts.values():
            for svc in host.services.values():
                svc.pid = None
        shutil.rmtree(Path(tempfile.gettempdir()) / f"rollgate-{self.run_id}", ignore_errors=True)
        self.state.status = "down"
        self.state.save()

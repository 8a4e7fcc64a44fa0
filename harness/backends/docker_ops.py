"""What the harness does on a docker host once it runs: exec, the admin CLI, config
updates, signals, the lb's runtime API, logs and testinfra (split from docker.py
to keep each module readable; DockerBackend mixes it in).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.backends import docker_resources as res
from harness.backends import haproxy
from harness.backends.base import ExecResult
from harness.clouds import minicloud
from harness.errors import UsageError
from harness.runstate import RunState

CONFIG_DIR = "/etc/rollgate"
STATE_MOUNT = "/var/lib/minicloud"
SOCKET_DIR = "/run/rollgate"


class DockerHostOperations:
    """Operations on a deployed host; needs the backend's lookups (``_find``, ``_host``, ...)."""

    client: Any
    run_id: str
    state: RunState

    def _find(self, host: str, service: str) -> Any | None:
        raise NotImplementedError

    def _host(self, host: str) -> Any:
        raise NotImplementedError

    def _anchor(self, host: str) -> Any:
        raise NotImplementedError

    def _volume(self, host: str) -> str:
        raise NotImplementedError

    def config_path(self, host: str) -> Path:
        raise NotImplementedError

    def _sync_config_release(self, host: str) -> None:
        path = self.config_path(host)
        if not path.exists():
            return
        config = json.loads(path.read_text())
        config["releases"] = {s: v.release for s, v in self._host(host).services.items()
                              if s not in res.SYSTEM_IMAGES}
        minicloud.write_host_config(path, config)

    def _labels(self, host: str, service: str, release: str) -> dict[str, str]:
        raise NotImplementedError

    def host_dir(self, host: str) -> Path:
        raise NotImplementedError

    def runtime_dir(self) -> Path:
        raise NotImplementedError

    def container_name(self, host: str, service: str) -> str:
        raise NotImplementedError

    def is_running(self, host: str, service: str) -> bool:
        raise NotImplementedError

    def _exec_container(self, host: str) -> Any:
        for service in self._host(host).services:
            container = self._find(host, service)
            if container is not None and container.status == "running":
                return container
        raise UsageError(f"no running container on {host}")

    def exec(self, host: str, command: list[str], timeout: float = 60.0) -> ExecResult:
        """Run a command in a running container of the host ($MINICLOUD_CONFIG set)."""
        container = self._exec_container(host)
        wrapped = ["timeout", "-k", "2", str(int(max(1, timeout))), *command]
        result = container.exec_run(wrapped, demux=True,
                                    environment={"MINICLOUD_CONFIG": f"{CONFIG_DIR}/config.json"})
        stdout, stderr = result.output or (b"", b"")
        return ExecResult(result.exit_code or 0, (stdout or b"").decode(errors="replace"),
                          (stderr or b"").decode(errors="replace"))

    def manage(self, host: str, *args: str, release: str | None = None,
               timeout: float = 60.0) -> ExecResult:
        """minicloud's admin CLI in a one-off container of ``release``'s image on the host."""
        config = json.loads(self.config_path(host).read_text())
        label = release or str(config.get("release"))
        name = "config.json"
        if release is not None:
            config.setdefault("releases", {})["manage"] = release
            name = f"manage-{release}.json"
            minicloud.write_host_config(self.host_dir(host) / name, config)
        anchor = self._anchor(host)
        container = self.client.containers.run(
            res.image_for("manage", label),
            ["timeout", "-k", "2", str(int(max(1, timeout))), "python", "-m", "minicloud.manage",
             "--config", f"{CONFIG_DIR}/{name}", *args],
            detach=True, labels=self._labels(host, "manage", label),
            volumes=[f"{self.host_dir(host).resolve()}:{CONFIG_DIR}:ro",
                     f"{self._volume(host)}:{STATE_MOUNT}"],
            network_mode=f"container:{anchor.id}")
        try:
            outcome = container.wait(timeout=timeout + 10)
            stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
            stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
        finally:
            container.remove(force=True)
        return ExecResult(int(outcome.get("StatusCode", 1)), stdout, stderr)

    def update_host_config(self, host: str, values: dict[str, Any]) -> None:
        path = self.config_path(host)
        raw = json.loads(path.read_text())
        raw.update(values)
        minicloud.write_host_config(path, raw)

    def signal_service(self, host: str, service: str, signum: int) -> None:
        if not self.is_running(host, service):
            raise UsageError(f"{service} on {host} is not running")
        container = self._find(host, service)
        assert container is not None
        container.kill(signal=signum)

    def lb_api(self, host: str) -> haproxy.RuntimeAPI:
        return haproxy.RuntimeAPI(self.runtime_dir() / host / "admin.sock")

    def logs(self, host: str, service: str, tail: int | None = None) -> str:
        container = self._find(host, service)
        if container is None:
            path = self.state.directory / "logs" / host / f"{service}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            return "\n".join(text.splitlines()[-tail:]) if tail else text
        return str(container.logs(tail=tail if tail else "all").decode(errors="replace"))

    def testinfra_host(self, host: str, service: str | None = None) -> Any:
        """A testinfra host on one of the host's containers (``docker://<container>``)."""
        import testinfra

        name = self.container_name(host, service) if service else self._exec_container(host).name
        return testinfra.get_host(f"docker://{name}")


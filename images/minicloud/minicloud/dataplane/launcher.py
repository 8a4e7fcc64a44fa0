"""Run data-plane services as real processes: for tests and benchmarks, not the harness.

(The harness has its own backends and never imports minicloud.) Every process
starts in its own session so that it and its children can be signalled as a
group; ``DataplaneHost.cleanup`` kills services and the workloads the
hypervisor spawned (found from their pid records), also after a failure.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from minicloud.config import PORTS
from minicloud.dataplane.httpjson import CallError, call_json
from minicloud.dataplane.workload_process import PACKAGE_ROOT, is_workload_of, pid_alive


class ServiceProcess:
    """One ``python -m minicloud SERVICE`` process."""

    def __init__(self, service: str, config_path: Path, bind: str, log_path: Path) -> None:
        self.service = service
        self.url = f"http://{bind}:{PORTS[service]}"
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "minicloud", service, "--config", str(config_path)],
                cwd=PACKAGE_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        self.log_path = log_path

    def wait_ready(self, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                return call_json("GET", f"{self.url}/healthz", timeout=1.0)  # type: ignore[no-any-return]
            except CallError as exc:
                last = exc
            time.sleep(0.02)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.service} not ready (exit {self.process.poll()}, last: {last});"
                           f" log:\n{tail}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait, then SIGKILL the process (its session, not the workloads' ones)."""
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        return self.process.poll()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


class DataplaneHost:
    """One fake host: an address, a state dir, a config file, its services."""

    def __init__(self, name: str, bind: str, root: Path, endpoints: dict[str, str],
                 release: str = "1.1") -> None:
        self.name = name
        self.bind = bind
        self.state_dir = root / name
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.state_dir / "minicloud.json"
        self.config_path.write_text(json.dumps({
            "release": release, "host": name, "bind": bind, "state_dir": str(self.state_dir),
            "endpoints": endpoints, "shutdown_timeout": 5.0}))
        self.services: dict[str, ServiceProcess] = {}

    def url(self, service: str) -> str:
        return f"http://{self.bind}:{PORTS[service]}"

    def start(self, service: str) -> ServiceProcess:
        process = ServiceProcess(service, self.config_path, self.bind,
                                 self.state_dir / f"{service}.log")
        self.services[service] = process
        process.wait_ready()
        return process

    def workload_pids(self) -> dict[str, int]:  # "uuid@dirname" -> pid
        """uuid -> pid from the hypervisor's instance records (retired ones too)."""
        pids = {}
        instances = self.state_dir / "instances"
        records = [*instances.glob("*/instance.json"), *instances.glob(".retired/*/instance.json")]
        for record_path in records:
            try:
                record = json.loads(record_path.read_text())
            except (OSError, ValueError):
                continue
            pids[f'{record["uuid"]}@{record_path.parent.name}'] = int(record.get("pid") or 0)
        return pids

    def cleanup(self) -> None:
        """Stop every service and kill every workload this host started."""
        for process in self.services.values():
            process.stop(timeout=5.0)
        for key, pid in self.workload_pids().items():
            if pid_alive(pid) and is_workload_of(pid, key.split("@")[0]):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def endpoints_for(network_bind: str) -> dict[str, str]:
    return {"network": f"http://{network_bind}:{PORTS['network']}",
            "datapath": f"http://{network_bind}:{PORTS['datapath']}"}

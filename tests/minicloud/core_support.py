"""Real minicloud control-plane processes for the ``test_core_*`` tests.

A ``CoreCloud`` is one throw-away cloud: a SQLite file in a tmp dir and a
random loopback /24 (127.a.b.0) so that its fixed ports never collide with
another test's. Hosts: ``controller`` (.1: conductor, scheduler, the DB),
``network`` (.2), ``compute-1`` (.3), ``compute-2`` (.4). Every process runs
in its own process group and is stopped (SIGTERM, then SIGKILL) by
``stop_all``, which the fixtures call as a finalizer.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MINICLOUD_ROOT = Path(__file__).resolve().parents[2] / "images" / "minicloud"
PORTS = {"conductor": 8780, "scheduler": 8781, "compute-agent": 8782, "hypervisor": 8783,
         "network": 9696, "datapath": 9697, "compute-api": 8774, "identity": 5000, "image": 9292}
HOST_SUFFIX = {"controller": 1, "network": 2, "compute-1": 3, "compute-2": 4}


def wait_until(condition: Callable[[], Any], timeout: float, what: str,
               evidence: Callable[[], str] | None = None, interval: float = 0.05) -> Any:
    """Poll ``condition`` until truthy; on timeout raise with the last error and evidence."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # not ready yet
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last error: {last_error!r}\n"
                       + (evidence() if evidence else ""))


def http_json(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, (json.loads(raw) if raw else None)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie of ours counts as gone: it is reaped by init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class Proc:
    service: str
    host: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_exit(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the process group; SIGKILL it if it outlives ``timeout``."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(5)
        return self.process.returncode


@dataclass
class CoreCloud:
    root: Path
    release: str = "1.0"
    heartbeat_interval: float = 0.3
    service_down_time: float = 3.0
    upgrade_levels: dict[str, Any] = field(default_factory=lambda: {"compute": "auto"})
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.SystemRandom()
        self.prefix = f"127.{rng.randint(100, 254)}.{rng.randint(1, 254)}"
        self.database = f"sqlite:///{self.root / 'cloud.db'}"

    def address(self, host: str) -> str:
        return f"{self.prefix}.{HOST_SUFFIX[host]}"

    def url(self, service: str, host: str = "controller") -> str:
        return f"http://{self.address(host)}:{PORTS[service]}"

    def endpoints(self, conductor_host: str = "controller") -> dict[str, str]:
        return {"identity": self.url("identity"), "image": self.url("image"),
                "compute": self.url("compute-api"), "conductor": self.url("conductor", conductor_host),
                "scheduler": self.url("scheduler"), "network": self.url("network", "network"),
                "datapath": self.url("datapath", "network")}

    def write_config(self, host: str, release: str | None = None, **extra: Any) -> Path:
        release = release or self.release
        config = {
            "release": release, "host": host, "bind": self.address(host),
            "state_dir": str(self.root / "state" / host), "database": self.database,
            "endpoints": self.endpoints(),
            "upgrade_levels": self.upgrade_levels,
            "heartbeat_interval": self.heartbeat_interval,
            "service_down_time": self.service_down_time,
            "shutdown_timeout": 10.0,
            **extra,
        }
        (self.root / "state" / host).mkdir(parents=True, exist_ok=True)
        path = self.root / f"{host}-{release.replace('+', '_')}.json"
        path.write_text(json.dumps(config))
        return path

    def start(self, service: str, host: str = "controller", release: str | None = None,
              wait: bool = True, timeout: float = 30.0, **extra: Any) -> Proc:
        """Start ``service`` on ``host`` (``extra``: more config); with ``wait``, until its
        /healthz answers."""
        config = self.write_config(host, release, **extra)
        log_path = self.root / f"{service}-{host}-{len(self.procs)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "minicloud", service, "--config", str(config)],
                cwd=MINICLOUD_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc = Proc(service, host, process, log_path)
        self.procs.append(proc)
        if wait:
            self.wait_ready([proc], timeout)
        return proc

    def wait_ready(self, procs: list[Proc], timeout: float = 30.0) -> None:
        """Wait until every process answers /healthz (fails at once if one exits)."""
        for proc in procs:
            def healthy(proc: Proc = proc) -> bool:
                if proc.process.poll() is not None:
                    raise RuntimeError(f"{proc.service} exited with {proc.process.returncode}")
                status, body = http_json("GET", f"{self.url(proc.service, proc.host)}/healthz",
                                         timeout=2)
                return status == 200 and body["status"] == "ok"
            wait_until(healthy, timeout, f"{proc.service} on {proc.host}", evidence=proc.log)

    def manage(self, *args: str, release: str | None = None,
               timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        config = self.write_config("controller", release)
        return subprocess.run([sys.executable, "-m", "minicloud.manage", "--config", str(config), *args],
                              cwd=MINICLOUD_ROOT, capture_output=True, text=True, timeout=timeout,
                              check=False)  # callers assert on the exit code

    def prepare_schema(self, *steps: tuple[str, str]) -> None:
        """Apply ("expand"|"contract", release) steps in-process (fast fixture set-up)."""
        from minicloud import db
        from minicloud.releases import get_release

        engine = db.connect(self.database)
        try:
            for action, release in steps:
                getattr(db, action)(engine, get_release(release))
        finally:
            engine.dispose()

    def config(self, host: str = "controller", release: str | None = None, service: str = "conductor",
               **extra: Any) -> Any:
        """A loaded minicloud Config (for in-process RPC clients)."""
        from minicloud.config import load_config

        return load_config(self.write_config(host, release, **extra), service)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        self.reap_workloads()

    def workload_pids(self) -> list[int]:
        """Workload processes of this cloud: hypervisors start them in their own
        sessions (they outlive a hypervisor restart by design), so stopping the
        hypervisor's process group does not reach them."""
        root = str(self.root)
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            text = [a.decode(errors="replace") for a in args]
            if "minicloud.workload" in text and any(a.startswith(root) for a in text):
                found.append(int(entry.name))
        return found

    def reap_workloads(self, timeout: float = 5.0) -> None:
        """SIGTERM this cloud's workloads, SIGKILL the ones that outlive ``timeout``."""
        pids = self.workload_pids()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and (pids := [p for p in pids if _alive(p)]):
                time.sleep(0.05)
            if not pids:
                return

    def logs(self) -> str:
        return "\n".join(f"--- {p.service}@{p.host} ---\n{p.log()[-3000:]}" for p in self.procs)

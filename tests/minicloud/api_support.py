"""Run minicloud API services as real processes for the ``test_api_*`` tests.

Every service binds a fixed port, so each test cloud gets its own random
loopback address (127.x.y.z) and never collides with other tests running at
the same time. Processes run in their own process group and are always
stopped (SIGTERM, then SIGKILL) by the fixture that started them.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MINICLOUD_ROOT = Path(__file__).resolve().parents[2] / "images" / "minicloud"
PORTS = {"identity": 5000, "image": 9292, "compute-api": 8774, "conductor": 8780, "scheduler": 8781,
         "compute-agent": 8782, "hypervisor": 8783, "network": 9696, "datapath": 9697}
ADMIN_PASSWORD = "test-admin-secret"


def random_loopback() -> str:
    """A loopback address unlikely to be used by any other test at the same time."""
    rng = random.SystemRandom()
    return f"127.{rng.randint(100, 254)}.{rng.randint(1, 254)}.{rng.randint(2, 254)}"


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05,
               evidence: Callable[[], str] | None = None) -> Any:
    """Poll ``condition`` until it returns a truthy value; raise with evidence on timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # the condition may fail until the service is up
            last_error = exc
        time.sleep(interval)
    details = evidence() if evidence else ""
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; "
                       f"last error: {last_error!r}\n{details}")


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the process group, SIGKILL it if it does not exit in time."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(5)
        return self.process.returncode


@dataclass
class MiniCloud:
    """A host config plus the API services started from it."""

    root: Path
    address: str
    release: str = "1.1"
    database: str | None = None
    host: str = "controller"
    controller_address: str | None = None  # where the cloud's services are (default: this host)
    extra: dict[str, Any] = field(default_factory=dict)
    services: list[ServiceProcess] = field(default_factory=list)

    def url(self, service: str) -> str:
        return f"http://{self.address}:{PORTS[service]}"

    def _endpoint(self, service: str) -> str:
        return f"http://{self.controller_address or self.address}:{PORTS[service]}"

    def write_config(self, release: str | None = None) -> Path:
        config = {
            "release": release or self.release,
            "host": self.host,
            "bind": self.address,
            "state_dir": str(self.root / "state"),
            "endpoints": {name: self._endpoint(service) for name, service in (
                ("identity", "identity"), ("image", "image"), ("compute", "compute-api"),
                ("conductor", "conductor"), ("scheduler", "scheduler"), ("network", "network"),
                ("datapath", "datapath"))},
            "shutdown_timeout": 20.0,
            "admin_password": ADMIN_PASSWORD,
            **self.extra,
        }
        if self.database:
            config["database"] = self.database
        path = self.root / f"config-{self.host}-{release or self.release}.json"
        path.write_text(json.dumps(config))
        return path

    def start(self, service: str, release: str | None = None, timeout: float = 20.0) -> ServiceProcess:
        """Start ``service`` and wait until its ``/healthz`` answers."""
        started = self.launch(service, release)
        self.wait_healthy(started, timeout)
        return started

    def start_together(self, services: tuple[str, ...], timeout: float = 20.0) -> None:
        """Start services that do not need each other to come up, all at once (faster tests)."""
        for started in [self.launch(service) for service in services]:
            self.wait_healthy(started, timeout)

    def launch(self, service: str, release: str | None = None) -> ServiceProcess:
        """Start ``service`` without waiting for it."""
        config = self.write_config(release)
        log_path = self.root / f"{self.host}-{service}-{len(self.services)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "minicloud", service, "--config", str(config)],
                cwd=MINICLOUD_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started = ServiceProcess(service, process, log_path)
        self.services.append(started)
        return started

    def wait_healthy(self, started: ServiceProcess, timeout: float = 20.0) -> None:
        def healthy() -> bool:
            if started.process.poll() is not None:
                raise RuntimeError(f"{started.name} exited with {started.process.returncode}")
            with urllib.request.urlopen(f"{self.url(started.name)}/healthz", timeout=2) as response:
                return bool(json.loads(response.read())["status"] == "ok")

        wait_until(healthy, timeout, f"{started.name} /healthz on {self.address}", evidence=started.log)

    def stop_all(self) -> None:
        """Stop every service, then kill the workloads its hypervisor started (they outlive it)."""
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
        from minicloud.dataplane.workload_process import is_workload_of, pid_alive

        instances = self.root / "state" / "instances"
        for record_path in [*instances.glob("*/instance.json"), *instances.glob(".retired/*/instance.json")]:
            try:
                record = json.loads(record_path.read_text())
                pid = int(record.get("pid") or 0)
            except (OSError, ValueError):
                continue
            if pid and pid_alive(pid) and is_workload_of(pid, record["uuid"]):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


def http(method: str, url: str, token: str | None = None, body: Any = None,
         headers: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, dict[str, str], Any]:
    """A small JSON HTTP client: (status, headers, parsed body or None)."""
    all_headers = {"Accept": "application/json", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    if token:
        all_headers["X-Auth-Token"] = token
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, response_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, response_headers, raw = exc.code, dict(exc.headers), exc.read()
    return status, response_headers, (json.loads(raw) if raw else None)


def issue_token(cloud: MiniCloud, user: str, password: str, project: str) -> str:
    """Password-authenticate ``user`` scoped to ``project``; return the token."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    status, headers, _ = http("POST", f"{cloud.url('identity')}/v3/auth/tokens", body=body)
    assert status == 201, f"token for {user}: {status}"
    return headers["X-Subject-Token"]


def sdk_connection(cloud: MiniCloud, user: str = "admin", password: str = ADMIN_PASSWORD,
                   project: str | None = None, **kwargs: Any) -> Any:
    """An openstacksdk Connection to the test cloud (no clouds.yaml involved)."""
    import openstack

    return openstack.connect(
        auth_url=f"{cloud.url('identity')}/v3", username=user, password=password,
        project_name=project or user, user_domain_name="Default", project_domain_name="Default",
        region_name="RegionOne", load_yaml_config=False, load_envvars=False, **kwargs)


class FakeConductor:
    """Stands in for the conductor on ``:8780``: accepts every cast, records it.

    The compute API's job ends at the cast, so its tests check the messages
    instead of depending on the scheduler, agents and hypervisors.
    """

    def __init__(self, address: str) -> None:
        import http.server
        import threading

        self.messages: list[dict[str, Any]] = []
        messages = self.messages

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                messages.append(json.loads(self.rfile.read(length)))
                payload = b'{"accepted": true}'
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((address, 8780), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def methods(self) -> list[tuple[str, dict[str, Any]]]:
        return [(m["method"], m["args"]) for m in self.messages]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def create_database(path: Path, release: str) -> str:
    """A SQLite database migrated to ``release``'s expand head (flavors seeded); its URL."""
    from minicloud.db import connect, expand
    from minicloud.releases import get_release

    url = f"sqlite:///{path}"
    engine = connect(url)
    try:
        expand(engine, get_release(release))
    finally:
        engine.dispose()
    return url


@contextlib.contextmanager
def running_compute_cloud(root: Path, release: str = "1.1",
                          extra: dict[str, Any] | None = None) -> Iterator[tuple[MiniCloud, FakeConductor]]:
    """identity, image and compute-api of ``release`` over a fresh database, and a fake conductor."""
    address = random_loopback()
    cloud = MiniCloud(root, address, release=release, extra=extra or {},
                      database=create_database(root / "cloud.db", release))
    conductor = FakeConductor(address)
    try:
        cloud.start_together(("identity", "image", "compute-api"))
        yield cloud, conductor
    finally:
        cloud.stop_all()
        conductor.stop()


def compute_headers(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def db_engine(cloud: MiniCloud) -> Any:
    """An engine on the test cloud's database (the test plays the conductor's part)."""
    from minicloud.db import connect

    assert cloud.database
    return connect(cloud.database)

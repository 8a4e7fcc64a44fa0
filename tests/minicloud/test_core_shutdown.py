"""Graceful shutdown: a compute agent finishes an accepted cast before it exits."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from minicloud import db
from minicloud.db import api
from minicloud.rpc import ConductorAPI

from tests.minicloud.core_support import PORTS, CoreCloud, wait_until

pytestmark = pytest.mark.integration
SLOW_SPAWN_SECONDS = 1.5


class FakeDataPlane(BaseHTTPRequestHandler):
    """A hypervisor that takes a while to spawn, and a network agent that says yes."""

    spawn_started = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        FakeDataPlane.spawn_started.set()
        time.sleep(SLOW_SPAWN_SECONDS)  # the slow spawn the agent must wait for
        self._answer(201, {"uuid": self.path.rsplit("/", 1)[-1], "port": 30000, "pid": 1})

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(200, {"port": int(self.path.rsplit("/", 1)[-1]), "target": "x"})


@pytest.fixture
def cloud_with_fake_dataplane(tmp_path: Path) -> Iterator[CoreCloud]:
    cloud = CoreCloud(tmp_path, release="1.1")
    servers = [ThreadingHTTPServer((cloud.address("compute-1"), PORTS["hypervisor"]), FakeDataPlane),
               ThreadingHTTPServer((cloud.address("network"), PORTS["network"]), FakeDataPlane)]
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
               for s in servers]
    try:
        for thread in threads:
            thread.start()
        cloud.prepare_schema(("expand", "1.1"), ("contract", "1.1"))
        cloud.start("conductor")
        cloud.start("scheduler")
        yield cloud
    finally:
        cloud.stop_all()
        for server in servers:
            server.shutdown()
            server.server_close()


def test_sigterm_waits_for_the_running_build(cloud_with_fake_dataplane: CoreCloud) -> None:
    cloud = cloud_with_fake_dataplane
    agent = cloud.start("compute-agent", "compute-1")
    engine = db.connect(cloud.database)
    inst = api.instance_create(engine, {"name": "vm", "project_id": "p", "flavor_id": "1"})
    FakeDataPlane.spawn_started.clear()
    ConductorAPI(cloud.config()).build_instances(None, str(inst["uuid"]))
    assert FakeDataPlane.spawn_started.wait(15), cloud.logs()
    os.killpg(agent.process.pid, signal.SIGTERM)  # while the spawn is in progress
    assert agent.wait_exit(20) == 0
    # The agent reported the finished build before it exited.
    final = api.instance_get(engine, str(inst["uuid"]))
    assert (final["vm_state"], final["workload_port"]) == ("active", 30000), cloud.logs()
    wait_until(lambda: "compute-agent stopped" in agent.log(), 5, "the stop log line")

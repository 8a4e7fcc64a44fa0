"""Graceful shutdown: a compute agent and a conductor finish an accepted cast before they exit."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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


@contextlib.contextmanager
def _fake_dataplane(cloud: CoreCloud) -> Iterator[None]:
    servers = [ThreadingHTTPServer((cloud.address("compute-1"), PORTS["hypervisor"]), FakeDataPlane),
               ThreadingHTTPServer((cloud.address("network"), PORTS["network"]), FakeDataPlane)]
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
               for s in servers]
    try:
        for thread in threads:
            thread.start()
        cloud.prepare_schema(("expand", "1.1"), ("contract", "1.1"))
        yield
    finally:
        cloud.stop_all()
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def cloud_with_fake_dataplane(tmp_path: Path) -> Iterator[CoreCloud]:
    cloud = CoreCloud(tmp_path, release="1.1")
    with _fake_dataplane(cloud):
        cloud.start("conductor")
        cloud.start("scheduler")
        yield cloud


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


@contextlib.contextmanager
def _two_conductors(tmp_path: Path, release: str) -> Iterator[tuple[CoreCloud, Any, Any]]:
    """A cloud whose scheduler and agent use the controller's conductor, and a second conductor
    (``release``, test hooks on) on compute-2: yields (cloud, that conductor, a client of it)."""
    cloud = CoreCloud(tmp_path, release="1.1")
    with _fake_dataplane(cloud):
        cloud.start("conductor")  # the one the scheduler and the agent use while the held one stops
        cloud.start("scheduler")
        cloud.start("compute-agent", "compute-1")
        conductor = cloud.start("conductor", "compute-2", release=release, debug_delay=True)
        held_endpoints = cloud.endpoints(conductor_host="compute-2")
        yield cloud, conductor, ConductorAPI(cloud.config(endpoints=held_endpoints))


@pytest.mark.parametrize(("release", "finished"), [("1.1", True), ("1.1+conductor-dropcasts", False)])
def test_a_stop_plus_hold_is_in_flight_however_late_the_stop_comes(tmp_path: Path, release: str,
                                                                     finished: bool) -> None:
    """``conductor@HOST=stop+S`` holds the build cast until that conductor's stop and S more: with
    a stop that comes well after S (a loaded machine), the cast is still in flight then, so a
    conductor that drops casts on stop loses the build and a graceful one finishes it."""
    with _two_conductors(tmp_path, release) as (cloud, conductor, client):
        engine = db.connect(cloud.database)
        inst = api.instance_create(engine, {"name": "vm", "project_id": "p", "flavor_id": "1"})
        uuid = str(inst["uuid"])
        client.build_instances({"debug_hold": {"conductor@compute-2": "stop+0.3"}}, uuid)
        wait_until(lambda: "debug hold stop+0.3s" in conductor.log(), 10, "the held cast", conductor.log)
        time.sleep(1.0)  # a late stop: longer than the hold's 0.3 s
        assert api.instance_get(engine, uuid)["host"] is None  # still held
        os.killpg(conductor.process.pid, signal.SIGTERM)
        assert conductor.wait_exit(20) == 0
        if finished:
            wait_until(lambda: api.instance_get(engine, uuid)["vm_state"] == "active", 15,
                       "the held build to finish", cloud.logs)
        else:  # nothing else can run the cast now: the conductor exited with it
            time.sleep(1.0)
            assert api.instance_get(engine, uuid)["host"] is None, cloud.logs()


def test_a_hold_for_another_hosts_conductor_is_not_honoured(tmp_path: Path) -> None:
    with _two_conductors(tmp_path, "1.1") as (cloud, conductor, client):
        engine = db.connect(cloud.database)
        uuid = str(api.instance_create(engine, {"name": "vm", "project_id": "p", "flavor_id": "1"})["uuid"])
        client.build_instances({"debug_hold": {"conductor@controller": "stop+0.3"}}, uuid)
        wait_until(lambda: api.instance_get(engine, uuid)["vm_state"] == "active", 15,
                   "the build (not held here)", cloud.logs)
        assert "debug hold" not in conductor.log()


def test_hold_keys_name_the_host_first_and_need_the_test_hooks_on() -> None:
    from types import SimpleNamespace

    from minicloud.debug_hold import hold_keys

    on = SimpleNamespace(raw={"debug_delay": True}, host="controller-2")
    assert hold_keys("conductor", on) == ("conductor@controller-2", "conductor")
    assert hold_keys("conductor", SimpleNamespace(raw={}, host="controller-2")) == ()


def test_hold_specs_parse_and_a_stop_hold_waits_for_the_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    from minicloud import debug_hold

    assert debug_hold.Hold.parse("1.5") == debug_hold.Hold(1.5)
    assert str(debug_hold.Hold.parse(" stop+0.5")) == "stop+0.5"
    assert debug_hold.Hold.parse(99) == debug_hold.Hold(debug_hold.MAX_SECONDS)
    for bad in ("soon", "stop+", "nan", "stop+x"):
        with pytest.raises(ValueError, match=r"float|number"):
            debug_hold.Hold.parse(bad)
    stopping = threading.Event()
    monkeypatch.setattr(debug_hold, "STOPPING", stopping)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (debug_hold.Hold(0.0, after_stop=True).wait(), done.set()))
    thread.start()
    assert not done.wait(0.3)  # still held: no stop yet
    stopping.set()
    assert done.wait(2.0)
    thread.join()

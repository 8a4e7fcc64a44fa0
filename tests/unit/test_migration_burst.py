"""The migration write-burst probe against a tiny in-process key-value instance."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.gate.migration_burst import CHECK_ID, MigrationBurstProbe
from harness.timeline import Timeline
from harness.traffic.plan import InstanceTarget
from harness.verdict import FAILED, PASSED


class Store:
    """An instance's data: ``forget`` makes it acknowledge writes it does not keep (a lossy switch-over)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.forget = False


def serve(store: Store) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if not store.forget:
                store.data[self.path] = body
            self._answer(200, b"ok")

        def do_GET(self) -> None:
            value = store.data.get(self.path)
            self._answer(200 if value is not None else 404, value or b"not found")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def instance() -> Iterator[tuple[Store, InstanceTarget]]:
    store = Store()
    server = serve(store)
    yield store, InstanceTarget("vm-1", "uuid-1", "127.0.0.1", server.server_address[1])
    server.shutdown()


def migrate(probe: MigrationBurstProbe, during: float = 0.15, lossy: Store | None = None) -> None:
    with probe.around("live_migrate", ("uuid-1", "compute-1", 30.0), {}):
        time.sleep(during / 2)  # the migration under way (a test double, not product code)
        if lossy is not None:
            lossy.forget = True
            time.sleep(0.02)
            lossy.forget = False
        time.sleep(during / 2)


def events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_clean_migration_passes_and_records_writes_and_placement(
        tmp_path: Path, instance: tuple[Store, InstanceTarget]) -> None:
    _, target = instance
    with Timeline(tmp_path / "t.jsonl") as timeline:
        probe = MigrationBurstProbe(timeline, [target])
        migrate(probe)
        assert probe.around("replace_service", ("h", "s", "1.1", 10), {}).__enter__() is None
    [check] = probe.checks()
    assert check.id == CHECK_ID
    assert check.status == PASSED, check.summary
    recorded = events(tmp_path / "t.jsonl")
    writes = [e for e in recorded if e.get("op") == "write" and e.get("source") == "burst"]
    assert len(writes) > 20
    assert {e["conn"] for e in writes} == {"new", "reused"}
    assert any(e.get("kind") == "placement" and e.get("host") == "compute-1" for e in recorded)
    assert len([e for e in recorded if e.get("op") == "verify"]) == len(writes)


def test_writes_lost_at_switch_over_fail_with_the_lost_keys(tmp_path: Path,
                                                             instance: tuple[Store, InstanceTarget]) -> None:
    store, target = instance
    with Timeline(tmp_path / "t.jsonl") as timeline:
        probe = MigrationBurstProbe(timeline, [target])
        migrate(probe, lossy=store)
    [check] = probe.checks()
    assert check.status == FAILED
    assert "acknowledged ones were not read back" in check.summary
    assert check.evidence[0].error == "HTTP 404 Not Found"


def test_other_operations_and_unwatched_instances_are_left_alone(
        tmp_path: Path, instance: tuple[Store, InstanceTarget]) -> None:
    _, target = instance
    with Timeline(tmp_path / "t.jsonl") as timeline:
        probe = MigrationBurstProbe(timeline, [target])
        with probe.around("live_migrate", ("someone-else", "compute-1", 30.0), {}):
            pass
    assert probe.checks() == []
    assert not [e for e in events(tmp_path / "t.jsonl") if e.get("kind") == "dataplane"]


def test_a_network_host_swap_starts_new_connection_probes_that_run_to_close(
        tmp_path: Path, instance: tuple[Store, InstanceTarget]) -> None:
    _, target = instance
    with Timeline(tmp_path / "t.jsonl") as timeline:
        probe = MigrationBurstProbe(timeline, [target], frozenset({"network-1"}))
        with probe.around("replace_service", ("compute-1", "compute-agent", "1.1", 10.0), {}):
            pass
        assert probe.tails == []  # not a watched host
        with probe.around("replace_service", ("network-1", "network", "1.1", 10.0), {}):
            pass
        deadline = time.monotonic() + 10.0  # the upgrade goes on; the probes keep running
        while (len([e for e in events(tmp_path / "t.jsonl") if e.get("source") == "burst"]) <= 5
               and time.monotonic() < deadline):  # (a bound, not a timing: a loaded machine is slow)
            time.sleep(0.05)
        probe.close()
    tail = [e for e in events(tmp_path / "t.jsonl") if e.get("source") == "burst"]
    assert len(tail) > 5
    assert {(e["conn"], e["op"]) for e in tail} == {("new", "probe")}
    assert probe.checks() == []  # no migration: the SLOs judge these probes

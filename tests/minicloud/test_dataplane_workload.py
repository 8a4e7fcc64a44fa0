"""The workload process on its own: its log, its start-up replay, its migration modes."""
from __future__ import annotations

import http.client
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from minicloud.dataplane import workload_process as wp
from minicloud.workload import decode_records, encode_record

pytestmark = pytest.mark.timeout(60)

Spawn = Callable[..., tuple[str, int, Path]]


def request(address: str, port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(address, port, timeout=10)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start workloads like the hypervisor does; kill them all afterwards."""
    rng = random.SystemRandom()
    address = f"127.{rng.randint(20, 99)}.{rng.randint(1, 254)}.{rng.randint(2, 254)}"
    started: list[int] = []

    def start(uuid: str, port: int = 30001, **options: object) -> tuple[str, int, Path]:
        instance_dir = tmp_path / uuid
        instance_dir.mkdir(exist_ok=True)
        pid = wp.spawn_workload(uuid, address, port, instance_dir, "test-host",
                                incoming=bool(options.get("incoming")))
        started.append(pid)
        wp.wait_healthy(address, port, uuid, pid, timeout=10)
        return address, port, instance_dir

    try:
        yield start
    finally:
        for pid in started:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_log_records_round_trip_and_torn_tail_is_dropped() -> None:
    log = encode_record(b"a", b"1") + encode_record(b"key with\nnewline", b"\x00\xff" * 10)
    records, complete = decode_records(log + b"12 40\npartial")
    assert records == [(b"a", b"1"), (b"key with\nnewline", b"\x00\xff" * 10)]
    assert complete == len(log)


def test_replay_restores_data_and_truncates_a_torn_write(spawn: Spawn, tmp_path: Path) -> None:
    instance_dir = tmp_path / "vm-replay"
    instance_dir.mkdir()
    good = encode_record(b"k1", b"v1") + encode_record(b"k2", b"v2") + encode_record(b"k1", b"v3")
    (instance_dir / "kv.log").write_bytes(good + b"2 5\nk3v")  # killed mid-write
    address, port, _ = spawn("vm-replay")
    assert request(address, port, "GET", "/kv/k1") == (200, b"v3")
    assert request(address, port, "GET", "/kv/k3")[0] == 404
    assert (instance_dir / "kv.log").stat().st_size == len(good)
    assert request(address, port, "PUT", "/kv/k4", b"v4")[0] == 204
    assert decode_records((instance_dir / "kv.log").read_bytes())[0][-1] == (b"k4", b"v4")


def test_workload_inherits_the_environment(spawn: Spawn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLGATE_RUN_ID", "run-dataplane-test")
    address, port, _ = spawn("vm-env")
    pid = int(wp.probe_health(address, port)["pid"])  # type: ignore[index, arg-type]
    assert b"ROLLGATE_RUN_ID=run-dataplane-test" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert os.getsid(pid) == pid  # its own session: signals to the hypervisor's group miss it


def test_hold_parks_requests_until_resume(spawn: Spawn) -> None:
    address, port, _ = spawn("vm-hold")
    assert request(address, port, "POST", "/_migration/hold")[0] == 200
    answers: list[tuple[int, bytes]] = []
    writer = threading.Thread(target=lambda: answers.append(request(address, port, "PUT", "/kv/x", b"1")))
    writer.start()
    writer.join(0.3)  # the parked request must still be unanswered after this
    assert writer.is_alive()
    assert answers == []
    assert request(address, port, "POST", "/_migration/resume")[0] == 200
    writer.join(5)
    assert answers == [(204, b"")]
    assert request(address, port, "GET", "/kv/x") == (200, b"1")


def test_forward_proxies_to_the_destination_and_exits(spawn: Spawn) -> None:
    address, port, _ = spawn("vm-src", 30001)
    _, dest_port, _ = spawn("vm-dst", 30002, incoming=True)
    source_pid = int(wp.probe_health(address, port)["pid"])  # type: ignore[index, arg-type]
    assert request(address, port, "PUT", "/kv/a", b"1")[0] == 204
    status, log = request(address, port, "GET", "/_migration/log?offset=0")
    assert status == 200
    assert decode_records(log)[0] == [(b"a", b"1")]
    assert request(address, dest_port, "POST", "/_migration/append?offset=1", log)[0] == 409
    assert request(address, dest_port, "POST", "/_migration/append?offset=0", log)[0] == 200
    assert request(address, port, "POST", "/_migration/hold")[0] == 200
    assert request(address, dest_port, "POST", f"/_migration/activate?end={len(log)}")[0] == 200
    assert request(address, port, "POST", f"/_migration/forward?target={address}:{dest_port}")[0] == 200
    assert request(address, port, "PUT", "/kv/b", b"2")[0] == 204  # answered by the destination
    assert request(address, dest_port, "GET", "/kv/b") == (200, b"2")
    assert request(address, dest_port, "GET", "/kv/a") == (200, b"1")
    # Watch the pid, not /health: a probe is a connection, and the source waits
    # for its connections to be gone (or for its 5 s linger bound) before it exits.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and wp.pid_alive(source_pid):
        time.sleep(0.05)
    assert not wp.pid_alive(source_pid)  # the source exited
    assert wp.probe_health(address, port, timeout=0.5) is None  # and nothing listens on its port


def test_ten_workloads_fit_in_about_100_mib(spawn: Spawn) -> None:
    wp.precompile_workload()
    pids = []
    for index in range(10):
        address, port, _ = spawn(f"vm-{index}", 30100 + index)
        request(address, port, "PUT", "/kv/k", b"v")
        pids.append(int(wp.probe_health(address, port)["pid"]))  # type: ignore[index, arg-type]
    total_kib = sum(int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])
                    for pid in pids)
    print(f"\n10 workloads: {total_kib / 1024:.1f} MiB RSS in total")
    assert total_kib / 1024 < 130  # ~100 MiB target; the bound leaves room for other Pythons

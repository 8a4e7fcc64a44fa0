"""The samplers' raw-socket HTTP client against real sockets on 127.0.0.1."""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from harness.checks.samples import numbered_events
from harness.timeline import Timeline
from harness.traffic.probe import NEW, REUSED, HttpProbe, RequestRecorder

pytestmark = pytest.mark.integration
Reply = Callable[[bytes], bytes | None]


@pytest.fixture
def server() -> Iterator[Callable[[Reply], int]]:
    """A one-thread-per-connection TCP server answering each request with ``reply(request)``."""
    listeners: list[socket.socket] = []
    accepted: list[int] = []

    def start(reply: Reply) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve_connection(conn: socket.socket) -> None:
            with conn:
                while True:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        data += chunk
                    answer = reply(data)
                    if answer is None:
                        return  # hang up without answering
                    conn.sendall(answer)

        def accept() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                accepted.append(1)
                threading.Thread(target=serve_connection, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return int(listener.getsockname()[1])

    start.accepted = accepted  # type: ignore[attr-defined]
    yield start
    for listener in listeners:
        listener.close()


def ok_reply(_: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Openstack-Request-Id: req-1\r\n\r\nhi"


def test_reused_connection_is_kept_and_new_is_not(server: Callable[[Reply], int]) -> None:
    port = server(ok_reply)
    reused = HttpProbe("127.0.0.1", port, REUSED, 1.0)
    results = [reused.request("GET", "/health") for _ in range(3)]
    assert [(r.ok, r.status, r.body, r.request_id) for r in results] == [(True, 200, b"hi", "req-1")] * 3
    assert len(server.accepted) == 1  # type: ignore[attr-defined]
    fresh = HttpProbe("127.0.0.1", port, NEW, 1.0)
    assert all(fresh.request("GET", "/").ok for _ in range(2))
    assert len(server.accepted) == 3  # type: ignore[attr-defined]
    assert all(r.end >= r.start for r in results)


def test_errors_are_outcomes_with_stable_text(server: Callable[[Reply], int]) -> None:
    not_found = server(lambda _: b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!")
    missing = HttpProbe("127.0.0.1", not_found, REUSED, 1.0).request("GET", "/kv/x")
    assert missing.error == "HTTP 404 Not Found"
    hang_up = server(lambda _: None)
    result = HttpProbe("127.0.0.1", hang_up, REUSED, 1.0).request("GET", "/")
    assert result.error == "RemoteDisconnected: Remote end closed connection without response"
    silent = server(lambda _: b"")  # accepts and never answers
    result = HttpProbe("127.0.0.1", silent, NEW, 0.2).request("GET", "/")
    assert result.error == "TimeoutError: timed out"
    assert 0.19 <= result.end - result.start < 0.5
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    refused = HttpProbe("127.0.0.1", port, NEW, 1.0).request("GET", "/")
    assert refused.error is not None
    assert refused.error.startswith("ConnectionRefusedError")


def test_chunked_and_put_bodies(server: Callable[[Reply], int]) -> None:
    seen: list[bytes] = []

    def reply(request: bytes) -> bytes:
        seen.append(request)
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"

    port = server(reply)
    probe = HttpProbe("127.0.0.1", port, REUSED, 1.0)
    first = probe.request("GET", "/")
    assert first.body == b"abcde"
    assert probe.request("GET", "/").body == b"abcde"  # the connection stayed in sync


def test_recorder_writes_one_event_per_request(tmp_path: object, server: Callable[[Reply], int]) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "timeline.jsonl"
    port = server(ok_reply)
    seen: list[str] = []
    with Timeline(path) as timeline:
        recorder = RequestRecorder(timeline, lambda kind, name, result: seen.append(name))
        result = HttpProbe("127.0.0.1", port, NEW, 1.0).request("GET", "/health")
        recorder.record(result, kind="dataplane", target="vm-1", conn=NEW, source="sampler", op="probe")
        recorder.record(result, kind="dataplane", target="vm-1", conn=NEW, source="user", op="read",
                        key="k", ok=False, error="read back b'x', wrote b'y'")
    events = [e for _, e in numbered_events(path)][1:]
    assert events[0]["ok"] is True
    assert events[0]["request_id"] == "req-1"
    assert "error" not in events[0]
    assert events[1]["ok"] is False
    assert events[1]["error"] == "read back b'x', wrote b'y'"
    assert events[1]["key"] == "k"
    assert seen == ["vm-1/new", "vm-1/new"]

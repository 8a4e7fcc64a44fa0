"""A minimal HTTP client for samplers and data-plane users, and the event it records.

Raw sockets rather than requests or http.client: a fraction of the CPU per
request (the samplers fire hundreds per second), exact control of new versus
reused connections, and unchanged behaviour under gevent's monkey-patching
(the Locust process) and without it (the harness's final read-back).

Error text is normalised (``HTTP 503 Service Unavailable``, ``TimeoutError:
timed out``) without request ids or timings, because outage intervals split
when the error text changes.
"""
from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.timeline import Timeline

NEW = "new"
REUSED = "reused"
REQUEST_ID_HEADERS = ("x-openstack-request-id", "x-compute-request-id", "x-request-id")


@dataclass(frozen=True)
class ProbeResult:
    """What one request gave: timing on the monotonic clock, outcome, body."""

    start: float
    end: float
    ok: bool
    status: int | None
    error: str | None
    request_id: str | None
    body: bytes


def describe_error(exc: BaseException) -> str:
    """Stable error text: the exception type and message, nothing per request."""
    if isinstance(exc, socket.timeout | TimeoutError):
        return "TimeoutError: timed out"
    message = str(exc) or exc.__class__.__doc__ or ""
    return f"{type(exc).__name__}: {message.strip()}"


class RemoteDisconnected(ConnectionError):
    """The server closed the connection before a complete response (http.client's name)."""


class HttpProbe:
    """Requests to one host:port, on a new connection each time or one reused connection.

    A raw-socket HTTP/1.1 client: a sampler fires hundreds of requests a second
    and http.client costs ~6x the CPU per request (its header parsing), which
    would blow the harness's CPU budget. Responses are read by Content-Length
    (or chunked, or to the close). A reused connection that fails is closed and
    reopened on the next request; the stream stays "reused", as a pooled client
    would see it.
    """

    def __init__(self, host: str, port: int, conn: str, timeout_s: float) -> None:
        if conn not in (NEW, REUSED):
            raise ValueError(f"connection kind must be {NEW!r} or {REUSED!r}, got {conn!r}")
        self.host = host
        self.port = port
        self.conn = conn
        self.timeout_s = timeout_s
        self._socket: socket.socket | None = None
        self._buffer = b""
        self._stale_close = False
        self._host_header = f"Host: {host}:{port}\r\n"

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._buffer = b""

    def _connected(self, deadline: float) -> socket.socket:
        if self._socket is None:
            timeout = max(deadline - time.monotonic(), 1e-3)
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socket = sock
        return self._socket

    def _fill(self, sock: socket.socket, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            raise RemoteDisconnected("Remote end closed connection without response")
        self._buffer += chunk

    def _read_until(self, sock: socket.socket, marker: bytes, deadline: float) -> bytes:
        while marker not in self._buffer:
            self._fill(sock, deadline)
        line, _, self._buffer = self._buffer.partition(marker)
        return line

    def _read_exactly(self, sock: socket.socket, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._fill(sock, deadline)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _read_body(self, sock: socket.socket, headers: dict[str, str], deadline: float) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._read_until(sock, b"\r\n", deadline).split(b";")[0], 16)
                if size == 0:
                    self._read_until(sock, b"\r\n", deadline)  # trailers end (none expected)
                    return body
                body += self._read_exactly(sock, size, deadline)
                self._read_exactly(sock, 2, deadline)
        if "content-length" in headers:
            return self._read_exactly(sock, int(headers["content-length"]), deadline)
        try:  # no length: the body runs to the close
            while True:
                self._fill(sock, deadline)
        except RemoteDisconnected:
            body, self._buffer = self._buffer, b""
            headers["connection"] = "close"
            return body

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> ProbeResult:
        """Send one request; never raises for network or HTTP errors (they are outcomes).

        A pooled connection the server closed while it sat in the pool (closed
        before a single byte of the answer) is retried once on a fresh one, as
        every pooled client does (urllib3, http.client's callers): that is the
        keep-alive race, not an outage. A fresh connection failing is final.
        """
        start = time.monotonic()
        stale = self._socket is not None
        result = self._request(start, method, path, body, headers)
        if (stale and not result.ok and result.status is None and self._stale_close
                and time.monotonic() < start + self.timeout_s):
            retried = self._request(start, method, path, body, headers)
            return retried
        return result

    def _request(self, start: float, method: str, path: str, body: bytes | None,
                 headers: dict[str, str] | None) -> ProbeResult:
        self._stale_close = False
        deadline = start + self.timeout_s
        payload = body or b""
        head = [f"{method} {path} HTTP/1.1\r\n", self._host_header]
        if payload or method in ("PUT", "POST", "PATCH"):
            head.append(f"Content-Length: {len(payload)}\r\n")
        if self.conn == NEW:
            head.append("Connection: close\r\n")
        head.extend(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        head.append("\r\n")
        try:
            sock = self._connected(deadline)
            sock.settimeout(max(deadline - time.monotonic(), 1e-3))
            sock.sendall("".join(head).encode("latin-1") + payload)
            status_line, *header_lines = self._read_until(sock, b"\r\n\r\n", deadline).decode(
                "latin-1").split("\r\n")
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise ConnectionError(f"malformed status line {status_line[:40]!r}")
            status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
            response_headers: dict[str, str] = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                response_headers[name.strip().lower()] = value.strip()
            no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
            data = b"" if no_body else self._read_body(sock, response_headers, deadline)
            end = time.monotonic()
        except (OSError, ValueError) as exc:
            end = time.monotonic()
            self._stale_close = (isinstance(exc, RemoteDisconnected | ConnectionResetError | BrokenPipeError)
                                 and not self._buffer)
            self.close()
            return ProbeResult(start, end, False, None, describe_error(exc), None, b"")
        request_id = next((response_headers[h] for h in REQUEST_ID_HEADERS if h in response_headers), None)
        if self.conn == NEW or response_headers.get("connection", "").lower() == "close":
            self.close()
        if status >= 400:
            error = f"HTTP {status} {reason}".rstrip()
            return ProbeResult(start, end, False, status, error, request_id, data)
        return ProbeResult(start, end, True, status, None, request_id, data)


StatsHook = Callable[[str, str, ProbeResult], None]


class RequestRecorder:
    """Turns request outcomes into timeline events (and, in Locust, into its stats)."""

    def __init__(self, timeline: Timeline, stats_hook: StatsHook | None = None) -> None:
        self.timeline = timeline
        self.stats_hook = stats_hook

    def record(self, result: ProbeResult, *, kind: str, target: str, conn: str, source: str, op: str,
               key: str | None = None, error: str | None = None, ok: bool | None = None) -> None:
        """Append one request event; ``ok``/``error`` override the HTTP outcome (e.g. a bad read-back)."""
        succeeded = result.ok if ok is None else ok
        event: dict[str, Any] = {
            "t": result.start, "end": result.end, "kind": kind, "target": target, "conn": conn,
            "source": source, "op": op, "ok": succeeded,
            "latency": round(result.end - result.start, 6),
        }
        if not succeeded:
            event["error"] = error or result.error or "unknown error"
        if result.status is not None:
            event["status"] = result.status
        if result.request_id:
            event["request_id"] = result.request_id
        if key is not None:
            event["key"] = key
        self.timeline.emit(event)
        if self.stats_hook is not None:
            self.stats_hook(f"{kind}:{op}", f"{target}/{conn}", result)

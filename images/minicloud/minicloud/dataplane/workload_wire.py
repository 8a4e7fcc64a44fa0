"""HTTP/1.1 on raw ``_socket`` for the workload process: parse, answer, proxy.

Part of the workload, kept apart only for size. Same rule as the workload:
stdlib C modules only (``_socket``; no ``socket``, ``http``, ``json``), since
every import is paid once per instance.
"""
from __future__ import annotations

import _socket
import time

MAX_HEADER_LINES = 100
MAX_BODY = 64 * 1024 * 1024  # a migration's log chunk is one body


class HTTPMessage:
    """A parsed request or response: first line, lower-cased headers, body."""

    def __init__(self, first_line: str, headers: dict[str, str], body: bytes) -> None:
        self.first_line = first_line
        self.headers = headers
        self.body = body


class SocketReader:
    """Buffered ``readline``/``read`` over a raw socket.

    The ``socket`` module (and ``signal``) pull in ``enum`` and ``selectors``:
    ~1.5 MB per instance. The C modules ``_socket``/``_signal`` plus this class
    do the same job.
    """

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def readline(self, limit: int) -> bytes:
        while True:
            newline = self.buffer.find(b"\n", 0, limit)
            if newline >= 0 or len(self.buffer) >= limit:
                cut = newline + 1 if newline >= 0 else limit
                line, self.buffer = self.buffer[:cut], self.buffer[cut:]
                return line
            if not self._fill():
                line, self.buffer = self.buffer, b""
                return line

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size and self._fill():
            pass
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def connect(host: str, port: int, timeout: float) -> _socket.socket:
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def read_message(stream: SocketReader) -> HTTPMessage | None:
    """Read one HTTP/1.1 message with a Content-Length body; None on a clean EOF."""
    readline = stream.readline
    line = readline(65537)
    while line in (b"\r\n", b"\n"):  # tolerate stray CRLF between requests
        line = readline(65537)
    if not line:
        return None
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        header = readline(65537)
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    if length > MAX_BODY:
        raise ValueError("body too large")
    body = stream.read(length) if length else b""
    if len(body) != length:
        return None
    return HTTPMessage(line.decode("latin-1").strip(), headers, body)


REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 502: "Bad Gateway",
           503: "Service Unavailable"}


def forward(target: str, method: str, path: str, headers: dict[str, str], body: bytes,
            deadline: float) -> HTTPMessage:
    """Proxy one request to the destination workload (retried until ``deadline``)."""
    host, _, port = target.rpartition(":")
    head = (f"{method} {path} HTTP/1.1\r\nHost: {target}\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: {headers.get('content-type', 'application/octet-stream')}\r\n"
            "Connection: close\r\n\r\n").encode()
    while True:
        try:
            upstream = connect(host, int(port), timeout=10)
            try:
                upstream.sendall(head + body)
                reply = read_message(SocketReader(upstream))
            finally:
                upstream.close()
            if reply is not None:
                return reply
            error = "destination closed the connection"
        except OSError as exc:
            error = str(exc)
        if time.monotonic() > deadline:
            raise OSError(error)
        time.sleep(0.02)  # destination momentarily unreachable: poll until the deadline

"""A small threaded HTTP server with routing, JSON helpers and graceful shutdown.

Graceful shutdown (the seed's "services can be shut down without interrupting
requests in process"): on SIGTERM the listening socket is closed first (new
connections are refused, never reset), keep-alive connections are told to close
after their current response, and every request already being served runs to
completion, bounded by ``shutdown_timeout``.
"""
from __future__ import annotations

import json
import logging
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from minicloud import debug_hold

LOG = logging.getLogger("minicloud.web")


class HTTPError(Exception):
    """Raise from a handler to answer with an error status and JSON body."""

    def __init__(self, status: int, message: str, kind: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind or _ERROR_KINDS.get(status, "error")
        self.headers = headers or {}


_ERROR_KINDS = {400: "badRequest", 401: "unauthorized", 403: "forbidden",
                404: "itemNotFound", 406: "notAcceptable", 409: "conflictingRequest",
                500: "computeFault", 503: "serviceUnavailable"}


class Request:
    def __init__(self, handler: BaseHTTPRequestHandler, params: dict[str, str]) -> None:
        self.handler = handler
        self.method = handler.command
        split = urlsplit(handler.path)
        self.path = split.path
        self.query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        self.query_all = parse_qs(split.query)
        self.params = params
        self.headers = handler.headers
        length = int(handler.headers.get("Content-Length") or 0)
        self.body = handler.rfile.read(length) if length else b""

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as exc:
            raise HTTPError(400, f"malformed JSON body: {exc.msg}") from None


class Response:
    def __init__(self, status: int = 200, body: Any = None,
                 headers: dict[str, str] | None = None, raw: bytes | None = None,
                 content_type: str = "application/json") -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.raw = raw
        self.content_type = content_type

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return json.dumps(self.body).encode()


Handler = Callable[[Request], "Response | dict[str, Any] | list[Any] | None"]


class Router:
    """Routes ``(METHOD, /path/{param})`` to handlers."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/")) + "/?$"
        self._routes.append((method, re.compile(regex), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorator(fn: Handler) -> Handler:
            self.add(method, pattern, fn)
            return fn
        return decorator

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed = False
        for m, regex, handler in self._routes:
            found = regex.match(path)
            if found:
                if m == method:
                    return handler, found.groupdict()
                allowed = True
        if allowed:
            raise HTTPError(405, f"method {method} not allowed on {path}", "methodNotAllowed")
        raise HTTPError(404, f"no such resource: {path}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle's
        # algorithm and the client's delayed ACK add ~40 ms to every response
        # on a reused connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        server = self.server
        server.enter()
        try:
            try:
                handler, params = server.router.match(self.command, urlsplit(self.path).path)
                request = Request(self, params)
                result = handler(request)
                response = result if isinstance(result, Response) else Response(200, result)
            except HTTPError as exc:
                response = Response(exc.status, {exc.kind: {"code": exc.status, "message": exc.message}},
                                    exc.headers)
            except Exception as exc:  # a bug in a handler: answer 500, keep serving
                LOG.exception("unhandled error on %s %s", self.command, self.path)
                message = f"{type(exc).__name__}: {exc}"
                response = Response(500, {"computeFault": {"code": 500, "message": message}})
            self._send(response)
        finally:
            server.leave()

    def _send(self, response: Response) -> None:
        payload = response.encode() if self.command != "HEAD" else b""
        self.send_response(response.status)
        if payload or response.body is not None:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        if self.server.stopping.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that drains in-flight requests on SIGTERM."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], router: Router, shutdown_timeout: float = 10.0) -> None:
        super().__init__(address, _Handler)
        self.router = router
        self.shutdown_timeout = shutdown_timeout
        self.stopping = threading.Event()
        self._inflight = 0
        self._lock = threading.Condition()

    def enter(self) -> None:
        with self._lock:
            self._inflight += 1

    def leave(self) -> None:
        with self._lock:
            self._inflight -= 1
            self._lock.notify_all()

    def drain(self) -> bool:
        """Wait until no request is in flight; False if the bound ran out."""
        deadline = time.monotonic() + self.shutdown_timeout
        with self._lock:
            while self._inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True


def serve(router: Router, bind: str, port: int, name: str, shutdown_timeout: float = 10.0,
          on_stop: Callable[[], None] | None = None,
          ready: Callable[[Server], None] | None = None) -> int:
    """Serve until SIGTERM/SIGINT, then shut down gracefully; return an exit code."""
    try:
        server = Server((bind, port), router, shutdown_timeout)
    except OSError as exc:
        LOG.error("%s: cannot listen on %s:%d: %s", name, bind, port, exc.strerror)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"{name}-http", daemon=True)
    thread.start()
    LOG.info("%s listening on %s:%d", name, bind, port)
    if ready:
        ready(server)
    while not stop.wait(0.2):
        pass
    LOG.info("%s stopping: no new connections, draining in-flight requests", name)
    server.stopping.set()
    debug_hold.STOPPING.set()  # releases the test hooks' stop+ holds
    # Close the listener first: new connections are refused (not reset) and a
    # load balancer or client retries elsewhere.
    server.shutdown()
    try:
        server.socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    server.socket.close()
    drained = server.drain()
    if on_stop:
        on_stop()
    if not drained:
        LOG.warning("%s: requests still in flight after %.1fs; exiting anyway", name, shutdown_timeout)
    LOG.info("%s stopped", name)
    return 0

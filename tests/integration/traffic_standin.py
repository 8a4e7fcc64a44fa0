"""Stand-in servers for the traffic tests: a workload's kv data plane, an API endpoint.

Run as ``python traffic_standin.py kv|api [--forget N]``; binds 127.0.0.1 on a
free port and prints ``ready <port>`` once listening. ``--forget N``
acknowledges the N-th PUT and does not store it: the "acknowledged then lost"
defect the harness must detect. Never imported by the harness.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StandinHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536  # one write per response: no Nagle + delayed-ACK 40 ms stalls
    store: dict[str, bytes] = {}
    lock = threading.Lock()
    puts = 0
    forget: int | None = None
    mode = "kv"

    def log_message(self, *args: object) -> None:  # quiet: the tests read the timeline
        return

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Openstack-Request-Id", "req-standin")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.mode == "api":
            self._answer(200, json.dumps({"version": {"id": "v2.1", "status": "CURRENT"}}).encode())
        elif self.path == "/health":
            self._answer(200, b'{"status": "ok"}')
        elif self.path.startswith("/kv/"):
            with self.lock:
                value = self.store.get(self.path[4:])
            self._answer(200, value) if value is not None else self._answer(404, b"no such key")
        else:
            self._answer(404, b"not found")

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.startswith("/kv/"):
            self._answer(404, b"not found")
            return
        with self.lock:
            type(self).puts += 1
            if self.puts != self.forget:
                self.store[self.path[4:]] = body
        self._answer(204, b"")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client that hung up (a timed-out sampler) is not news


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["kv", "api"])
    parser.add_argument("--forget", type=int, default=None)
    args = parser.parse_args()
    StandinHandler.mode = args.mode
    StandinHandler.forget = args.forget
    server = QuietServer(("127.0.0.1", 0), StandinHandler)
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

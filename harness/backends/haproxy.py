"""HAProxy in front of the controllers' APIs, and its runtime API for draining.

The same configuration serves the process backend (haproxy from Debian's
package, run as a tagged process on the lb host's address) and the Docker
backend (the haproxy image). Draining an API node for an upgrade: set the
server to ``drain`` (no new connections), wait until its current sessions
reach zero, then ``maint``; bring it back with ``ready``.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import DeployError

#: frontend name -> port. The lb fronts the public APIs and, like a message
#: bus, the controllers' RPC endpoints, so any controller can be taken out.
FRONTENDS = {
    "identity": 5000,
    "image": 9292,
    "compute": 8774,
    "conductor": 8780,
    "scheduler": 8781,
}
SERVICE_OF_FRONTEND = {"identity": "identity", "image": "image", "compute": "compute-api",
                       "conductor": "conductor", "scheduler": "scheduler"}


@dataclass(frozen=True)
class Backend:
    name: str  # the controller's host name
    address: str


def render_config(bind: str, backends: list[Backend], socket_path: str, pidfile: str | None = None) -> str:
    """haproxy.cfg for ``bind`` balancing every frontend over ``backends``."""
    lines = [
        "global",
        f"    stats socket {socket_path} mode 600 level admin expose-fd listeners",
        "    stats timeout 10s",
        "    maxconn 4096",
    ]
    if pidfile:
        lines.append(f"    pidfile {pidfile}")
    lines += [
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        # The load balancer is the harness's, not the cloud's: it must never
        # close an idle client connection itself during a run. With a 10 s
        # keep-alive timeout a Locust user idle for exactly 10 s sent its
        # request as HAProxy closed the connection (RemoteDisconnected on a
        # reused connection): a failure of the harness's plumbing, not of the
        # upgrade. Idle client connections now outlive any run.
        "    timeout client 1h",
        "    timeout server 60s",
        "    timeout http-keep-alive 1h",
        "    option http-keep-alive",
        # A connection refused by a backend being stopped is retried on
        # another one; requests already sent to it are not (that is the
        # drain's job).
        "    retries 2",
        "    option redispatch",
        # A backend being restarted closes its idle keep-alive connections; a
        # request HAProxy sent on one gets no response at all (the server
        # never saw it). Retry exactly those, elsewhere, instead of a 502.
        "    retry-on conn-failure empty-response",
        "    default-server inter 500ms fall 2 rise 1",
    ]
    for name, port in FRONTENDS.items():
        lines += [
            f"frontend fe_{name}",
            f"    bind {bind}:{port}",
            f"    default_backend be_{name}",
            f"backend be_{name}",
            "    balance roundrobin",
            "    option httpchk GET /healthz",
        ]
        lines += [f"    server {b.name} {b.address}:{port} check" for b in backends]
    return "\n".join(lines) + "\n"


class RuntimeAPI:
    """HAProxy's runtime API over its admin socket."""

    def __init__(self, socket_path: str | Path) -> None:
        self.socket_path = str(socket_path)

    def command(self, command: str, timeout: float = 5.0) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(self.socket_path)
            except OSError as exc:
                raise DeployError(f"haproxy runtime API at {self.socket_path}: {exc}") from exc
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode()

    def stats(self) -> list[dict[str, str]]:
        text = self.command("show stat")
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines or not lines[0].startswith("# "):
            raise DeployError(f"unexpected 'show stat' answer: {text[:200]!r}")
        header = lines[0][2:].split(",")
        return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]

    def set_state(self, server: str, state: str) -> None:
        """``state`` is ready, drain or maint, for ``server`` in every backend."""
        for name in FRONTENDS:
            answer = self.command(f"set server be_{name}/{server} state {state}").strip()
            if answer:
                raise DeployError(f"haproxy: set server be_{name}/{server} state {state}: {answer}")

    def sessions(self, server: str) -> int:
        """Current sessions of ``server`` summed over every backend."""
        return sum(int(row.get("scur") or 0) for row in self.stats() if row.get("svname") == server)

    def status(self, server: str) -> dict[str, str]:
        return {row["pxname"]: row.get("status", "") for row in self.stats() if row.get("svname") == server}

    def drain(self, server: str, timeout: float = 30.0) -> float:
        """No new connections to ``server``; wait for its sessions to end; then maint.

        Returns how long the drain took. Raises DeployError at ``timeout``.
        """
        started = time.monotonic()
        self.set_state(server, "drain")
        deadline = started + timeout
        while True:
            left = self.sessions(server)
            if left == 0:
                break
            if time.monotonic() >= deadline:
                raise DeployError(f"haproxy: {server} still has {left} sessions after {timeout:.0f}s")
            time.sleep(0.02)
        self.set_state(server, "maint")
        return time.monotonic() - started

    def undrain(self, server: str) -> None:
        self.set_state(server, "ready")

"""The openstack profile's load balancer, as the upgrade sees it: one HAProxy server per
release of each fronted service (``openstack.haproxy_config``), driven by name through
HAProxy's runtime API (``harness.backends.haproxy.RuntimeAPI`` on the lb's admin socket).

A swap of an API service: the new release's server is set ``ready`` and waited on
until its own health check says UP; then the old release's server is set ``drain``
(no new connections), its current sessions run out, and it goes to ``maint``,
before its container is stopped.
"""
from __future__ import annotations

import time
from typing import Any, Protocol

from harness.clouds import openstack as profile
from harness.executor.ops import OperationFailed

#: fronted service -> its frontend (HAProxy backend ``be_<frontend>``)
FRONTED = {f.service: f.name for f in (*profile.FRONTENDS, *profile.INTERNAL_FRONTENDS)}
POLL = 0.2


class Runtime(Protocol):
    """What is used of ``harness.backends.haproxy.RuntimeAPI``."""

    def command(self, command: str, timeout: float = 5.0) -> str: ...

    def stats(self) -> list[dict[str, str]]: ...


def server_of(service: str, release: str) -> tuple[str, str]:
    """(HAProxy backend, server) of ``service``'s container at ``release``."""
    alias = profile.container_spec("controller", service, release).alias
    return f"be_{FRONTED[service]}", profile.release_alias(alias, release)


class ReleaseServers:
    """Set, watch and drain the per-release servers of the fronted services."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def row(self, service: str, release: str) -> dict[str, str]:
        backend, server = server_of(service, release)
        for row in self.runtime.stats():
            if row.get("pxname") == backend and row.get("svname") == server:
                return row
        raise OperationFailed("load-balancer", f"haproxy has no server {backend}/{server}")

    def set_state(self, service: str, release: str, state: str) -> None:
        backend, server = server_of(service, release)
        answer = self.runtime.command(f"set server {backend}/{server} state {state}").strip()
        if answer:
            raise OperationFailed("load-balancer", f"set server {backend}/{server} state {state}: {answer}")

    def wait_up(self, service: str, release: str, timeout: float,
                abort: Any = None) -> float:
        """Make the server ready and wait until its health check passes; seconds waited.
        ``abort()`` returns why waiting longer is pointless (its container exited)."""
        started = time.monotonic()
        self.set_state(service, release, "ready")
        while True:
            status = self.row(service, release).get("status", "")
            if status.startswith("UP"):
                return time.monotonic() - started
            reason = abort() if abort else None
            if reason or time.monotonic() - started >= timeout:
                backend, server = server_of(service, release)
                raise OperationFailed("load-balancer", reason or f"{backend}/{server} not UP after "
                                      f"{timeout:g}s (haproxy status {status!r})")
            time.sleep(POLL)

    def drain(self, service: str, release: str, timeout: float) -> float:
        """No new connections to the server; wait for its sessions to end; maint. Seconds taken."""
        started = time.monotonic()
        self.set_state(service, release, "drain")
        while True:
            left = int(self.row(service, release).get("scur") or 0)
            if left == 0:
                break
            if time.monotonic() - started >= timeout:
                backend, server = server_of(service, release)
                raise OperationFailed("drain-api", f"{backend}/{server} still has {left} sessions "
                                      f"after {timeout:g}s")
            time.sleep(POLL / 4)
        self.set_state(service, release, "maint")
        return time.monotonic() - started

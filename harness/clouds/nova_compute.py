"""Nova-style compute operations every cloud here shares (minicloud speaks Nova's API too).

``MinicloudOps`` and ``OpenStackOps`` both drive computes through openstacksdk as
the admin: find a host's compute service, disable and enable it, list servers,
live-migrate one off a host and wait until the migration settled. That logic
lives here once, so a fix lands in both clouds. Where the clouds really differ
it is a parameter, named in ``ComputeStyle``, never averaged away: the compute
service's binary, how long a status change may take, how often a migrating
server is re-read and how long it may idle on its source, whether a server
being deleted counts as gone, and how a finished migration is proven (the
data path on minicloud, the Placement allocation on OpenStack).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.executor.ops import OperationFailed
from harness.waiting import in_a_row, wait_until

#: poll(operation, check, timeout): the cloud's own wait (its interval, what it does on an error)
Poll = Callable[[str, Callable[[], str | None], float], None]


def poll_until(operation: str, check: Callable[[], str | None], timeout: float, *, interval: float,
               evidence: Callable[[], str] = lambda: "", on_error: Callable[[], None] | None = None,
               passthrough: tuple[type[Exception], ...] = ()) -> None:
    """Poll ``check`` (None = done, else what is still wrong) every ``interval`` until ``timeout``,
    then OperationFailed with the last problem and ``evidence()``.

    An exception from ``check`` is a problem to report if it lasts (``on_error`` runs, e.g. to
    drop a connection), except the ``passthrough`` ones, which end the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            problem = check()
        except passthrough:
            raise
        except Exception as exc:  # keep polling; report the last error
            problem = f"{type(exc).__name__}: {exc}"
            if on_error is not None:
                on_error()
        if problem is None:
            return
        if time.monotonic() >= deadline:
            raise OperationFailed(operation, f"not done after {timeout:g}s: {problem}", evidence())
        time.sleep(interval)


def wait_compute_api(conn: Any, timeout: float, interval: float) -> None:
    """Until the public compute API answers 5 times in a row (the load balancer has every
    backend back, not just one), after the API-down phase."""
    wait_until(in_a_row(lambda: list(conn.compute.flavors()) or True, 5), timeout=timeout,
               interval=interval, what="the compute API after the API-down phase")


class AdminConnection:
    """The admin openstacksdk connection of a cloud's ops: made on first use (``self._connect``,
    by default ``harness.deploy.connect(self.state)``), dropped after a failure and made again."""

    state: Any
    _connect: Callable[[], Any]
    _conn: Any = None

    def _default_connect(self) -> Any:
        from harness.deploy import connect

        return connect(self.state)

    def conn(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def reset_conn(self) -> None:
        self._conn = None


@dataclass(frozen=True)
class ComputeStyle:
    """How one cloud's compute API differs, kept explicit."""

    binary: str  # the compute service's binary in os-services
    listing: str  # where that binary is listed, for the error that it is missing
    change_timeout: float  # seconds for a disable/enable to show in os-services
    settle_poll: float  # seconds between re-reads of a migrating server
    settle_grace: float  # seconds a server may idle on its source after the request ("not started yet")
    #: a server in status DELETED or task ``deleting`` counts as gone (not only a 404)
    gone_when_deleting: bool
    migration_attempts: int = 3  # a migration that ended back on its source is retried this often


class NovaCompute:
    """A cloud's computes through Nova's API: ``conn()`` is the admin openstacksdk connection."""

    def __init__(self, conn: Callable[[], Any], style: ComputeStyle, poll: Poll,
                 verify_moved: Callable[[Any, str], str], log: logging.Logger,
                 migration_evidence: Callable[[str], str] = lambda instance: "") -> None:
        self.conn = conn
        self.style = style
        self.poll = poll
        self.verify_moved = verify_moved  # (server, source) -> its new host, once proven there
        self.log = log
        self.migration_evidence = migration_evidence

    def service(self, host: str) -> Any:
        """The compute service of ``host`` in os-services (OperationFailed if it has none)."""
        for service in self.conn().compute.services():
            if service.host == host and service.binary == self.style.binary:
                return service
        raise OperationFailed("compute-service", f"{host} has no {self.style.binary} in {self.style.listing}")

    def disable(self, host: str, reason: str) -> None:
        self._set_status(host, "disabled", lambda s: self.conn().compute.disable_service(
            s, disabled_reason=reason))

    def enable(self, host: str) -> None:
        self._set_status(host, "enabled", self._enable_service)

    def _enable_service(self, service: Any) -> None:
        self.conn().compute.enable_service(service)

    def _set_status(self, host: str, status: str, change: Callable[[Any], object]) -> None:
        if self.service(host).status != status:
            change(self.service(host))

        def settled() -> str | None:
            seen = self.service(host).status
            return None if seen == status else f"{host}/{self.style.binary} is {seen}"

        self.poll(f"{status[:-1]}-compute", settled, self.style.change_timeout)

    def servers(self, host: str | None = None) -> list[Any]:
        """Servers of every project (on ``host``), filtered here: the API's ``host`` filter is
        not something every cloud honours the same way, the server's own host attribute is."""
        return [s for s in self.conn().compute.servers(details=True, all_projects=True)
                if s.status != "DELETED" and (host is None or s.compute_host == host)]

    def _gone(self, server: Any) -> bool:
        return server is None or (self.style.gone_when_deleting and (
            server.status == "DELETED" or server.task_state == "deleting"))

    def live_migrate(self, instance: str, source: str, timeout: float) -> str:
        """Move ``instance`` off ``source`` (retried when it ends back there); its new host, or
        ``(deleted)`` when its owner deleted it meanwhile (traffic creates and deletes servers)."""
        from openstack import exceptions as sdk_exceptions

        compute = self.conn().compute
        deadline = time.monotonic() + timeout
        for attempt in range(1, self.style.migration_attempts + 1):
            try:
                server = compute.get_server(instance)
            except sdk_exceptions.NotFoundException:
                server = None
            if self._gone(server):
                self.log.info("instance %s was deleted; nothing to migrate off %s", instance, source)
                return "(deleted)"
            if server.compute_host != source and server.status == "ACTIVE" and not server.task_state:
                return self.verify_moved(server, source)  # done (before a crash, or just now)
            if server.status == "ERROR":
                break
            if server.status == "ACTIVE" and not server.task_state:
                try:
                    compute.live_migrate_server(server, host=None, block_migration="auto")
                except sdk_exceptions.ConflictException:
                    pass  # a task runs on it already: wait for that one
            settled = self._wait_settled(instance, source, deadline)
            if settled is None:
                self.log.info("instance %s was deleted while migrating off %s", instance, source)
                return "(deleted)"
            if settled.compute_host != source and settled.status == "ACTIVE":
                return self.verify_moved(settled, source)
            if settled.status == "ERROR" or time.monotonic() >= deadline:
                break
            self.log.warning("live migration %d of %s ended on %s (%s): retrying", attempt, instance,
                             settled.compute_host, settled.status)
        server = compute.get_server(instance)
        raise OperationFailed("live-migrate", f"{instance} still on {server.compute_host} "
                              f"({server.status}, task {server.task_state}) after {timeout:g}s",
                              self.migration_evidence(instance))

    def _wait_settled(self, instance: str, source: str, deadline: float) -> Any:
        """Re-read the server (never the sdk's cached status) until the migration is over; None
        if it was deleted meanwhile.

        Over: ACTIVE elsewhere (moved), ERROR, or ACTIVE on the source with no
        task for a while (the cast is asynchronous, so "no task yet" right
        after the request is not "failed").
        """
        from openstack import exceptions as sdk_exceptions

        compute = self.conn().compute
        started = time.monotonic()
        while True:
            try:
                server = compute.get_server(instance)
            except sdk_exceptions.NotFoundException:  # deleted by its owner meanwhile
                return None
            idle = server.status == "ACTIVE" and not server.task_state
            if (idle and server.compute_host != source) or server.status == "ERROR":
                return server
            waited = time.monotonic() - started
            if (idle and waited > self.style.settle_grace) or time.monotonic() >= deadline:
                return server
            time.sleep(self.style.settle_poll)

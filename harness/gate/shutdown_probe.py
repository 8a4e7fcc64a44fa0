"""Graceful shutdown, tested at every stop: work held in flight while a service stops.

Under everyday traffic (a request a second, each a few milliseconds) nothing
is in flight when a service stops, so a release that drops requests and casts
on SIGTERM passes. This probe puts work in flight on purpose, with minicloud's
test hooks (the gate deploys minicloud with ``"debug_delay": true``):

- ``replace_service(host, "compute-api", ...)``: slow requests
  (``X-Minicloud-Debug-Delay: stop+S``) sent to that compute-api directly, inside
  its handler when the stop begins (the plan drained the host from the load
  balancer already, so direct is the only way in).
- ``replace_service(host, "conductor", ...)``: builds whose conductor cast is
  held by ``host``'s conductor (``X-Minicloud-Debug-Hold: conductor@HOST=stop+S``;
  another conductor runs it at once), booted through the load balancer in
  batches before the conductor's drain until one is held there; the conductor
  must finish it (the server reaches ACTIVE), not drop it.

``stop+S`` holds the work until the service's stop began and ``S`` (``HOLD_S``)
more, so it is in flight at the stop on a machine of any speed. A fixed hold
was a race: on a loaded CI machine the stop came after a 0.5 s hold had ended,
and a conductor that drops its casts passed. A hold the stop never reaches
ends after minicloud's ``STOP_WAIT_S``.

Every held request must answer 2xx; every held build must reach ACTIVE.
The service's log says when its stop began; the summary counts the held work
still running then (work that ended before the stop proves nothing). A
graceful stop costs about one hold per stop. Builds are checked and deleted in
the background.

What is not probed, and why: a compute agent stops after its host was
disabled and emptied (live-migrate policy), so it has no instance work that
could be in flight then; the conductor's held builds cover the cast path. A
``reboot_host`` is a hard stop on the backends (everything of the host is
killed, like a power cycle), so nothing is expected to survive it.
identity and image have no hold hook (they share compute-api's HTTP server).

Only for a cloud whose profile lists the ``shutdown`` probe: the hold headers are
minicloud's test hooks.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from harness import clouds
from harness.gate.probe_api import HOLD_HEADER, PROBE_PREFIX, Answer, ComputeClient
from harness.gate.probes import PROBE_FACTORIES, ProbeContext, StepProbe
from harness.timeline import Timeline
from harness.verdict import Check, Evidence

CHECK_ID = "shutdown.inflight"
#: how long each probe request or cast is held after its service's stop began (short: the
#: default gate must stay fast)
HOLD_S = 0.5
#: how long minicloud holds ``stop+`` work waiting for the stop (minicloud.debug_hold.STOP_WAIT_SECONDS)
STOP_WAIT_S = 5.0
#: slow requests sent to a compute-api just before its stop
REQUESTS_PER_STOP = 2
#: builds booted in the first batch before a conductor stop, in each batch after it, and at most in
#: all, to get one held by that conductor (the load balancer picks the conductor; the hold names
#: the host, so a build that lands elsewhere is not held at all)
FIRST_BATCH = 3
NEXT_BATCH = 2
MAX_BUILDS = 7
#: how long to wait for a batch's builds to show up held in the conductor's log (the cast reaches
#: the conductor before the boot's answer, so a hold shows within milliseconds)
BATCH_SEEN_TIMEOUT = 1.0
#: how long to wait for the held work to show up in the service's log
SEEN_TIMEOUT = 3.0
#: how long a held build may take to reach ACTIVE after its conductor's stop (clean builds on a
#: loaded machine: about 1 s)
BUILD_TIMEOUT = 20.0
#: what a service logs when its stop gave up on work in flight (minicloud.web, conductor, agent)
DROP_MARKERS = ("still in flight", "still running")


@dataclass
class HeldWork:
    """One request or cast held across a stop, and how it ended."""

    kind: str  # "request" | "build"
    service: str  # host/service that was stopping
    route: str  # "direct" | "load balancer"
    sent: float
    ended: float | None = None
    ok: bool | None = None
    detail: str = ""
    server_id: str | None = None
    running_at_stop: bool | None = None
    ended_wall: float | None = None  # None: unknown (no stop seen in the service's log)

    def event(self) -> dict[str, Any]:
        return {"kind": "probe", "probe": "shutdown", "work": self.kind, "service": self.service,
                "route": self.route, "t": self.ended or self.sent, "sent": self.sent, "ok": self.ok,
                "detail": self.detail, "server": self.server_id,
                "running_at_stop": self.running_at_stop}


class CloudAccess:
    """What the probe needs of a minicloud gate cloud (a seam for unit tests)."""

    def __init__(self, cloud: Any) -> None:
        self.cloud = cloud
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            self._token = str(self.cloud.connect().auth_token)
        return self._token

    def public(self) -> ComputeClient:
        return ComputeClient(self.cloud.compute_api_url(), self.token())

    def direct(self, host: str, service: str) -> ComputeClient:
        address, port = self.cloud.backend.service_address(host, service)
        return ComputeClient(f"http://{address}:{port}", self.token())

    def logs(self, host: str, service: str) -> str:
        return str(self.cloud.backend.logs(host, service))

    def hosts_with(self, service: str) -> list[str]:
        return [h.name for h in self.cloud.state.hosts.values() if service in h.services]


def _poll(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


class ShutdownProbe(StepProbe):
    name = "shutdown"

    def __init__(self, access: CloudAccess, timeline: Timeline, hold_s: float = HOLD_S) -> None:
        self.access = access
        self.timeline = timeline
        self.hold_s = hold_s
        self.held: list[HeldWork] = []
        self.notes: list[str] = []
        self.dropped_logs: dict[str, list[str]] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._builds = 0

    def around(self, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> contextlib.AbstractContextManager[None]:
        if operation == "replace_service" and len(args) >= 2:
            host, service = str(args[0]), str(args[1])
            if service == "compute-api":
                return self._slow_requests(host, service)
            if service == "conductor":
                return self._held_builds(host)
        return contextlib.nullcontext()

    # --- requests ----------------------------------------------------------------

    @contextlib.contextmanager
    def _slow_requests(self, host: str, service: str) -> Iterator[None]:
        log_size = len(self.access.logs(host, service))
        client = self.access.direct(host, service)
        records = [HeldWork("request", f"{host}/{service}", "direct", time.monotonic())
                   for _ in range(REQUESTS_PER_STOP)]
        threads = [threading.Thread(target=self._run_request, args=(client, record), daemon=True,
                                    name=f"shutdown-probe-{host}") for record in records]
        for thread in threads:
            thread.start()
        seen = _poll(lambda: self.access.logs(host, service)[log_size:].count("debug delay")
                     >= len(records), SEEN_TIMEOUT)
        if not seen:
            self.notes.append(f"{host}/{service}: the held requests were not all seen in flight "
                              f"within {SEEN_TIMEOUT:g} s")
        try:
            yield
        finally:
            for thread in threads:
                thread.join(self.hold_s + 30.0)
            text = self._record_drops(host, service, log_size)
            stopped = stop_began(text)
            for record in records:
                if stopped is not None and record.ended_wall is not None:
                    record.running_at_stop = record.ended_wall > stopped
            with self._lock:
                self.held += records
            for record in records:
                self.timeline.emit(record.event())

    def _run_request(self, client: ComputeClient, record: HeldWork) -> None:
        answer = client.slow_list(f"stop+{self.hold_s:g}")
        record.ended, record.ended_wall, record.ok = time.monotonic(), time.time(), answer.ok
        record.detail = f"HTTP {answer.status}" if answer.ok else (answer.error or f"HTTP {answer.status}")

    # --- casts --------------------------------------------------------------------

    @contextlib.contextmanager
    def _held_builds(self, host: str) -> Iterator[None]:
        service = "conductor"
        marker = "debug hold"
        before_size = len(self.access.logs(host, service))
        before = self.access.logs(host, service).count(marker)
        client = self.access.public()
        records: list[HeldWork] = []
        while len(records) < MAX_BUILDS:
            for _ in range(NEXT_BATCH if records else FIRST_BATCH):
                records.append(self._boot(client, host))
            if _poll(lambda: self.access.logs(host, service).count(marker) > before, BATCH_SEEN_TIMEOUT):
                break
        else:
            self.notes.append(f"{host}/{service}: none of {len(records)} held builds reached its "
                              "conductor (the load balancer sent them elsewhere)")
        log_size = len(self.access.logs(host, service))
        try:
            yield
        finally:
            text = self.access.logs(host, service)
            self._record_drops(host, service, log_size)
            held_here = held_casts(text[before_size:])
            stopped = stop_began(text[log_size:])
            for record in records:  # which were held by this conductor, and still running at its stop
                hold_began = held_here.get(record.server_id or "")
                if hold_began is not None and stopped is not None:
                    record.running_at_stop = hold_began <= stopped < hold_began + STOP_WAIT_S
            thread = threading.Thread(target=self._settle_builds, args=(client, records), daemon=True,
                                      name=f"shutdown-probe-builds-{host}")
            thread.start()
            self._threads.append(thread)

    def _boot(self, client: ComputeClient, host: str) -> HeldWork:
        self._builds += 1
        record = HeldWork("build", f"{host}/conductor", "load balancer", time.monotonic())
        answer: Answer = client.boot(f"{PROBE_PREFIX}shutdown-{self._builds}",
                                     {HOLD_HEADER: f"conductor@{host}=stop+{self.hold_s:g}"})
        if answer.ok and isinstance(answer.body, dict):
            record.server_id = str(answer.body["server"]["id"])
        else:
            record.ended, record.ok = time.monotonic(), False
            record.detail = f"the build was refused: {answer.error}"
        return record

    def _settle_builds(self, client: ComputeClient, records: list[HeldWork]) -> None:
        """Wait for each held build to settle, side by side (two lost builds cost one
        ``BUILD_TIMEOUT``, not two), then delete it."""
        threads = [threading.Thread(target=self._settle_build, args=(client, record), daemon=True,
                                    name=f"shutdown-probe-build-{record.server_id}")
                   for record in records if record.server_id is not None]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(3 * BUILD_TIMEOUT + 10.0)
        with self._lock:
            self.held += [record for record in records if record.server_id is None]
        for record in records:
            if record.server_id is None:
                self.timeline.emit(record.event())

    def _settle_build(self, client: ComputeClient, record: HeldWork) -> None:
        def settled(server: dict[str, Any]) -> bool:
            return server.get("status") in ("ACTIVE", "ERROR")

        server_id = str(record.server_id)
        server = client.wait_server(server_id, settled, BUILD_TIMEOUT)
        status = None if server is None else server.get("status")
        record.ended, record.ok = time.monotonic(), status == "ACTIVE"
        fault = (server or {}).get("fault", {}).get("message", "")
        record.detail = f"server {server_id} {status}" + (f": {fault}" if fault else "")
        lost = not record.ok and status == "BUILD"
        if lost:
            record.detail += f" after {BUILD_TIMEOUT:g} s (its build cast was lost)"
        with self._lock:
            self.held.append(record)
        self.timeline.emit(record.event())
        if lost:  # it will not settle: do not wait for it a second time (the run's teardown
            client.delete(server_id)  # removes what the delete leaves)
            return
        left = client.delete_settled(server_id, BUILD_TIMEOUT)
        if left:
            with self._lock:
                self.notes.append(left)

    def _record_drops(self, host: str, service: str, since: int) -> str:
        """The stopped service's own log lines about work it gave up on; returns its log since."""
        text = self.access.logs(host, service)[since:]
        lines = [line for line in text.splitlines() if any(m in line for m in DROP_MARKERS)]
        if lines:
            with self._lock:
                self.dropped_logs.setdefault(f"{host}/{service}", []).extend(lines)
        return text

    # --- judging --------------------------------------------------------------------

    def close(self) -> None:
        for thread in self._threads:
            thread.join(3 * BUILD_TIMEOUT + 20.0)

    def checks(self) -> list[Check]:
        return [judge_inflight(self.held, self.dropped_logs, self.notes)]


def _log_time(line: str) -> float | None:
    """The wall-clock time of a minicloud log line (``2026-12-05 12:34:25,742 INFO ...``)."""
    try:
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    except ValueError:
        return None


def stop_began(log: str) -> float | None:
    """When the service's graceful stop began (its ``stopping`` line), wall clock; None: no stop."""
    for line in log.splitlines():
        if " stopping: " in line:
            return _log_time(line)
    return None


def held_casts(log: str) -> dict[str, float]:
    """instance uuid -> when the service began holding a cast for it (its ``debug hold`` lines)."""
    held: dict[str, float] = {}
    for line in log.splitlines():
        if "debug hold" in line and ", instance " in line:
            began = _log_time(line)
            uuid = line.rsplit(", instance ", 1)[1].rstrip(")").strip()
            if began is not None and uuid not in held:
                held[uuid] = began
    return held


def judge_inflight(held: list[HeldWork], dropped_logs: dict[str, list[str]] | None = None,
                   notes: list[str] | None = None) -> Check:
    """FAIL when any request or cast held across a stop did not complete; cite the services' logs."""
    dropped_logs = dropped_logs or {}
    if not held:
        return Check.skipped(CHECK_ID, "no service with a hold hook was stopped: nothing held in flight")
    failed = [w for w in held if not w.ok]
    requests = sum(1 for w in held if w.kind == "request")
    builds = len(held) - requests
    stops = len({w.service for w in held})
    running = sum(1 for w in held if w.running_at_stop)
    extra = f" ({running} still running when their service's stop began)"
    extra += f"; {'; '.join(notes)}" if notes else ""
    if not failed:
        return Check.passed(CHECK_ID, f"{requests} request(s) and {builds} build cast(s) held in flight "
                                      f"across {stops} stop(s) all completed{extra}")
    evidence = [Evidence(f"{w.kind} held across the stop of {w.service} ({w.route}) did not complete: "
                         f"{w.detail}", window=(w.sent, w.ended or w.sent), target=w.service,
                         error=w.detail, events=(w.event(),)) for w in failed[:10]]
    for service, lines in dropped_logs.items():
        evidence.append(Evidence(f"{service} logged dropped work: {' | '.join(lines[:3])}",
                                 target=service))
    return Check.failed(CHECK_ID, f"{len(failed)} of {len(held)} held request(s)/cast(s) were dropped "
                                  f"by a stopping service ({', '.join(sorted({w.service for w in failed}))})"
                                  f"{extra}", evidence)


def shutdown_probe(context: ProbeContext) -> StepProbe | None:
    """minicloud only: the holds are its test hooks (a profile without the probe gets none)."""
    if not (clouds.profile(context.scenario.cloud).probes("shutdown") and hasattr(context.cloud, "backend")):
        return None
    return ShutdownProbe(CloudAccess(context.cloud), context.timeline)


PROBE_FACTORIES.append(shutdown_probe)

"""Maintenance mode, tested in every disabled window: no new instance lands on a disabled host.

Traffic builds fall into a disabled window only by chance. This probe boots
a few servers in two waves in each window: right after
``disable_compute(host, reason)`` (while the host's instances are still
leaving) and right before ``enable_compute(host)`` (the host emptied: the
first choice of a scheduler that spreads load, so a scheduler that ignores
the disabled flag shows every time, not only when the first wave happened to
run after the host emptied). It asks the compute API, as admin, where each
was scheduled (``OS-EXT-SRV-ATTR:host``); none may be ``host``. The builds
run in the background; the probe waits for their placement before
``enable_compute(host)`` goes on (so each was placed while the host was
disabled), and deletes them as soon as it knows where they went.

Only for a cloud whose profile lists the ``maintenance`` probe (minicloud's). The
probe only uses Nova's public API, but it boots with minicloud's defaults (no
network, its image) and has not been run against OpenStack; list it in the
openstack profile once it has.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness import clouds
from harness.gate.probe_api import PROBE_PREFIX, ComputeClient, server_host
from harness.gate.probes import PROBE_FACTORIES, ProbeContext, StepProbe
from harness.gate.shutdown_probe import CloudAccess
from harness.timeline import Timeline
from harness.verdict import Check, Evidence

CHECK_ID = "maintenance.disabled-host"
#: servers booted per wave (two waves per disabled window: at its start and at its end)
BOOTS_PER_WINDOW = 3
#: how long a boot may take to be placed (or fail) before the window is judged without it
PLACE_TIMEOUT = 15.0


@dataclass
class ProbeBoot:
    """One server booted while ``disabled`` was disabled, and where the API says it went."""

    disabled: str
    sent: float
    server_id: str | None = None
    host: str | None = None
    status: str | None = None
    placed: float | None = None
    error: str | None = None

    def event(self) -> dict[str, Any]:
        return {"kind": "probe", "probe": "maintenance", "t": self.placed or self.sent, "sent": self.sent,
                "disabled": self.disabled, "server": self.server_id, "host": self.host,
                "status": self.status, "error": self.error}


@dataclass
class Window:
    host: str
    opened: float
    closed: float | None = None
    boots: list[ProbeBoot] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)


class MaintenanceProbe(StepProbe):
    name = "maintenance"

    def __init__(self, access: CloudAccess, timeline: Timeline, boots: int = BOOTS_PER_WINDOW) -> None:
        self.access = access
        self.timeline = timeline
        self.boots = boots
        self.windows: list[Window] = []
        self._open: dict[str, Window] = {}
        self._count = 0
        self.leftovers: list[str] = []

    def around(self, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> contextlib.AbstractContextManager[None]:
        if operation == "disable_compute" and args:
            return self._after_disable(str(args[0]))
        if operation == "enable_compute" and args:
            self._close(str(args[0]))
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _after_disable(self, host: str) -> Iterator[None]:
        yield  # (an exception from the disable propagates: no window opened)
        window = Window(host, time.monotonic())
        self._wave(window)
        self.windows.append(window)
        self._open[host] = window

    def _wave(self, window: Window) -> None:
        """Boot ``self.boots`` servers in the background, in ``window``."""
        client = self.access.public()
        for _ in range(self.boots):
            self._count += 1
            boot = ProbeBoot(window.host, time.monotonic())
            window.boots.append(boot)
            name = f"{PROBE_PREFIX}maint-{self._count}"
            thread = threading.Thread(target=self._boot, args=(client, boot, name), daemon=True,
                                      name=f"maintenance-probe-{window.host}")
            thread.start()
            window.threads.append(thread)

    def _boot(self, client: ComputeClient, boot: ProbeBoot, name: str) -> None:
        answer = client.boot(name)
        if not answer.ok or not isinstance(answer.body, dict):
            boot.error = f"boot refused: {answer.error}"
            return
        boot.server_id = str(answer.body["server"]["id"])
        server = client.wait_server(boot.server_id, lambda s: server_host(s) is not None
                                    or s.get("status") in ("ACTIVE", "ERROR"), PLACE_TIMEOUT)
        boot.placed = time.monotonic()
        if server is not None:
            boot.host, boot.status = server_host(server), server.get("status")
        left = client.delete_settled(boot.server_id, PLACE_TIMEOUT)
        if left:
            self.leftovers.append(left)

    def _close(self, host: str) -> None:
        """Before the host is enabled again: every boot of its window has been placed (or gave up)."""
        window = self._open.pop(host, None)
        if window is None:
            return
        self._wave(window)  # the second wave: the host's instances have left by now
        for thread in window.threads:
            thread.join(PLACE_TIMEOUT + 10.0)
        window.closed = time.monotonic()
        for boot in window.boots:
            self.timeline.emit(boot.event())

    def close(self) -> None:
        for host in list(self._open):
            self._close(host)

    def checks(self) -> list[Check]:
        return [judge_disabled_host(self.windows, self.leftovers)]


def judge_disabled_host(windows: list[Window], leftovers: list[str] | None = None) -> Check:
    """FAIL when a server booted during a host's disabled window was scheduled to that host."""
    if not windows:
        return Check.skipped(CHECK_ID, "no compute host was disabled: no maintenance window to probe")
    boots = [b for w in windows for b in w.boots]
    wrong = [b for b in boots if b.host is not None and b.host == b.disabled]
    unplaced = [b for b in boots if b.host is None]
    hosts = ", ".join(w.host for w in windows)
    tail = f"; {len(unplaced)} not placed ({unplaced[0].error or unplaced[0].status})" if unplaced else ""
    if leftovers:
        tail += f"; {len(leftovers)} probe server(s) not deleted: {leftovers[0]}"
    if wrong:
        evidence = [Evidence(f"server {b.server_id} booted while {b.disabled} was disabled was scheduled "
                             f"to {b.host} (OS-EXT-SRV-ATTR:host)", window=(b.sent, b.placed or b.sent),
                             target=b.disabled, events=(b.event(),)) for b in wrong[:10]]
        return Check.failed(CHECK_ID, f"{len(wrong)} of {len(boots)} server(s) booted in a disabled window "
                                      f"landed on the disabled host{tail}", evidence)
    placed = len(boots) - len(unplaced)
    if placed == 0:
        return Check.errored(CHECK_ID, f"none of {len(boots)} probe server(s) was placed in the disabled "
                                       f"windows of {hosts}{tail}: maintenance mode untested")
    return Check.passed(CHECK_ID, f"{placed} server(s) booted while {hosts} were disabled (one window each) "
                                  f"all landed elsewhere{tail}")


def maintenance_probe(context: ProbeContext) -> StepProbe | None:
    """minicloud only for now (see the module's docstring)."""
    profile = clouds.profile(context.scenario.cloud)
    if not (profile.probes("maintenance") and hasattr(context.cloud, "backend")):
        return None
    return MaintenanceProbe(CloudAccess(context.cloud), context.timeline)


PROBE_FACTORIES.append(maintenance_probe)

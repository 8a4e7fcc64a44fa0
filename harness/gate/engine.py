"""Is the machine still there? The container engine watched for the whole run.

A cloud whose containers vanish because the Docker engine stopped did not
break a promise: the machine failed under it. Without a watch that outage
reaches the verdict as failed steps, failed requests and lost resources, a
FAIL that a gate would not retry. ``EngineWatch`` pings the backend's engine
from a thread while the run is judged, records every outage on the timeline
(``kind: engine``, ``phase: down`` / ``up``), and turns any outage into the
ERROR check ``harness.engine``: what the cloud did while the engine was away
cannot be judged. Cleanup waits (bounded) for the engine to come back, so the
run's containers, networks and volumes are removed once it does.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.errors import RollgateError
from harness.timeline import Timeline
from harness.verdict import Check, Evidence

LOG = logging.getLogger(__name__)

CHECK_ENGINE = "harness.engine"
ENGINE = "engine"
#: how long cleanup waits for an engine that went away (ROLLGATE_ENGINE_WAIT overrides).
DEFAULT_ENGINE_WAIT_S = 120.0

Probe = Callable[[], bool]


class EngineDown(RollgateError):
    """The container engine stopped answering during the run."""


@dataclass
class EngineWatch:
    """Pings ``probe`` every ``interval`` seconds in a daemon thread; a failed ping is an outage."""

    probe: Probe
    timeline: Timeline | None = None
    interval: float = 0.5
    name: str = "Docker engine"
    check_id: str = CHECK_ENGINE  # the ERROR check an outage becomes
    outages: list[tuple[float, float | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> EngineWatch:
        self._thread = threading.Thread(target=self._loop, name="engine-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval)

    def poll(self) -> bool:
        """Ping once and record a change of state; True when the engine answers."""
        alive = _safe(self.probe)
        now = time.monotonic()
        with self._lock:
            down = bool(self.outages) and self.outages[-1][1] is None
            if alive and down:
                self.outages[-1] = (self.outages[-1][0], now)
                self._emit("up", now)
                LOG.warning("%s answers again after %.1f s", self.name, now - self.outages[-1][0])
            elif not alive and not down:
                self.outages.append((now, None))
                self._emit("down", now)
                LOG.error("%s does not answer: the run cannot be judged (it will be an ERROR)", self.name)
        return alive

    def _emit(self, phase: str, now: float) -> None:
        if self.timeline is not None:
            self.timeline.emit({"kind": ENGINE, "phase": phase, "t": now, "engine": self.name,
                                "check": self.check_id})

    @property
    def failed(self) -> bool:
        """Was the engine away at any moment of the run?"""
        with self._lock:
            return bool(self.outages)

    def raise_if_failed(self, stage: str) -> None:
        """Stop judging: after an outage every later stage would only pile up symptoms."""
        if self.failed:
            raise EngineDown(f"{self.name} stopped answering; {stage} skipped")

    def check(self) -> Check | None:
        """``harness.engine`` in error when there was an outage (None: nothing to report)."""
        with self._lock:
            outages = list(self.outages)
        if not outages:
            return None
        now = time.monotonic()
        evidence = [Evidence(f"{self.name} did not answer for {((end or now) - start):.1f} s"
                             + ("" if end is not None else " (still not answering at the end)"),
                             window=(start, end or now), target=self.name)
                    for start, end in outages]
        total = sum((end or now) - start for start, end in outages)
        return Check.errored(
            self.check_id,
            f"the {self.name} was away {total:.1f} s during the run ({len(outages)} outage(s)): what the "
            "cloud did meanwhile cannot be judged; a gate retries this run", evidence)


def guard_ops(ops: Any, watch: EngineWatch) -> Any:
    """``ops`` whose every call first raises ``EngineDown`` once the engine has been away:
    the executor's remaining steps and its rollback then fail at once instead of each
    waiting out its timeout against a cloud that is gone."""
    return _GuardedOps(ops, watch)


class _GuardedOps:
    def __init__(self, ops: Any, watch: EngineWatch) -> None:
        self._ops = ops
        self._watch = watch

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ops, name)
        if not callable(attr):
            return attr

        def guarded(*args: Any, **kwargs: Any) -> Any:
            self._watch.raise_if_failed(f"the executor's {name}")
            try:
                return attr(*args, **kwargs)
            except Exception:
                self._watch.poll()  # did it fail because the engine went away? Say so now.
                raise

        return guarded


def wait_for_engine(probe: Probe, timeout: float, name: str = "Docker engine") -> bool:
    """Wait (bounded) until ``probe`` answers; True if it does."""
    deadline = time.monotonic() + timeout
    if _safe(probe):
        return True
    LOG.warning("%s does not answer: waiting up to %.0f s to clean up", name, timeout)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        if _safe(probe):
            LOG.warning("%s answers again: cleaning up", name)
            return True
    return False


def _safe(probe: Probe) -> bool:
    try:
        return bool(probe())
    except Exception:  # a probe that raises is an engine that does not answer
        return False

"""Test hooks that hold work in flight while a service stops (only with ``"debug_delay": true``).

A hold names a service (``conductor``: every conductor) or one service on one
host (``conductor@controller-2``: only that one; the others run the cast at
once). It is ``SECONDS`` (hold that long) or ``stop+SECONDS`` (hold until this
process's graceful stop begins, at most ``STOP_WAIT_SECONDS``, then ``SECONDS``
more). The second form makes "work in flight when the stop began" certain on a
machine of any speed: with a fixed hold, a stop that comes later than the hold
(a loaded machine) finds nothing in flight, and a service that drops work on
stop passes. See DESIGN.md, "Public APIs".
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

#: the longest a hold may last, either form (a test hook must not wedge a service)
MAX_SECONDS = 30.0
#: how long a ``stop+`` hold waits for the stop before it runs out anyway
STOP_WAIT_SECONDS = 5.0
#: set by ``minicloud.web.serve`` when this process's graceful stop begins
STOPPING = threading.Event()

_AFTER_STOP = "stop+"


@dataclass(frozen=True)
class Hold:
    seconds: float
    after_stop: bool = False

    @classmethod
    def parse(cls, text: str | float) -> Hold:
        """``"1.5"``, ``1.5`` or ``"stop+0.5"``; ValueError for anything else."""
        raw = str(text).strip()
        after_stop = raw.startswith(_AFTER_STOP)
        seconds = float(raw[len(_AFTER_STOP):] if after_stop else raw)
        if math.isnan(seconds):
            raise ValueError(f"not a number of seconds: {raw!r}")
        return cls(min(max(seconds, 0.0), MAX_SECONDS), after_stop)

    def __str__(self) -> str:
        return f"{_AFTER_STOP if self.after_stop else ''}{self.seconds:g}"

    def __bool__(self) -> bool:
        return self.after_stop or self.seconds > 0

    def wait(self) -> None:
        """Hold the calling thread (a deliberate hold, not a wait for a condition)."""
        if self.after_stop:
            STOPPING.wait(STOP_WAIT_SECONDS)
        threading.Event().wait(self.seconds)


def hold_keys(service: str, config: Any) -> tuple[str, ...]:
    """The keys of a context's ``debug_hold`` that ``service`` on this host honours, most specific
    first; none unless the config has ``"debug_delay": true``."""
    if config.raw.get("debug_delay") is not True:
        return ()
    return (f"{service}@{config.host}", service)

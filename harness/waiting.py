"""Wait, never sleep: every wait has a timeout, a poll interval and, when it
runs out, the evidence (the last error and the logs of whatever was waited on).
"""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

from harness.errors import DeployError

T = TypeVar("T")


class WaitTimeout(DeployError):
    """A wait ran out; the message carries the last error and the evidence."""


def wait_until(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05,
               abort: Callable[[], str | None] | None = None,
               evidence: Callable[[], str] | None = None) -> T:
    """Poll ``check`` until it returns something truthy; raise WaitTimeout naming ``what``.

    ``check`` may raise: the last exception is kept as the reason. ``abort``
    returns a message when waiting longer is pointless (the process died).
    """
    deadline = time.monotonic() + timeout
    last = "never checked"
    while True:
        try:
            value = check()
            if value:
                return value
            last = f"not yet: {value!r}"
        except Exception as exc:  # the reason we keep polling
            last = f"{type(exc).__name__}: {exc}"
        reason = abort() if abort else None
        if reason or time.monotonic() >= deadline:
            message = reason or f"{what} not ready after {timeout:.0f}s"
            detail = f"{message} (last: {last})"
            if evidence:
                logs = evidence().strip()
                if logs:
                    detail += "\n--- last log lines ---\n" + logs
            raise WaitTimeout(detail)
        time.sleep(interval)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bool(200 <= response.status < 300)


def in_a_row(check: Callable[[], object], times: int) -> Callable[[], bool]:
    """A check for ``wait_until`` that passes once ``check`` succeeded (returned truthy, did not
    raise) ``times`` polls in a row: a service's first answer is not yet one to count on."""
    streak = [0]

    def steady() -> bool:
        try:
            ok = bool(check())
        except Exception:
            streak[0] = 0
            raise
        streak[0] = streak[0] + 1 if ok else 0
        if not ok:
            raise AssertionError(f"{getattr(check, '__name__', 'check')} did not pass")
        return streak[0] >= times

    return steady


def wait_http_ok(url: str, *, timeout: float, what: str,
                 abort: Callable[[], str | None] | None = None,
                 evidence: Callable[[], str] | None = None) -> None:
    wait_until(lambda: http_ok(url), timeout=timeout, what=what, abort=abort, evidence=evidence)


__all__ = ["WaitTimeout", "http_ok", "in_a_row", "wait_http_ok", "wait_until"]

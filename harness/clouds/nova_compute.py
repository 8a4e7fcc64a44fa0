"""Nova-style compute operations every cloud here shares (minicloud speaks Nova's API too).

Both clouds' executor operations and gate clouds use these, so that a fix to how the
harness waits on the compute API lands once.
"""
from __future__ import annotations

from typing import Any

from harness.waiting import in_a_row, wait_until


def wait_compute_api(conn: Any, timeout: float, interval: float) -> None:
    """Until the public compute API answers 5 times in a row (the load balancer has every
    backend back, not just one), after the API-down phase."""
    wait_until(in_a_row(lambda: list(conn.compute.flavors()) or True, 5), timeout=timeout,
               interval=interval, what="the compute API after the API-down phase")

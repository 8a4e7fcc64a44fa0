"""HAProxy drain under load, the same on every backend: a client loops on the compute
API through the lb while controller-1 is drained, its compute-api replaced, and it is
undrained. The promise: not one failed request."""
from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from harness.waiting import wait_until

LOOP_MAX_SECONDS = 90.0
LOOP_MAX_REQUESTS = 20000


@dataclass
class LoopResult:
    ok: int = 0
    failures: list[str] = field(default_factory=list)


class ApiLoop:
    """GET a compute API URL in a loop on one thread (bounded in time and count)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.result = LoopResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-loop", daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + LOOP_MAX_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline and \
                self.result.ok + len(self.result.failures) < LOOP_MAX_REQUESTS:
            request = urllib.request.Request(self.url, headers={"X-Auth-Token": self.token})
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    answer.read()
                    self.result.ok += 1
            except (urllib.error.URLError, OSError) as exc:
                self.result.failures.append(f"{time.monotonic():.3f} {exc}")
            time.sleep(0.005)  # a client's pace, not a wait: ~150 requests a second at most

    def __enter__(self) -> ApiLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)


def server_total(lb_api: Any, server: str, backend: str = "be_compute") -> int:
    """Sessions ``server`` has served in ``backend`` so far (HAProxy's ``stot``)."""
    return sum(int(row.get("stot") or 0) for row in lb_api.stats()
               if row.get("svname") == server and row.get("pxname") == backend)


def drain_replace_undrain(backend: Any, conn: Any, lb: str, controller: str, release: str) -> LoopResult:
    """Drain ``controller`` on ``lb`` under load, replace its compute-api, undrain.

    Asserts along the way that the drained server got no new session and that it
    serves again after the undrain; returns the loop's result for the caller to judge.
    """
    compute_url = conn.compute.get_endpoint().rstrip("/") + "/flavors"
    lb_api = backend.lb_api(lb)
    with ApiLoop(compute_url, conn.auth_token) as loop:
        wait_until(lambda: loop.result.ok >= 20, timeout=30, what="the API loop running")
        lb_api.drain(controller)
        assert all(s.startswith("MAINT") for s in lb_api.status(controller).values()), \
            lb_api.status(controller)
        served_before = server_total(lb_api, controller)
        backend.replace_service(controller, "compute-api", release, timeout=10)
        ok_during = loop.result.ok
        wait_until(lambda: loop.result.ok >= ok_during + 20, timeout=30, what="requests while drained")
        assert server_total(lb_api, controller) == served_before, "a drained server got sessions"
        lb_api.undrain(controller)
        wait_until(lambda: server_total(lb_api, controller) > served_before, timeout=30,
                   what=f"{controller} serving again after the undrain")
        ok_after = loop.result.ok
        wait_until(lambda: loop.result.ok >= ok_after + 20, timeout=30, what="requests after the undrain")
    return loop.result

"""SIGTERM to compute-api while slow requests are in flight: all of them complete.

The slow path is the debug-only ``X-Minicloud-Debug-Delay`` header, honoured
because this cloud's config has ``"debug_delay": true``.
"""
from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.minicloud.api_support import (
    ADMIN_PASSWORD,
    PORTS,
    issue_token,
    running_compute_cloud,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SLOW_REQUESTS = 10
DELAY_SECONDS = 4.0


def _slow_detail(address: str, token: str, results: list[dict[str, Any]], index: int,
                 delay: float = DELAY_SECONDS) -> None:
    """One request on its own fresh connection; records status, body and any exception."""
    connection = http.client.HTTPConnection(address, PORTS["compute-api"], timeout=30)
    try:
        connection.request("GET", "/v2.1/servers/detail", headers={
            "X-Auth-Token": token, "X-Minicloud-Debug-Delay": str(delay),
            "OpenStack-API-Version": "compute 2.60"})
        response = connection.getresponse()
        results[index] = {"status": response.status, "body": json.loads(response.read()),
                          "connection": response.getheader("Connection"), "done": time.monotonic()}
    except Exception as exc:  # recorded, asserted on below: a reset must fail the test
        results[index] = {"error": repr(exc)}
    finally:
        connection.close()


def test_sigterm_drains_in_flight_requests(tmp_path: Path) -> None:
    with running_compute_cloud(tmp_path, "1.1", extra={"debug_delay": True}) as (cloud, _):
        token = issue_token(cloud, "admin", ADMIN_PASSWORD, "admin")
        compute = next(s for s in cloud.services if s.name == "compute-api")
        results: list[dict[str, Any]] = [{} for _ in range(SLOW_REQUESTS)]
        threads = [threading.Thread(target=_slow_detail, args=(cloud.address, token, results, i), daemon=True)
                   for i in range(SLOW_REQUESTS)]
        for thread in threads:
            thread.start()
        # every request is inside its handler (past auth) before the signal goes out
        wait_until(lambda: compute.log().count("debug delay") >= SLOW_REQUESTS, 15,
                   f"{SLOW_REQUESTS} requests in flight", evidence=compute.log)
        signalled = time.monotonic()
        compute.process.send_signal(signal.SIGTERM)
        # the listener closes at once: a new client is refused, not reset and not served
        def refused() -> bool:
            try:
                socket.create_connection((cloud.address, PORTS["compute-api"]), timeout=1).close()
            except ConnectionRefusedError:
                return True
            return False

        wait_until(refused, 5, "compute-api to stop accepting connections", evidence=compute.log)
        for thread in threads:
            thread.join(30)
        assert compute.process.wait(30) == 0
        assert [r.get("error") for r in results] == [None] * SLOW_REQUESTS
        assert [r["status"] for r in results] == [200] * SLOW_REQUESTS
        assert all(r["done"] > signalled for r in results)  # all were in flight at SIGTERM
        assert all(r["body"] == {"servers": []} for r in results)
        assert {r["connection"] for r in results} == {"close"}
        assert "draining in-flight requests" in compute.log()


def test_debug_delay_needs_the_config_flag(tmp_path: Path) -> None:
    with running_compute_cloud(tmp_path, "1.1") as (cloud, _):
        token = issue_token(cloud, "admin", ADMIN_PASSWORD, "admin")
        results: list[dict[str, Any]] = [{}]
        thread = threading.Thread(target=_slow_detail, args=(cloud.address, token, results, 0, 20.0),
                                  daemon=True)
        thread.start()
        thread.join(10.0)  # answered well before the 20 s delay would have ended
        assert results[0].get("status") == 200
        compute = next(s for s in cloud.services if s.name == "compute-api")
        assert "debug delay" not in compute.log()

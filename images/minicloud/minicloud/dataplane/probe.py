"""A write loop through a floating port that records what a user would see.

Used by the data-plane tests and the benchmark: every acknowledged write (to
read back later), every failed request with its error, and the time of every
success (the longest gap between two is the outage a user felt). Like the
harness's disruption samplers it runs on a new connection per request or on one
reused keep-alive connection, since a migration breaks the two differently.
"""
from __future__ import annotations

import http.client
import itertools
import threading
import time
from dataclasses import dataclass, field


@dataclass
class WriteProbe:
    address: str
    port: int
    name: str
    reuse_connection: bool
    max_seconds: float = 60.0
    max_requests: int = 200_000
    acked: dict[str, bytes] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    success_times: list[float] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"probe-{self.name}", daemon=True)

    def start(self) -> WriteProbe:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        conn: http.client.HTTPConnection | None = None
        for index in range(self.max_requests):
            if self.stop_event.is_set() or time.monotonic() > deadline:
                break
            key = f"{self.name}-{index}"
            value = f"value-of-{key}".encode()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.address, self.port, timeout=10)
                conn.request("PUT", f"/kv/{key}", body=value)
                response = conn.getresponse()
                response.read()
                if response.status == 204:
                    self.acked[key] = value
                    self.success_times.append(time.monotonic())
                else:
                    self.failures.append(f"{key}: HTTP {response.status}")
                if response.will_close or not self.reuse_connection:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"{key}: {type(exc).__name__}: {exc}")
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def longest_gap(self) -> float:
        """Longest time (s) between two consecutive successful writes."""
        times = self.success_times
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def read_back(address: str, port: int, expected: dict[str, bytes]) -> list[str]:
    """Keys whose value on the workload at address:port differs from ``expected``."""
    wrong = []
    conn = http.client.HTTPConnection(address, port, timeout=10)
    try:
        for key, value in expected.items():
            conn.request("GET", f"/kv/{key}")
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or body != value:
                wrong.append(f"{key}: HTTP {response.status} {body[:40]!r}")
    finally:
        conn.close()
    return wrong

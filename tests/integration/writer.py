"""A data-plane writer for tests: writes an increasing sequence to an instance
through its floating address and remembers every acknowledged write.
"""
from __future__ import annotations

import http.client
import itertools
import threading
import time
from dataclasses import dataclass, field


@dataclass
class WriterReport:
    acked: dict[str, str] = field(default_factory=dict)
    failures: list[tuple[float, str]] = field(default_factory=list)
    ok_times: list[float] = field(default_factory=list)

    @property
    def longest_gap(self) -> float:
        """Longest time between consecutive acknowledged writes (seconds)."""
        times = self.ok_times
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


class Writer(threading.Thread):
    """PUT /kv/seq-N in a loop on a new connection each time (bounded run)."""

    def __init__(self, endpoint: str, prefix: str = "seq", interval: float = 0.005,
                 max_seconds: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.host, port = endpoint.split(":")
        self.port = int(port)
        self.prefix = prefix
        self.interval = interval
        self.max_seconds = max_seconds
        self.report = WriterReport()
        self._stop_event = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        seq = 0
        while not self._stop_event.is_set() and time.monotonic() < deadline:
            key, value = f"{self.prefix}-{seq}", str(seq)
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
                conn.request("PUT", f"/kv/{key}", body=value.encode())
                response = conn.getresponse()
                response.read()
                conn.close()
                if 200 <= response.status < 300:
                    self.report.acked[key] = value
                    self.report.ok_times.append(time.monotonic())
                else:
                    self.report.failures.append((time.monotonic(), f"HTTP {response.status}"))
            except OSError as exc:
                self.report.failures.append((time.monotonic(), f"{type(exc).__name__}: {exc}"))
            seq += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> WriterReport:
        self._stop_event.set()
        self.join(10)
        return self.report


def read_back(endpoint: str, acked: dict[str, str]) -> list[str]:
    """Keys whose acknowledged value cannot be read back (lost writes)."""
    host, port = endpoint.split(":")
    lost = []
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    for key, value in acked.items():
        conn.request("GET", f"/kv/{key}")
        response = conn.getresponse()
        body = response.read().decode()
        if response.status != 200 or body != value:
            lost.append(key)
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.close()
    return lost

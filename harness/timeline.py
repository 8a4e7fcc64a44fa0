"""The run's one timeline: every request, executor step and fault is an event.

Events are appended to ``results/<run-id>/timeline.jsonl`` one JSON object per
line, written and flushed as they happen, so that a crash (even ``kill -9``)
keeps every line written before it. Timestamps are ``time.monotonic()``
seconds; the file's first line is a header mapping monotonic to wall time.
Several processes (the harness, the Locust process) may append to the same
file: each line is written with one ``os.write`` on an ``O_APPEND`` descriptor,
which the kernel keeps whole for regular files.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Event kinds. Requests carry: t (start), end, kind, target, conn ("new" |
# "reused"), ok, latency, error, request_id. Steps carry: t, end, kind="step",
# name, phase ("start" | "end"), outcome, host, service, from, to. Faults carry
# t, kind="fault", host, service, action.
HEADER = "header"
STEP = "step"
FAULT = "fault"


class Timeline:
    """Append-only JSON-lines writer; safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()
        if new:
            self.emit({"kind": HEADER, "t": time.monotonic(), "wall": time.time(), "pid": os.getpid()})

    def emit(self, event: dict[str, Any]) -> None:
        event.setdefault("t", time.monotonic())
        line = (json.dumps(event, separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> Timeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield every complete event; a torn last line (crash mid-write) is skipped."""
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                yield json.loads(raw)
            except json.JSONDecodeError:
                continue

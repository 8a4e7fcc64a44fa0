"""Request events read back from the timeline as typed samples that cite their line.

Every check works on ``Sample`` objects rather than raw dicts, so the evidence
a violation cites (line number, start, target, error, request id) is always the
same shape and always points at a line of ``timeline.jsonl`` a reader can open.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

API = "api"
DATAPLANE = "dataplane"
REQUEST_KINDS = (API, DATAPLANE)

SAMPLER = "sampler"  # uniform probes: the basis of outage intervals and of latency baselines
USER = "user"  # Locust users: openstacksdk mix, data-plane writers/readers
VERIFY = "verify"  # the final read-back of every acknowledged write
BURST = "burst"  # the harness's own write bursts across live migrations (harness.gate.migration_burst)


@dataclass(frozen=True)
class Sample:
    """One request as the timeline recorded it (``t`` = monotonic start)."""

    line: int
    t: float
    end: float
    kind: str
    target: str
    conn: str
    ok: bool
    error: str | None
    source: str
    op: str
    key: str | None = None
    request_id: str | None = None

    @property
    def latency(self) -> float:
        return self.end - self.t

    @property
    def stream(self) -> str:
        """One sampler's stream: requests on it never overlap, so intervals are well defined."""
        return f"{self.target}/{self.conn}"

    def cite(self) -> dict[str, Any]:
        """The evidence form of this request, as violations and outages quote it."""
        cited: dict[str, Any] = {
            "line": self.line, "t": round(self.t, 6), "end": round(self.end, 6), "kind": self.kind,
            "target": self.target, "conn": self.conn, "op": self.op, "ok": self.ok,
        }
        if self.error is not None:
            cited["error"] = self.error
        if self.key is not None:
            cited["key"] = self.key
        if self.request_id:
            cited["request_id"] = self.request_id
        return cited


WRITER = "writer"


def channel_of(sample: Sample) -> str:
    """A data-plane request's channel: new | reused (samplers), writer (the users' writer),
    or ``<source>-<conn>`` for other sources (``burst-new``: the migration write bursts)."""
    if sample.source == SAMPLER:
        return sample.conn
    if sample.source == USER:
        return WRITER
    return f"{sample.source}-{sample.conn}"


def channel_key(sample: Sample) -> str:
    """``<instance>/<channel>``: what gaps and failure counts are computed per."""
    return f"{sample.target}/{channel_of(sample)}"


def steady_channel(sample: Sample) -> bool:
    """Channels that send all the time (samplers, writer): a silence between two of their
    successes is a gap. Bursts (during one operation only) are judged on failures alone."""
    return sample.kind == DATAPLANE and sample.source in (SAMPLER, USER)


def numbered_events(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (1-based line number, event); a torn last line from a crash is skipped."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                break
            try:
                event = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                yield number, event


def to_sample(line: int, event: dict[str, Any]) -> Sample | None:
    """The Sample of a request event, or None for steps, faults, headers."""
    if event.get("kind") not in REQUEST_KINDS:
        return None
    start = float(event["t"])
    return Sample(
        line=line,
        t=start,
        end=float(event.get("end", start)),
        kind=str(event["kind"]),
        target=str(event.get("target", "?")),
        conn=str(event.get("conn", "reused")),
        ok=bool(event.get("ok", False)),
        error=None if event.get("ok") else str(event.get("error") or "unknown error"),
        source=str(event.get("source", USER)),
        op=str(event.get("op", "request")),
        key=event.get("key"),
        request_id=event.get("request_id"),
    )


def samples_of(numbered: Iterable[tuple[int, dict[str, Any]]]) -> list[Sample]:
    """Every request sample, in timeline order."""
    samples = []
    for line, event in numbered:
        sample = to_sample(line, event)
        if sample is not None:
            samples.append(sample)
    return samples

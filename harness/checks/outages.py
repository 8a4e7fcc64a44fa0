"""Outage intervals per sampler stream, and data-plane gaps per instance.

An outage (OpenShift's disruption interval) starts at the first failing
request's start, is split when the error text changes, and ends at recovery:
the end of the first successful request after it, the moment the target was
proven to answer again. Ending at the successful request's *end* rather than
its start matters for stalls (a SIGSTOPped service): the request that started
during the stall and was answered when it resumed proves nothing before that.

A data-plane gap is the longest time an instance answered nothing successfully
on one connection type (new, reused, the writer): between two consecutive
successful completions of that channel's requests, so a stall (requests that hang, then succeed) and an
outage (requests that fail fast) are measured the same way.
"""
from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.checks.samples import DATAPLANE, SAMPLER, Sample, channel_key, steady_channel

EVIDENCE_LIMIT = 5


@dataclass
class Outage:
    """A window in which one sampler stream saw the same error on every request."""

    target: str  # "<target>/<conn>", e.g. "compute/new"
    kind: str
    start: float
    end: float
    error: str
    failed: list[Sample] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def requests(self) -> int:
        return len(self.failed)

    def to_row(self) -> dict[str, Any]:
        """The outages.json row: {target, kind, start, end, duration_s, error, requests} + evidence."""
        return {
            "target": self.target,
            "kind": self.kind,
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "duration_s": round(self.duration_s, 6),
            "error": self.error,
            "requests": self.requests,
            "lines": [self.failed[0].line, self.failed[-1].line],
        }


def _stream_outages(stream: list[Sample]) -> list[Outage]:
    outages: list[Outage] = []
    current: Outage | None = None
    for sample in stream:
        if sample.ok:
            if current is not None:
                current.end = sample.end
                current = None
            continue
        error = sample.error or "unknown error"
        if current is not None and current.error == error:
            current.failed.append(sample)
            current.end = max(current.end, sample.end)
            continue
        if current is not None:
            current.end = sample.t  # the error changed: split here
        current = Outage(sample.stream, sample.kind, sample.t, sample.end, error, [sample])
        outages.append(current)
    # Overlapping requests (a slow success, a failure started while it was in flight)
    # must not make intervals of one target overlap: cut at the next interval's start.
    for earlier, later in itertools.pairwise(outages):
        earlier.end = min(earlier.end, later.start)
    return outages


def compute_outages(samples: Iterable[Sample]) -> list[Outage]:
    """Outage intervals of every sampler stream, ordered by start."""
    streams: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for sample in samples:
        if sample.source == SAMPLER:
            streams[(sample.kind, sample.stream)].append(sample)
    outages: list[Outage] = []
    for stream in streams.values():
        outages.extend(_stream_outages(sorted(stream, key=lambda s: (s.t, s.end))))
    return sorted(outages, key=lambda o: (o.start, o.target))


@dataclass
class DataPlaneGap:
    """A window in which an instance completed no request successfully."""

    target: str
    start: float  # end of the last success before the gap (or the first request's start)
    end: float  # end of the first success after it (or the last request's end)
    inside: list[Sample] = field(default_factory=list)  # requests started in the gap
    recovered: bool = True

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def error(self) -> str:
        """What the requests in the gap saw: their commonest error, or that they stalled."""
        errors = Counter(s.error for s in self.inside if not s.ok)
        if errors:
            return str(errors.most_common(1)[0][0])
        slowest = max(self.inside, key=lambda s: s.latency, default=None)
        if slowest is not None:
            return f"stalled: slowest request took {slowest.latency * 1000:.0f} ms"
        return "no request answered"

    def evidence(self) -> list[dict[str, Any]]:
        failed = [s for s in self.inside if not s.ok]
        chosen = failed or sorted(self.inside, key=lambda s: -s.latency)
        return [s.cite() for s in chosen[:EVIDENCE_LIMIT]]

    def to_row(self) -> dict[str, Any]:
        return {
            "target": self.target, "kind": DATAPLANE, "start": round(self.start, 6),
            "end": round(self.end, 6), "duration_s": round(self.duration_s, 6),
            "error": self.error, "requests": len(self.inside), "recovered": self.recovered,
        }


def _instance_gaps(target: str, samples: list[Sample]) -> list[DataPlaneGap]:
    samples = sorted(samples, key=lambda s: s.t)
    window_start = samples[0].t
    window_end = max(s.end for s in samples)
    successes = sorted(s.end for s in samples if s.ok)
    marks = [window_start, *successes]
    gaps = [DataPlaneGap(target, a, b) for a, b in itertools.pairwise(marks)]
    tail = DataPlaneGap(target, marks[-1], window_end, recovered=False)
    if tail.duration_s > 0:
        gaps.append(tail)
    # Attribute each request to the gap in which it started.
    starts = [g.start for g in gaps]
    index = 0
    for sample in samples:
        while index + 1 < len(starts) and starts[index + 1] <= sample.t:
            index += 1
        if gaps and gaps[index].start <= sample.t < gaps[index].end:
            gaps[index].inside.append(sample)
    return gaps


def data_plane_gaps(samples: Iterable[Sample], report_ms: float = 100.0) -> dict[str, list[DataPlaneGap]]:
    """Per instance and connection type (``vm-1/new``, ``vm-1/reused``, ``vm-1/writer``):
    every gap of at least ``report_ms``, and always its longest one first.

    Per connection type, never merged: one working reused connection must not
    hide seconds of refused new connections.
    """
    per_instance: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        if steady_channel(sample):
            per_instance[channel_key(sample)].append(sample)
    result: dict[str, list[DataPlaneGap]] = {}
    for target, instance_samples in sorted(per_instance.items()):
        gaps = _instance_gaps(target, instance_samples)
        if not gaps:
            result[target] = []
            continue
        longest = max(gaps, key=lambda g: g.duration_s)
        reported = [g for g in gaps if g.duration_s * 1000 >= report_ms and g is not longest]
        result[target] = [longest, *sorted(reported, key=lambda g: g.start)]
    return result

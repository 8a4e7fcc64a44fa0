"""The data behind report.html's timeline, computed server-side so the page stays small.

Requests are many (a thousand per second is normal), so they are folded into
time buckets per request kind: count, failures, mean and max latency. Whatever
a reader must be able to trust exactly is kept exact: every failed request,
every outage interval, every data-plane gap above the reporting threshold,
every step and fault. Times are seconds since the first event (``origin``),
rounded to the millisecond.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checks.outages import compute_outages, data_plane_gaps
from harness.checks.samples import REQUEST_KINDS, Sample, numbered_events, to_sample
from harness.report.releases import host_lanes, service_lanes, step_spans
from harness.verdict import Verdict

DEFAULT_BUCKET_S = 0.1
MAX_BUCKETS = 3000
NICE_BUCKETS = (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0)


@dataclass
class TimelineContents:
    """One pass over timeline.jsonl: request samples and every other event."""

    samples: list[Sample]
    events: list[dict[str, Any]]  # steps, faults, headers, traffic markers (not requests)


def read_timeline(path: Path) -> TimelineContents:
    samples: list[Sample] = []
    events: list[dict[str, Any]] = []
    if not path.exists():
        return TimelineContents(samples, events)
    for line, event in numbered_events(path):
        if event.get("kind") in REQUEST_KINDS:
            sample = to_sample(line, event)
            if sample is not None:
                samples.append(sample)
        elif "t" in event:
            events.append(event)
    return TimelineContents(samples, events)


def bucket_size(span_s: float, preferred: float = DEFAULT_BUCKET_S, max_buckets: int = MAX_BUCKETS) -> float:
    """The preferred bucket, or the smallest nice one that keeps the count under ``max_buckets``."""
    for size in (s for s in NICE_BUCKETS if s >= preferred):
        if span_s / size <= max_buckets:
            return size
    return span_s / max_buckets


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _rel(t: float | None, origin: float) -> float | None:
    return None if t is None else round(t - origin, 3)


def _buckets(samples: Sequence[Sample], origin: float, size: float, count: int) -> dict[str, Any]:
    series: dict[str, dict[str, list[float]]] = {}
    for kind in sorted({s.kind for s in samples}):
        series[kind] = {"n": [0] * count, "fail": [0] * count, "mean": [0.0] * count, "max": [0.0] * count}
    for sample in samples:
        index = min(count - 1, max(0, int((sample.t - origin) / size)))
        row = series[sample.kind]
        row["n"][index] += 1
        if not sample.ok:
            row["fail"][index] += 1
        latency = sample.latency * 1000
        row["mean"][index] += latency
        row["max"][index] = max(row["max"][index], latency)
    for row in series.values():
        row["mean"] = [
            round(total / n, 2) if n else 0 for total, n in zip(row["mean"], row["n"], strict=True)
        ]
        row["max"] = [round(value, 2) for value in row["max"]]
    return series


def _failures(samples: Sequence[Sample], origin: float) -> dict[str, Any]:
    """Every failed request, columnar, with targets and errors interned in one string table."""
    strings: list[str] = []
    index: dict[str, int] = {}

    def intern(text: str) -> int:
        if text not in index:
            index[text] = len(strings)
            strings.append(text)
        return index[text]

    columns: dict[str, list[Any]] = {"t": [], "lat": [], "kind": [], "target": [], "error": [], "line": []}
    for sample in samples:
        if sample.ok:
            continue
        columns["t"].append(round(sample.t - origin, 3))
        columns["lat"].append(_ms(sample.latency))
        columns["kind"].append(intern(sample.kind))
        columns["target"].append(intern(f"{sample.target}/{sample.conn}/{sample.op}"))
        columns["error"].append(intern(sample.error or "unknown error"))
        columns["line"].append(sample.line)
    return {**columns, "strings": strings}


def chart_data(
    contents: TimelineContents,
    verdict: Verdict | None = None,
    *,
    preferred_bucket_s: float = DEFAULT_BUCKET_S,
    gap_report_ms: float = 100.0,
) -> dict[str, Any]:
    """Everything the page's chart draws, as one JSON-able mapping."""
    samples, events = contents.samples, contents.events
    times = [s.t for s in samples] + [float(e["t"]) for e in events if e.get("kind") != "header"]
    ends = [s.end for s in samples] + times
    origin = min(times, default=0.0)
    finish = max(ends, default=origin)
    span = max(finish - origin, 0.001)
    size = bucket_size(span, preferred_bucket_s)
    count = max(1, int(span / size) + 1)
    header = next((e for e in events if e.get("kind") == "header"), None)
    wall_offset = (
        (float(header["wall"]) - float(header["t"])) if header else (verdict.wall_offset if verdict else None)
    )
    spans = step_spans(events)
    initial = dict(verdict.releases_initial) if verdict else {}
    # openstack: one controller runs seven services, so a lane per service shows each swap
    per_service = verdict is not None and verdict.cloud == "openstack"
    lanes = (service_lanes if per_service else host_lanes)(initial, spans, (origin, finish))
    gaps = [
        g
        for per in data_plane_gaps(samples, gap_report_ms).values()
        for g in per
        if g.duration_s * 1000 >= gap_report_ms
    ]
    return {
        "origin": origin,
        "wall_origin": origin + wall_offset if wall_offset is not None else None,
        "duration": round(span, 3),
        "bucket_s": size,
        "buckets": count,
        "requests": len(samples),
        "series": _buckets(samples, origin, size, count),
        "failures": _failures(samples, origin),
        "outages": [
            {
                "target": o.target,
                "kind": o.kind,
                "start": _rel(o.start, origin),
                "end": _rel(o.end, origin),
                "error": o.error,
                "requests": o.requests,
            }
            for o in compute_outages(samples)
        ],
        "gaps": [
            {
                "target": g.target,
                "start": _rel(g.start, origin),
                "end": _rel(g.end, origin),
                "error": g.error,
                "requests": len(g.inside),
                "recovered": g.recovered,
            }
            for g in sorted(gaps, key=lambda g: g.start)
        ],
        "steps": [
            {
                **s.to_dict(),
                "start": _rel(s.start, origin),
                "end": _rel(s.end if s.end is not None else finish, origin),
                "running": s.end is None,
            }
            for s in spans
        ],
        "faults": [
            {
                "t": _rel(float(e["t"]), origin),
                "host": e.get("host"),
                "service": e.get("service"),
                "action": e.get("action"),
            }
            for e in events
            if e.get("kind") == "fault"
        ],
        "lanes": [
            {
                **lane,
                "segments": [
                    {**seg, "start": _rel(seg["start"], origin), "end": _rel(seg["end"], origin)}
                    for seg in lane["segments"]
                ],
            }
            for lane in lanes
        ],
    }


def relative_window(window: Sequence[float] | None, origin: float) -> list[float] | None:
    """An evidence window in the chart's time base (for the "show on chart" links)."""
    return [round(window[0] - origin, 3), round(window[1] - origin, 3)] if window else None


def summarize(data: Mapping[str, Any]) -> str:
    """A one-line description, e.g. for the page's no-script fallback and the benchmark."""
    return (
        f"{data['requests']} requests in {data['buckets']} buckets of {data['bucket_s']:g} s, "
        f"{len(data['failures']['t'])} failures, {len(data['outages'])} outages, "
        f"{len(data['steps'])} steps, {len(data['lanes'])} hosts"
    )

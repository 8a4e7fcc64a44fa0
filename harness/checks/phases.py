"""Phases of a run (before, each step, during, after) and latency percentiles per phase.

Phases come from the executor's step events (``kind: step``, ``phase: start |
end``, ``name``): "before" is the baseline up to the first step, "during" spans
the first step's start to the last step's end, "after" is the rest, and each
step is its own phase ``step:<name>``. ``rollgate observe -- COMMAND`` records
the command as one step, so an external tool is judged the same way.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.checks.samples import Sample

BEFORE = "before"
DURING = "during"
AFTER = "after"


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    end: float

    def contains(self, t: float) -> bool:
        return self.start <= t < self.end


def phases_of(events: Iterable[dict[str, Any]], window_start: float, window_end: float) -> list[Phase]:
    """The phases of ``[window_start, window_end)``; without steps, the whole window is "before"."""
    open_steps: dict[tuple[Any, ...], list[float]] = {}
    steps: list[Phase] = []
    for event in events:
        if event.get("kind") != "step":
            continue
        identity = (event.get("name"), event.get("host"), event.get("service"))
        if event.get("phase") == "start":
            open_steps.setdefault(identity, []).append(float(event["t"]))
        elif event.get("phase") == "end" and open_steps.get(identity):
            started = open_steps[identity].pop(0)
            steps.append(Phase(f"step:{event.get('name')}", started, float(event["t"])))
    for identity, starts in open_steps.items():  # a step still running when traffic stopped
        steps.extend(Phase(f"step:{identity[0]}", started, window_end) for started in starts)
    if not steps:
        return [Phase(BEFORE, window_start, window_end)]
    first = min(step.start for step in steps)
    last = max(step.end for step in steps)
    return [
        Phase(BEFORE, window_start, first),
        *sorted(steps, key=lambda step: step.start),
        Phase(DURING, first, last),
        Phase(AFTER, last, window_end),
    ]


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: the value is one a request really took)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_stats(samples: Iterable[Sample]) -> dict[str, Any]:
    """count, p50, p90, p99 and max latency (milliseconds) of successful requests."""
    values = sorted(s.latency * 1000 for s in samples if s.ok)
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 0.50), 3),
        "p90_ms": round(percentile(values, 0.90), 3),
        "p99_ms": round(percentile(values, 0.99), 3),
        "max_ms": round(values[-1], 3),
    }


def latency_by_phase(samples: Sequence[Sample], phases: Sequence[Phase]) -> dict[str, dict[str, Any]]:
    """{phase: {"<kind>/<source>": stats}} for every phase (a sample belongs by its start)."""
    table: dict[str, dict[str, Any]] = {}
    for phase in phases:
        groups: dict[str, list[Sample]] = {}
        for sample in samples:
            if phase.contains(sample.t):
                groups.setdefault(f"{sample.kind}/{sample.source}", []).append(sample)
        table[phase.name] = {
            "window": [round(phase.start, 6), round(phase.end, 6)],
            **{group: latency_stats(members) for group, members in sorted(groups.items())},
        }
    return table

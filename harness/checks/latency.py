"""Users' operations judged per operation: median latency, baseline vs during (and after).

``slo.api_p99`` compares the version-document samplers, which skip the API's
request pipeline; users' real operations can become ten times slower without
moving them. Here every authenticated operation (the operation samplers'
``servers-detail``, ``flavors-detail``, ``os-services``, ``images``, and the
openstacksdk users' operations when they have enough samples) is judged on
its own: its median during the upgrade (and after it, if traffic ran after)
must stay within ``api_latency_ratio`` x its baseline median, or under
``api_latency_floor_ms``, whichever is larger.

Why the median: a phase holds hundreds of samples of which a few fall on a
service restart or a CPU-starved moment of a shared 2-core machine; the
median ignores those and moves only when most requests got slower, which is
what a real regression (an N+1 query, a disabled cache) does. The floor
keeps a 3 ms -> 12 ms wobble on loopback from failing a gate.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from harness.checks.phases import AFTER, BEFORE, DURING, Phase, percentile
from harness.checks.samples import API, USER, Sample
from harness.traffic.api_ops import OP_SAMPLER
from harness.traffic.config import SloConfig

SOURCES = (OP_SAMPLER, USER)


@dataclass(frozen=True)
class OperationLatency:
    """One operation in one phase against its baseline."""

    operation: str  # "<target> <op>", e.g. "compute servers-detail"
    phase: str
    baseline_ms: float
    baseline_count: int
    median_ms: float
    count: int
    limit_ms: float
    window: tuple[float, float]
    slowest: tuple[Sample, ...]

    @property
    def regressed(self) -> bool:
        return self.median_ms > self.limit_ms

    def to_row(self) -> dict[str, object]:
        return {"operation": self.operation, "phase": self.phase,
                "baseline_p50_ms": round(self.baseline_ms, 1),
                "baseline_samples": self.baseline_count, "p50_ms": round(self.median_ms, 1),
                "samples": self.count, "limit_ms": round(self.limit_ms, 1)}


def _median_ms(samples: Sequence[Sample]) -> float:
    return percentile(sorted(s.latency for s in samples), 0.5) * 1000


def operation_latencies(samples: Sequence[Sample], phases: Sequence[Phase], slo: SloConfig,
                        notes: list[str]) -> list[OperationLatency]:
    """Every judged (operation, phase); operations without enough samples are noted, not judged."""
    windows = {phase.name: phase for phase in phases}
    if DURING not in windows:
        return []
    by_op: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        if sample.kind == API and sample.ok and sample.source in SOURCES:
            by_op[f"{sample.target} {sample.op}"].append(sample)
    judged: list[OperationLatency] = []
    unjudged: list[str] = []
    for operation, group in sorted(by_op.items()):
        baseline = [s for s in group if windows[BEFORE].contains(s.t)]
        if len(baseline) < slo.api_latency_min_samples:
            unjudged.append(f"{operation} ({len(baseline)})")
            continue
        base_ms = _median_ms(baseline)
        limit_ms = max(slo.api_latency_ratio * base_ms, slo.api_latency_floor_ms)
        for name in (DURING, AFTER):
            phase = windows.get(name)
            inside = [s for s in group if phase is not None and phase.contains(s.t)]
            if len(inside) < slo.api_latency_min_samples:
                continue
            assert phase is not None
            slowest = tuple(sorted(inside, key=lambda s: -s.latency)[:5])
            judged.append(OperationLatency(operation, name, base_ms, len(baseline), _median_ms(inside),
                                           len(inside), limit_ms, (phase.start, phase.end), slowest))
    if unjudged:
        notes.append(f"api_latency: too few baseline samples (need {slo.api_latency_min_samples}) to judge "
                     + ", ".join(unjudged))
    return judged

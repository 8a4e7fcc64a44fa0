"""Users' operations judged per operation: baseline vs during (and after) the upgrade.

``slo.api_p99`` compares the version-document samplers, which skip the API's
request pipeline; users' real operations can become several times slower
without moving them. Here every authenticated operation (the operation
samplers' ``servers-detail``, ``flavors-detail``, ``os-services``,
``images``, and the openstacksdk users' operations when they have enough
baseline samples) is judged on its own.

What is compared is the operation's *own cost*: its median latency in the
phase, against the upper quartile of its baseline (a phase fails only when its
typical request got slower than three quarters of the baseline's by more than
the limit: on a loaded machine, a 2 s "after" phase's median of 20 requests
wandered 11 ms above a baseline that itself spread from 2 to 131 ms, while the
catalog's performance regressions stay 21-47 ms above it); each minus the
median of the unauthenticated version-document sampler of the same service
on a reused connection in the same phase (the control). Both cross the same
load balancer into the same processes on the same CPUs at the same moments,
so a busy machine (two gates on two cores, services restarting during the
upgrade) slows both and cancels out, while what only the operation does
(token validation, queries, the view) shows whole. A busy machine also runs
the operation's own work slower, by about the factor its control slowed
down: the baseline's own cost is scaled by that factor (``contention``, at
least 1) before it is compared, so a starved machine is not read as a
regression, while a regression (work the operation added) still shows. The operation fails when
its own cost grew by more than ``api_latency_floor_ms`` and by more than
``(api_latency_ratio - 1)`` x its baseline median: a 5x regression of a
6 ms operation (+24 ms) fails; a 1 ms wobble does not. Without a control
(no sampler on that service) the plain medians are compared.

Medians, not p99: a phase holds hundreds of samples of which a few fall on a
service restart; the median moves only when most requests got slower, which
is what a regression in the pipeline (an N+1 query, a disabled cache) does.

The harness's own load is not the release's: while a write burst runs
(``migration.write_burst``: hundreds of data-plane writes a second around a
live migration, and from a network host's swap to the end of the run), the
operations measured at the same moments are left out of the comparison
(``burst_windows``). Seen: a clean security update failed on a 2-second
"after" phase that was all burst on a loaded machine (servers-detail 4.4 ->
13.8 ms over 19 requests, some of 111 ms, the control unmoved); every
regression the catalog holds slows all requests, burst or not.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from harness.checks.phases import AFTER, BEFORE, DURING, Phase, percentile
from harness.checks.samples import API, BURST, SAMPLER, USER, Sample
from harness.traffic.api_ops import OP_SAMPLER
from harness.traffic.config import SloConfig

SOURCES = (OP_SAMPLER, USER)
#: the baseline's own cost is taken at this quantile of its requests (its upper quartile)
BASELINE_QUANTILE = 0.75
#: two burst writes further apart than this are two bursts
BURST_GAP_S = 0.25


@dataclass(frozen=True)
class OperationLatency:
    """One operation in one phase against its baseline."""

    operation: str  # "<target> <op>", e.g. "compute servers-detail"
    phase: str
    baseline_ms: float
    baseline_count: int
    median_ms: float
    count: int
    limit_ms: float  # the most the operation's own cost may grow
    growth_ms: float  # how much its own cost grew (median minus the control's, phase vs baseline)
    window: tuple[float, float]
    slowest: tuple[Sample, ...]
    baseline_p75_ms: float = 0.0  # what the phase's median is compared with (see the module's doc)

    @property
    def regressed(self) -> bool:
        return self.growth_ms > self.limit_ms

    def to_row(self) -> dict[str, object]:
        return {"operation": self.operation, "phase": self.phase,
                "baseline_p50_ms": round(self.baseline_ms, 1),
                "baseline_samples": self.baseline_count, "baseline_p75_ms": round(self.baseline_p75_ms, 1),
                "p50_ms": round(self.median_ms, 1),
                "samples": self.count, "growth_ms": round(self.growth_ms, 1),
                "limit_ms": round(self.limit_ms, 1)}


def _median_ms(samples: Sequence[Sample]) -> float:
    return percentile(sorted(s.latency for s in samples), 0.5) * 1000


def contention(base_control_ms: float, phase_control_ms: float) -> float:
    """How much slower the machine ran the service in a phase than in the baseline (>= 1).

    A busy machine does not only add waiting (which the control's median cancels): it runs
    every instruction slower, so an operation's own cost grows by the same factor the
    control's latency did. The baseline's own cost is scaled by it before the comparison;
    1 when there is no control.
    """
    if base_control_ms <= 0 or phase_control_ms <= 0:
        return 1.0
    return max(1.0, phase_control_ms / base_control_ms)


def burst_windows(samples: Sequence[Sample]) -> list[tuple[float, float]]:
    """The intervals in which the harness's write bursts ran (merged across instances)."""
    spans = sorted((s.t, s.end) for s in samples if s.source == BURST)
    windows: list[tuple[float, float]] = []
    for start, end in spans:
        if windows and start - windows[-1][1] <= BURST_GAP_S:
            windows[-1] = (windows[-1][0], max(windows[-1][1], end))
        else:
            windows.append((start, end))
    return windows


def _in_any(sample: Sample, windows: Sequence[tuple[float, float]]) -> bool:
    return any(start <= sample.end and sample.t <= end for start, end in windows)


def operation_latencies(samples: Sequence[Sample], phases: Sequence[Phase], slo: SloConfig,
                        notes: list[str]) -> list[OperationLatency]:
    """Every judged (operation, phase); operations without enough samples are noted, not judged.
    Requests that overlap the harness's own write bursts are left out (see the module's doc)."""
    windows = {phase.name: phase for phase in phases}
    if DURING not in windows:
        return []
    bursts = burst_windows(samples)
    by_op: dict[str, list[Sample]] = defaultdict(list)
    controls: dict[str, list[Sample]] = defaultdict(list)
    left_out = 0
    for sample in samples:
        if sample.kind != API or not sample.ok:
            continue
        if bursts and _in_any(sample, bursts):
            left_out += 1
            continue
        if sample.source in SOURCES:
            by_op[f"{sample.target} {sample.op}"].append(sample)
        elif sample.source == SAMPLER and sample.conn == "reused":
            controls[sample.target].append(sample)

    def control_ms(target: str, phase: Phase) -> float:
        inside = [s for s in controls.get(target, []) if phase.contains(s.t)]
        return _median_ms(inside) if len(inside) >= slo.api_latency_min_samples else 0.0

    judged: list[OperationLatency] = []
    unjudged: list[str] = []
    for operation, group in sorted(by_op.items()):
        target = group[0].target
        baseline = [s for s in group if windows[BEFORE].contains(s.t)]
        if len(baseline) < slo.api_latency_min_samples:
            unjudged.append(f"{operation} ({len(baseline)})")
            continue
        base_ms = _median_ms(baseline)
        base_p75 = percentile(sorted(s.latency for s in baseline), BASELINE_QUANTILE) * 1000
        base_control = control_ms(target, windows[BEFORE])
        base_own = base_p75 - base_control
        limit_ms = max(slo.api_latency_floor_ms, (slo.api_latency_ratio - 1) * base_ms)
        for name in (DURING, AFTER):
            phase = windows.get(name)
            inside = [s for s in group if phase is not None and phase.contains(s.t)]
            if phase is None or len(inside) < slo.api_latency_min_samples:
                continue
            median_ms = _median_ms(inside)
            phase_control = control_ms(target, phase)
            growth = (median_ms - phase_control) - base_own * contention(base_control, phase_control)
            slowest = tuple(sorted(inside, key=lambda s: -s.latency)[:5])
            judged.append(OperationLatency(operation, name, base_ms, len(baseline), median_ms,
                                           len(inside), limit_ms, growth, (phase.start, phase.end), slowest,
                                           base_p75))
    if left_out:
        notes.append(f"api_latency: {left_out} API request(s) left out: they ran during the harness's own "
                     f"write bursts ({len(bursts)} burst(s), {sum(b - a for a, b in bursts):.1f} s)")
    if unjudged:
        notes.append(f"api_latency: too few baseline samples (need {slo.api_latency_min_samples}) to judge "
                     + ", ".join(unjudged))
    return judged

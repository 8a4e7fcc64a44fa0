"""SLO evaluation over the timeline: every violation cites the events proving it.

The four promises (defaults in ``SloConfig``): no failed API request, no lost
write, no data-plane gap per instance longer than 500 ms, and an API p99 during
the upgrade within 3x the baseline p99. The p99 comparison uses the samplers'
requests only: their mix is constant, so "before" and "during" compare like with
like, whereas the users' mix (list vs create-and-wait) is random.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.checks.attribution import owning_steps, placements
from harness.checks.dataplane import dataplane_failures
from harness.checks.latency import OperationLatency, operation_latencies
from harness.checks.lost_writes import LostWrite, lost_writes
from harness.checks.outages import EVIDENCE_LIMIT, DataPlaneGap, Outage, compute_outages, data_plane_gaps
from harness.checks.phases import BEFORE, DURING, latency_by_phase, percentile, phases_of
from harness.checks.samples import API, SAMPLER, VERIFY, Sample, samples_of
from harness.report.releases import StepSpan, step_spans
from harness.traffic.config import SloConfig

FAILED_API = "failed_api_requests"
LOST_WRITES = "lost_writes"
DATAPLANE_GAP = "dataplane_gap"
API_P99 = "api_p99"
DATAPLANE_FAILED = "dataplane_failed"
API_LATENCY = "api_latency"


@dataclass(frozen=True)
class Violation:
    """One broken promise: which SLO, where, when, what error, and the events."""

    slo: str
    target: str
    message: str
    window: tuple[float, float] | None
    error: str | None
    evidence: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "slo": self.slo, "target": self.target, "message": self.message,
            "window": [round(w, 6) for w in self.window] if self.window else None,
            "error": self.error, "evidence": self.evidence,
        }


@dataclass
class SloReport:
    """What the checks found; ``passed`` decides the exit code (0 / 1)."""

    violations: list[Violation]
    outages: list[Outage]
    gaps: dict[str, list[DataPlaneGap]]
    lost: list[LostWrite]
    acknowledged_writes: int
    latency: dict[str, dict[str, Any]]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    operations: list[OperationLatency] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": "PASS" if self.passed else "FAIL",
            "violations": [v.to_dict() for v in self.violations],
            "counts": self.counts,
            "outages": len(self.outages),
            "longest_dataplane_gap_ms": {
                target: round(gaps[0].duration_s * 1000, 1) for target, gaps in self.gaps.items() if gaps
            },
            "dataplane_gaps": {t: [g.to_row() for g in gaps] for t, gaps in self.gaps.items()},
            "acknowledged_writes": self.acknowledged_writes,
            "lost_writes": [{"target": w.target, "key": w.key, "error": w.error} for w in self.lost],
            "latency": self.latency,
            "operation_latency": [o.to_row() for o in self.operations],
            "notes": self.notes,
        }


def _failed_api(samples: Sequence[Sample], outages: Sequence[Outage]) -> list[Violation]:
    violations = [
        Violation(FAILED_API, outage.target,
                  f"{outage.requests} failed API requests on {outage.target} for {outage.duration_s:.3f} s",
                  (outage.start, outage.end), outage.error,
                  [s.cite() for s in outage.failed[:EVIDENCE_LIMIT]])
        for outage in outages if outage.kind == API
    ]
    by_op: dict[tuple[str, str, str], list[Sample]] = defaultdict(list)
    for sample in samples:
        if sample.kind == API and not sample.ok and sample.source != SAMPLER:
            by_op[(sample.target, sample.op, sample.error or "")].append(sample)
    for (target, op, error), failed in sorted(by_op.items()):
        violations.append(Violation(
            FAILED_API, target, f"{len(failed)} failed {op} requests on {target}",
            (failed[0].t, max(s.end for s in failed)), error, [s.cite() for s in failed[:EVIDENCE_LIMIT]]))
    return violations


def _lost_writes(lost: Sequence[LostWrite]) -> list[Violation]:
    """One violation per instance (a dead instance loses hundreds of keys: one line, not 766)."""
    by_target: dict[str, list[LostWrite]] = defaultdict(list)
    for write in lost:
        by_target[write.target].append(write)
    violations = []
    for target, writes in sorted(by_target.items()):
        writes.sort(key=lambda w: w.write.t)
        first = writes[0]
        keys = first.key if len(writes) == 1 else f"{len(writes)} acknowledged writes ({first.key} first)"
        what = f"acknowledged write {keys}" if len(writes) == 1 else keys
        end = max((w.verify.end if w.verify else w.write.end) for w in writes)
        evidence = [cited for w in writes[:EVIDENCE_LIMIT] for cited in w.evidence()]
        violations.append(Violation(LOST_WRITES, target, f"{what} on {target} lost",
                                    (first.write.t, end), first.error, evidence))
    return violations


def _dataplane_failed(samples: Sequence[Sample], outages: Sequence[Outage]) -> list[Violation]:
    violations = []
    for group in dataplane_failures(samples, outages):
        refused = sum(o.duration_s for o in group.outages)
        during = (f" in {len(group.outages)} outage(s) totalling {refused * 1000:.0f} ms"
                  if group.outages else "")
        violations.append(Violation(
            DATAPLANE_FAILED, group.key,
            f"{len(group.failed)} failed data-plane requests on {group.key}{during}",
            group.window, group.error, group.evidence()))
    return violations


def _api_p99(samples: Sequence[Sample], phases: Sequence[Any], slo: SloConfig,
             notes: list[str]) -> list[Violation]:
    windows = {phase.name: phase for phase in phases}
    if DURING not in windows:
        notes.append("api_p99: no executor step in the timeline, nothing to compare with the baseline")
        return []
    probes = [s for s in samples if s.kind == API and s.source == SAMPLER and s.ok]
    baseline = sorted(s.latency for s in probes if windows[BEFORE].contains(s.t))
    during = [s for s in probes if windows[DURING].contains(s.t)]
    if len(baseline) < slo.baseline_min_samples or not during:
        notes.append(f"api_p99: {len(baseline)} baseline and {len(during)} upgrade samples, "
                     f"need >= {slo.baseline_min_samples} and >= 1: not evaluated")
        return []
    base_p99 = percentile(baseline, 0.99)
    during_p99 = percentile(sorted(s.latency for s in during), 0.99)
    limit = max(slo.api_p99_ratio * base_p99, slo.api_p99_floor_ms / 1000)
    if during_p99 <= limit:
        return []
    slowest = sorted(during, key=lambda s: -s.latency)[:EVIDENCE_LIMIT]
    return [Violation(
        API_P99, "api",
        f"API p99 during the upgrade {during_p99 * 1000:.1f} ms > {limit * 1000:.1f} ms "
        f"({slo.api_p99_ratio:g} x baseline p99 {base_p99 * 1000:.1f} ms)",
        (windows[DURING].start, windows[DURING].end), None, [s.cite() for s in slowest])]


def _api_latency(operations: Sequence[OperationLatency], slo: SloConfig) -> list[Violation]:
    return [Violation(
        API_LATENCY, o.operation,
        f"{o.operation} {o.growth_ms:.1f} ms slower {o.phase} the upgrade than before it (median "
        f"{o.baseline_ms:.1f} -> {o.median_ms:.1f} ms, baseline p75 {o.baseline_p75_ms:.1f} ms, over "
        f"{o.baseline_count} and {o.count} requests, "
        f"beyond what the same service's version document slowed down); limit {o.limit_ms:.1f} ms "
        f"({slo.api_latency_ratio:g} x baseline, at least {slo.api_latency_floor_ms:g} ms)",
        o.window, None, [s.cite() for s in o.slowest]) for o in operations if o.regressed]


def _annotate_stalls(violation: Violation, stalls: Sequence[tuple[float, float]]) -> Violation:
    """Say so when a violation's window overlaps a freeze of the measuring process."""
    if violation.window is None:
        return violation
    overlapping = [(a, b) for a, b in stalls if a < violation.window[1] and b > violation.window[0]]
    if not overlapping:
        return violation
    frozen = sum(b - a for a, b in overlapping)
    return Violation(violation.slo, violation.target,
                     f"{violation.message} (overlaps {frozen * 1000:.0f} ms of harness stall)",
                     violation.window, violation.error,
                     [*violation.evidence,
                      {"harness_stalls": [[round(a, 6), round(b, 6)] for a, b in overlapping]}])


def _step_label(span: StepSpan) -> str:
    where = "/".join(part for part in (span.host, span.service) if part)
    label = f"{span.step_id} {span.name}" + (f" {where}" if where else "")
    return label + (" (rollback)" if span.direction == "rollback" else "")


def _annotate_steps(violation: Violation, spans: Sequence[StepSpan],
                    hosts: Mapping[str, set[str]]) -> Violation:
    """Name the executor steps a violation happened during (what the cloud was doing then) and
    the steps on the host or service its target belongs to (what most likely broke it)."""
    if violation.window is None or violation.slo in (API_P99, API_LATENCY):
        return violation
    start, end = violation.window
    # A lost write's window runs from its write to the final read-back: every step overlaps it,
    # and what broke it is anything before the read-back. Other windows start with the symptom:
    # the steps that belong to the target and had started by then are the suspects.
    lost = violation.slo == LOST_WRITES
    during = [] if lost else [_step_label(s) for s in spans
                              if s.start <= end and (s.end is None or s.end >= start)]
    suspects = owning_steps(violation.target, spans, hosts, end if lost else start)
    owners = [_step_label(s) for s in suspects]
    message = violation.message
    if during:
        more = f" and {len(during) - 3} more" if len(during) > 3 else ""
        message += " during " + ", ".join(during[:3]) + more
    if owners:
        message += f"; {violation.target.split('/', 1)[0]} belongs to " + ", ".join(owners[:3])
    if message == violation.message:
        return violation
    evidence = [*violation.evidence, {"belongs_to_steps": owners[:5]}] if owners else violation.evidence
    return Violation(violation.slo, violation.target, message, violation.window, violation.error, evidence)


def _stall_overlap(start: float, end: float, stalls: Sequence[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in stalls)


def _gap_violation(target: str, target_gaps: Sequence[Any], stalls: Sequence[tuple[float, float]],
                   slo: SloConfig, notes: list[str]) -> Violation | None:
    """The data-plane gap violation of ``target``, if any.

    A silent gap (no request failed in it) is time in which the cloud did
    not answer *while we were asking*: the part of it during which the
    traffic process itself was frozen (a recorded harness stall) sent no
    request, so it is the harness's silence, not the cloud's. A gap with a
    failed request in it is counted whole.
    """
    limit = slo.max_dataplane_gap_ms / 1000
    worst, worst_effective = None, 0.0
    for gap in target_gaps:
        silent = all(sample.ok for sample in gap.inside)
        frozen = _stall_overlap(gap.start, gap.end, stalls) if silent else 0.0
        effective = gap.duration_s - frozen
        if effective > worst_effective:
            worst, worst_effective = gap, effective
    longest = target_gaps[0] if target_gaps else None
    if worst is not None and worst_effective > limit:
        frozen_ms = (worst.duration_s - worst_effective) * 1000
        stalled = f", {frozen_ms:.0f} ms of it a harness stall" if frozen_ms >= 1 else ""
        return Violation(
            DATAPLANE_GAP, target,
            f"data plane of {target} answered nothing for {worst.duration_s * 1000:.0f} ms "
            f"(limit {slo.max_dataplane_gap_ms:g} ms{stalled})",
            (worst.start, worst.end), worst.error, worst.evidence())
    if longest is not None and longest.duration_s > limit:
        notes.append(f"data plane of {target}: a {longest.duration_s * 1000:.0f} ms silent gap is "
                     f"{worst_effective * 1000:.0f} ms once the harness's own stall is taken out: "
                     "within the budget")
    return None


def evaluate(numbered: Sequence[tuple[int, dict[str, Any]]], slo: SloConfig,
             window: tuple[float, float] | None = None, gap_report_ms: float = 100.0) -> SloReport:
    """Judge the request events of ``numbered`` (restricted to ``window`` if given)."""
    if window is not None:
        numbered = [(n, e) for n, e in numbered if window[0] <= float(e.get("t", 0.0)) <= window[1]]
    samples = samples_of(numbered)
    notes: list[str] = []
    if window is None:
        window = (min((s.t for s in samples), default=0.0), max((s.end for s in samples), default=0.0))
    outages = compute_outages(samples)
    gaps = data_plane_gaps(samples, gap_report_ms)
    lost, acknowledged = lost_writes(samples)
    phases = phases_of((e for _, e in numbered), window[0], window[1] + 1e-9)
    violations: list[Violation] = []

    failed_api = [s for s in samples if s.kind == API and not s.ok]
    if len(failed_api) > slo.max_failed_api_requests:
        violations.extend(_failed_api(samples, outages))
    if len(lost) > slo.max_lost_writes:
        violations.extend(_lost_writes(lost))
    abandoned = [e for _, e in numbered if e.get("kind") == "verify_abandoned"]
    for event in abandoned:
        notes.append(f"read-back of {event.get('target')} gave up with {event.get('keys_left')} keys "
                     f"left: {event.get('reason')}; they count as lost (never read back)")
    failed_dataplane = [s for s in samples if s.kind != API and s.source != VERIFY and not s.ok]
    if len(failed_dataplane) > slo.max_failed_dataplane_requests:
        violations.extend(_dataplane_failed(samples, outages))
    stalls = [(float(e["t"]), float(e["end"])) for _, e in numbered if e.get("kind") == "harness_stall"]
    for target, target_gaps in gaps.items():
        violation = _gap_violation(target, target_gaps, stalls, slo, notes)
        if violation is not None:
            violations.append(violation)
    violations.extend(_api_p99(samples, phases, slo, notes))
    operations = operation_latencies(samples, phases, slo, notes)
    violations.extend(_api_latency(operations, slo))
    spans = step_spans(e for _, e in numbered)
    hosts = placements(e for _, e in numbered)
    violations = [_annotate_steps(v, spans, hosts) for v in violations]
    if stalls:
        longest = max(end - start for start, end in stalls)
        notes.append(f"the traffic process itself froze {len(stalls)} times "
                     f"(longest {longest * 1000:.0f} ms): requests in flight then were delayed "
                     "by the harness, not the cloud")
        violations = [_annotate_stalls(v, stalls) for v in violations]
    counts = {
        "requests": len(samples),
        "api_requests": sum(1 for s in samples if s.kind == API),
        "failed_api_requests": len(failed_api),
        "dataplane_requests": sum(1 for s in samples if s.kind != API),
        "failed_dataplane_requests": len(failed_dataplane),
    }
    return SloReport(violations, outages, gaps, lost, acknowledged,
                     latency_by_phase(samples, phases), counts, notes, operations)

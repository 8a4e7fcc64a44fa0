"""Data-plane failures judged per instance and connection type (``slo.dataplane_failed``).

Users of an instance reach it on new connections, on reused (pooled)
connections, and as the writer (reused, PUT then GET). Each is a channel: a
working reused connection says nothing about new connections being refused
(an established flow survives a forwarder that stopped listening), so
failures and gaps are judged per ``(instance, channel)``, never merged.
The final read-back (``source: verify``) is judged by ``slo.lost_writes``;
the migration write bursts (``source: burst``) by their own channel here.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from harness.checks.outages import EVIDENCE_LIMIT, Outage
from harness.checks.samples import DATAPLANE, VERIFY, Sample, channel_key


@dataclass(frozen=True)
class DataPlaneFailures:
    """The failed requests of one instance on one channel, and the outages they form."""

    key: str
    failed: list[Sample]
    outages: list[Outage]

    @property
    def window(self) -> tuple[float, float]:
        return self.failed[0].t, max(s.end for s in self.failed)

    @property
    def error(self) -> str:
        errors: dict[str, int] = defaultdict(int)
        for sample in self.failed:
            errors[sample.error or "unknown error"] += 1
        return max(errors.items(), key=lambda item: item[1])[0]

    def evidence(self) -> list[dict[str, object]]:
        cited: list[dict[str, object]] = [s.cite() for s in self.failed[:EVIDENCE_LIMIT]]
        cited += [{"outage": o.to_row()} for o in self.outages[:EVIDENCE_LIMIT]]
        return cited


def dataplane_failures(samples: Sequence[Sample], outages: Sequence[Outage]) -> list[DataPlaneFailures]:
    """Per ``instance/channel`` with at least one failed request (the read-back excluded)."""
    failed: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        if sample.kind == DATAPLANE and sample.source != VERIFY and not sample.ok:
            failed[channel_key(sample)].append(sample)
    result = []
    for key, group in sorted(failed.items()):
        group.sort(key=lambda s: s.t)
        mine = [o for o in outages if o.kind == DATAPLANE and o.target == key]
        result.append(DataPlaneFailures(key, group, mine))
    return result

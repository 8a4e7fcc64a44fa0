"""Lost writes: acknowledged data-plane writes that the final read-back did not find.

A write is acknowledged when the instance answered 2xx to ``PUT /kv/<key>``
(its event has ``op: write, ok: true``). At the end of traffic the harness reads
every acknowledged key back (``op: verify``); a key whose read-back failed, or
that was never read back, is data loss, named by instance and key.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.checks.samples import DATAPLANE, VERIFY, Sample

WRITE = "write"


@dataclass(frozen=True)
class LostWrite:
    target: str
    key: str
    write: Sample
    verify: Sample | None

    @property
    def error(self) -> str:
        if self.verify is None:
            return "acknowledged write was never read back"
        return self.verify.error or "read back failed"

    def evidence(self) -> list[dict[str, Any]]:
        cited = [self.write.cite()]
        if self.verify is not None:
            cited.append(self.verify.cite())
        return cited


def lost_writes(samples: Iterable[Sample]) -> tuple[list[LostWrite], int]:
    """(every lost write, number of acknowledged writes) from the timeline's samples."""
    acknowledged: dict[tuple[str, str], Sample] = {}
    verified: dict[tuple[str, str], Sample] = {}
    for sample in samples:
        if sample.kind != DATAPLANE or sample.key is None:
            continue
        identity = (sample.target, sample.key)
        if sample.source != VERIFY and sample.op == WRITE and sample.ok:
            acknowledged.setdefault(identity, sample)
        elif sample.source == VERIFY:
            previous = verified.get(identity)
            if previous is None or not previous.ok:  # any successful read-back proves the key
                verified[identity] = sample
    lost = [
        LostWrite(target, key, write, verified.get((target, key)))
        for (target, key), write in sorted(acknowledged.items())
        if not (verified.get((target, key)) and verified[(target, key)].ok)
    ]
    return lost, len(acknowledged)

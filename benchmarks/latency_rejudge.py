"""Re-judge ``slo.api_latency`` of finished runs with this checkout's code, and compare.

``slo.api_latency`` is a pure function of a run's timeline, so a change to how it judges can be
measured on runs already made (a catalog's, say) instead of running them again:

    python benchmarks/latency_rejudge.py results/catalog/runs

prints, for every run directory below the given ones, the check's status recorded in its
``verdict.json`` and the status this code gives, then the totals per kind of run (``clean``
runs must pass, the catalog's performance defects must still fail). The SLO settings are the
defaults (no scenario of the catalog sets the ``api_latency_*`` fields).
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from harness.checks.samples import numbered_events
from harness.checks.slo import API_LATENCY, evaluate
from harness.traffic.config import SloConfig

CHECK = f"slo.{API_LATENCY}"


def recorded(run: Path) -> str:
    verdict = json.loads((run / "verdict.json").read_text())
    return next((c["status"] for c in verdict.get("checks", []) if c["id"] == CHECK), "absent")


def rejudged(run: Path) -> tuple[str, str]:
    numbered = list(numbered_events(run / "timeline.jsonl"))
    gate = [float(e["t"]) for _, e in numbered if e.get("kind") == "gate"]
    observed = [float(e["t"]) for _, e in numbered if e.get("kind") == "observe"]
    window = (min(gate), max(observed)) if gate and observed else None
    report = evaluate(numbered, SloConfig(), window=window)
    failed = [v for v in report.violations if v.slo == API_LATENCY]
    return ("failed" if failed else "passed"), (failed[0].message if failed else "")


def main(roots: list[str]) -> int:
    runs = sorted({p.parent for root in roots for p in Path(root).glob("**/timeline.jsonl")
                   if (p.parent / "verdict.json").exists()})
    if not runs:
        print("no run directory (timeline.jsonl + verdict.json) below " + ", ".join(roots), file=sys.stderr)
        return 2
    totals: Counter[tuple[str, str, str]] = Counter()
    for run in runs:
        kind = "clean" if "-clean-" in run.name else run.name.removeprefix("cat-").rsplit("-", 1)[0]
        before = recorded(run)
        after, why = rejudged(run)
        totals[(kind if kind == "clean" else "defect " + kind, before, after)] += 1
        if before != after:
            print(f"{run.name}: {before} -> {after} {why[:160]}")
    print(f"{'runs':<44} {'recorded':<9} {'rejudged':<9} count")
    for (kind, before, after), count in sorted(totals.items()):
        print(f"{kind:<44} {before:<9} {after:<9} {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["results/catalog/runs"]))

"""Benchmark: a gate run of rolling-upgrade, from `rollgate run` to its verdict.

    .venv/bin/python benchmarks/gate_bench.py [--scenario scenarios/rolling-upgrade.yaml]
                                              [--backend process] [--repeat 1]

Prints, per run, the wall time to the verdict and its stages (deploy, the
resource phases, the executor, the judging and reports, the cleanup), read
from the run's timeline and verdict, and checks the targets: rolling-upgrade to
verdict <= 40 s on the process backend (issue 11: the checks added for detection
power must not slow the everyday run; issue 6 asked <= 90 s), <= 5 min on Docker
with cached images. Results go to a temporary directory; every cloud is
destroyed.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.gate import GateOptions, prepare, run_gate
from harness.timeline import read_events

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"process": 40.0, "docker": 300.0}


def stages(run_dir: Path) -> dict[str, float]:
    """Seconds of each stage, from the timeline's gate, resources and step events."""
    events = list(read_events(run_dir / "timeline.jsonl"))
    first = {}
    last = {}
    for event in events:
        kind = event.get("kind")
        key = {"step": "executor", "resources": f"resources.{event.get('name')}"}.get(str(kind))
        if key is None:
            continue
        first.setdefault(key, float(event["t"]))
        last[key] = float(event["t"])
    return {k: round(last[k] - first[k], 2) for k in first}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "rolling-upgrade.yaml"))
    parser.add_argument("--backend", default="process", choices=sorted(TARGETS))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("ROLLGATE_RESULTS", tempfile.mkdtemp(prefix="rollgate-bench-"))
    worst = 0.0
    for attempt in range(1, args.repeat + 1):
        run_id = f"bench-{secrets.token_hex(3)}"
        options = GateOptions(backend=args.backend, run_id=run_id)
        began = time.monotonic()
        run = prepare(args.scenario, options, run_id)
        verdict = run_gate(run, options, lambda line: None)
        total = time.monotonic() - began
        worst = max(worst, total)
        deploy_s = run.state.extra.get("deploy_seconds")
        print(f"run {attempt}: {verdict.verdict} in {total:.1f} s to verdict (deploy {deploy_s} s; "
              + ", ".join(f"{k} {v} s" for k, v in stages(run.run_dir).items()) + ")")
        print(f"  {verdict.recap()}")
    target = TARGETS[args.backend]
    print(f"{Path(args.scenario).stem} on {args.backend}: worst {worst:.1f} s to verdict; "
          f"target <= {target:.0f} s: {'met' if worst <= target else 'MISSED'}")
    return 0 if worst <= target else 1


if __name__ == "__main__":
    sys.exit(main())

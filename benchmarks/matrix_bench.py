"""Benchmark: the nightly matrix, from `rollgate matrix` to index.html.

    .venv/bin/python benchmarks/matrix_bench.py [--scenario FILE ...] [--workers 2]
                                                [--backend process]

By default the 12-cell matrix of issue 6: rolling-upgrade, failed-upgrade-rollback
and mixed-version-hold over the four valid pairs of the default releases
(1.0 -> 1.1, 1.0 -> 1.1.1, 1.1 -> 1.1.1, 1.1 -> 2.0), two pytest-xdist
workers. Prints the wall time, the load average before and after (the machine
is shared: the figure is an upper bound when others run), each cell's verdict
and its time to verdict (from its timeline), and checks the target: a 12-cell
matrix <= 15 min on a 2-core machine. Results go to a temporary directory
(``--keep DIR`` keeps them); every cloud is destroyed by the gate itself.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.timeline import read_events

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIOS = ("rolling-upgrade", "failed-upgrade-rollback", "mixed-version-hold")
TARGET_S = 15 * 60.0


def cell_seconds(run_dir: Path) -> float | None:
    """Seconds from the gate's start event to its end event."""
    timeline = run_dir / "timeline.jsonl"
    if not timeline.exists():
        return None
    gate = {e.get("phase"): e["t"] for e in read_events(timeline) if e.get("kind") == "gate"}
    return gate["end"] - gate["start"] if {"start", "end"} <= gate.keys() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", default=None)
    parser.add_argument("--workers", default="2")
    parser.add_argument("--backend", default="process")
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the results here (kept) instead of a temporary directory")
    args = parser.parse_args()
    scenarios = args.scenario or [str(ROOT / "scenarios" / f"{n}.yaml") for n in DEFAULT_SCENARIOS]
    with tempfile.TemporaryDirectory(prefix="rollgate-matrix-bench-") as scratch:
        tmp = str(args.keep.resolve()) if args.keep else scratch
        out = Path(tmp) / "matrix"
        command = [sys.executable, "-m", "harness.cli", "matrix", "--output", str(out),
                   "-n", args.workers, "--backend", args.backend]
        for scenario in scenarios:
            command += ["--scenario", scenario]
        load_before = os.getloadavg()
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, env={**os.environ, "ROLLGATE_RESULTS": tmp},
                              capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        load_after = os.getloadavg()
        matrix = json.loads((out / "matrix.json").read_text()) if (out / "matrix.json").exists() else None
        if matrix is None:
            print(done.stdout[-3000:], done.stderr[-3000:])
            print("ERROR: no matrix.json")
            return 2
        cells = matrix["cells"]
        print(f"matrix: {len(cells)} cell(s), {args.workers} worker(s), backend {args.backend}, "
              f"exit {done.returncode}")
        for cell in sorted(cells, key=lambda c: (c["scenario"], c["from"], c["to"])):
            seconds = cell_seconds(out / "runs" / cell["run_id"])
            shown = f"{seconds:6.1f} s" if seconds is not None else "     ? s"
            print(f"  {cell['scenario']:<26} {cell['from']:>6} -> {cell['to']:<12} {cell['verdict']:<6} "
                  f"{shown}  {', '.join(cell['failing_checks'])}")
        print(f"wall: {wall:.0f} s ({wall / 60:.1f} min); load average before {load_before[0]:.1f}, "
              f"after {load_after[0]:.1f} ({os.cpu_count()} cores)")
        verdict = "met" if wall <= TARGET_S * len(cells) / 12 else "MISSED"
        print(f"target: 12 cells <= {TARGET_S / 60:.0f} min (scaled to {len(cells)} cells: "
              f"{TARGET_S * len(cells) / 12 / 60:.1f} min): {verdict}")
        return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark report generation: time and size of report.html for a big timeline.

Writes a synthetic run (tests/unit/report_synthetic.py: samplers, steps, an API
outage and a data-plane gap) of about ``--events`` requests, then times each
stage of ``write_reports``: reading the timeline, aggregating the chart data,
rendering the HTML, and the whole call (verdict.json + junit.xml + report.html).

    .venv/bin/python benchmarks/report_bench.py [--events 100000]

Target (the report brief): a 100k-event timeline stays a small page because
requests are bucketed server-side while every failure and outage stays exact.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.report import write_reports
from harness.report.chartdata import chart_data, read_timeline, summarize
from harness.report.html import render
from harness.report.tags import earned_tags
from tests.unit.report_synthetic import write_synthetic_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rollgate-report-bench-") as tmp:
        run_dir = Path(tmp)
        began = time.perf_counter()
        verdict = write_synthetic_run(run_dir, events=args.events)
        judged = time.perf_counter()
        timeline = run_dir / "timeline.jsonl"
        lines = sum(1 for _ in timeline.open())
        contents = read_timeline(timeline)
        read = time.perf_counter()
        data = chart_data(contents, verdict)
        aggregated = time.perf_counter()
        page = render(verdict, data, earned_tags([verdict]))
        rendered = time.perf_counter()
        paths = write_reports(run_dir, verdict)
        written = time.perf_counter()
        print(f"timeline: {lines} lines, {timeline.stat().st_size / 1e6:.1f} MB; {summarize(data)}")
        print(f"synthetic run + checks (not report cost): {judged - began:.2f} s")
        print(
            f"read timeline: {read - judged:.2f} s; chart data: {aggregated - read:.2f} s; "
            f"render html: {rendered - aggregated:.3f} s"
        )
        print(f"write_reports total (verdict.json, junit.xml, report.html): {written - rendered:.2f} s")
        print(
            f"report.html: {len(page.encode()) / 1024:.0f} KiB "
            f"({paths.html.stat().st_size / len(contents.samples):.1f} bytes per request); "
            f"junit.xml: {paths.junit.stat().st_size / 1024:.1f} KiB; "
            f"verdict.json: {paths.verdict.stat().st_size / 1024:.1f} KiB"
        )


if __name__ == "__main__":
    main()

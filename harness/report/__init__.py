"""Reports of a run: verdict.json and junit.xml for machines, report.html for people, the matrix index.

``write_reports(run_dir, verdict)`` is what a run calls at its end;
``rollgate report RUN_DIR`` calls ``render_run_dir`` to rebuild junit.xml and
report.html from a run directory's verdict.json and timeline.jsonl.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.report.chartdata import chart_data, read_timeline
from harness.report.html import render
from harness.report.tags import earned_tags
from harness.report.writers import (
    JUNIT_FILE,
    VERDICT_FILE,
    read_verdict,
    write_atomically,
    write_junit,
    write_verdict,
)
from harness.verdict import Verdict

REPORT_FILE = "report.html"
TIMELINE_FILE = "timeline.jsonl"

__all__ = [
    "JUNIT_FILE",
    "REPORT_FILE",
    "VERDICT_FILE",
    "ReportPaths",
    "read_verdict",
    "render_run_dir",
    "write_html",
    "write_reports",
]


@dataclass(frozen=True)
class ReportPaths:
    verdict: Path
    junit: Path
    html: Path


def write_html(verdict: Verdict, run_dir: Path) -> Path:
    """report.html from the verdict and the run's timeline.jsonl (an absent timeline draws an empty chart)."""
    contents = read_timeline(run_dir / TIMELINE_FILE)
    page = render(verdict, chart_data(contents, verdict), earned_tags([verdict]))
    return write_atomically(run_dir / REPORT_FILE, page.encode("utf-8"))


def write_reports(run_dir: Path, verdict: Verdict) -> ReportPaths:
    """Write verdict.json first (the gate reads it), then junit.xml, then report.html."""
    return ReportPaths(
        write_verdict(verdict, run_dir), write_junit(verdict, run_dir), write_html(verdict, run_dir)
    )


def render_run_dir(run_dir: Path) -> ReportPaths:
    """Re-render junit.xml and report.html from ``run_dir/verdict.json`` (left as it is)."""
    verdict = read_verdict(run_dir / VERDICT_FILE)
    return ReportPaths(run_dir / VERDICT_FILE, write_junit(verdict, run_dir), write_html(verdict, run_dir))

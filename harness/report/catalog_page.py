"""The defect catalog's results: one row per defect and per clean scenario, as JSON and HTML.

``CellResult`` is one run of one cell (a defect variant through its scenario,
or a clean scenario); ``summarize`` folds the runs of a cell into a row
(caught in every run? which checks failed?) and ``render_catalog`` draws the
page, each run linked to its own report.
"""
from __future__ import annotations

import html
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.writers import VERDICT_FILE, read_verdict

#: outcome -> colour on the page
COLOURS = {"caught": "#2e7d32", "pass": "#2e7d32", "missed": "#c62828", "other-check": "#ef6c00",
           "false-fail": "#c62828", "error": "#6a1b9a"}


@dataclass
class CellResult:
    """One run of one catalog cell, and what it gave."""

    kind: str  # "defect" | "clean"
    name: str  # the variant, or the clean scenario's stem
    defect_class: str
    scenario: str
    expected: str
    caught_by: str | None  # the check that must fail (defects)
    repeat: int
    cell: Path
    run_id: str
    seconds: float = 0.0
    exit_code: int | None = None
    run_dir: Path | None = None
    verdict: str = "ERROR"
    failing: list[str] = field(default_factory=list)
    problem: str | None = None

    def read_verdict(self, log: Path) -> None:
        """The run's verdict.json; a run that wrote none is an ERROR citing its log's last line."""
        try:
            verdict = read_verdict((self.run_dir or Path()) / VERDICT_FILE)
        except (OSError, ValueError, KeyError) as exc:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            self.verdict = "ERROR"
            self.problem = f"no verdict ({type(exc).__name__}); exit {self.exit_code}: {' '.join(tail)[:300]}"
            return
        self.verdict = verdict.verdict
        self.failing = [c.id for c in verdict.failing()]

    @property
    def outcome(self) -> str:
        """caught / missed / other-check (FAIL, but not by its check) for defects; pass / false-fail
        for clean runs; error when nothing was judged."""
        if self.verdict not in ("PASS", "FAIL"):
            return "error"
        if self.kind == "clean":
            return "pass" if self.verdict == "PASS" else "false-fail"
        if self.verdict == "PASS":
            return "missed"
        return "caught" if self.caught_by in self.failing else "other-check"

    def to_dict(self, out_dir: Path) -> dict[str, Any]:
        report = (Path(os.path.relpath(self.run_dir / "report.html", out_dir)).as_posix()
                  if self.run_dir is not None else None)
        return {"run_id": self.run_id, "repeat": self.repeat, "verdict": self.verdict,
                "outcome": self.outcome, "failing_checks": self.failing, "seconds": self.seconds,
                "exit_code": self.exit_code, "report": report, "problem": self.problem}


def summarize(cells: list[CellResult], catalog: Path, out_dir: Path, seconds: float) -> dict[str, Any]:
    """catalog.json: a row per defect and per clean scenario with all its runs, and the totals."""
    groups: dict[tuple[str, str], list[CellResult]] = defaultdict(list)
    for cell in cells:
        groups[(cell.kind, cell.name)].append(cell)
    rows = []
    for (kind, name), runs in groups.items():
        first = runs[0]
        good = [r for r in runs if r.outcome in ("caught", "pass")]
        verdicts = sorted({r.verdict for r in runs})
        got = " ".join(f"{v} {sum(r.verdict == v for r in runs)}/{len(runs)}" for v in verdicts)
        failing = sorted({c for r in runs for c in r.failing})
        caught_by = first.caught_by if kind == "defect" and len(good) == len(runs) else None
        rows.append({
            "kind": kind, "name": name, "class": first.defect_class, "scenario": first.scenario,
            "expected": first.expected, "got": got, "ok": len(good) == len(runs),
            "caught_by_check": caught_by or (", ".join(failing[:3]) if failing else None),
            "outcomes": [r.outcome for r in runs],
            "seconds": round(sum(r.seconds for r in runs) / len(runs), 1),
            "runs": [r.to_dict(out_dir) for r in runs],
        })
    defects = [r for r in rows if r["kind"] == "defect"]
    clean_runs = [c for c in cells if c.kind == "clean"]
    return {
        "catalog": str(catalog), "generated": time.time(), "seconds": round(seconds, 1),
        "totals": {"defects": len(defects), "defects_caught": sum(r["ok"] for r in defects),
                   "clean": len(clean_runs), "clean_passed": sum(c.outcome == "pass" for c in clean_runs),
                   "errors": sum(c.outcome == "error" for c in cells)},
        "rows": rows,
    }


def _run_link(run: dict[str, Any]) -> str:
    title = ", ".join(run["failing_checks"]) or run["problem"] or "PASS"
    return (f"<a style='background:{COLOURS.get(run['outcome'], '#999')}' "
            f"href='{html.escape(run['report'] or '#', quote=True)}' "
            f"title='{html.escape(title, quote=True)}'>"
            f"{html.escape(run['outcome'])}</a>")


def render_catalog(document: dict[str, Any]) -> str:
    """index.html: the table, each run a coloured link to its report."""
    body = []
    for row in document["rows"]:
        links = " ".join(_run_link(run) for run in row["runs"])
        body.append(
            f"<tr class='{'ok' if row['ok'] else 'bad'}'><td>{html.escape(row['name'])}</td>"
            f"<td>{html.escape(row['class'])}</td><td>{html.escape(Path(row['scenario']).stem)}</td>"
            f"<td>{html.escape(row['expected'])}</td><td>{html.escape(row['got'])}</td>"
            f"<td>{html.escape(row['caught_by_check'] or '-')}</td><td>{row['seconds']:.0f} s</td>"
            f"<td>{links}</td></tr>")
    totals = document["totals"]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(document["generated"]))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rollgate defect catalog</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 18px; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #ccc; padding: 5px 9px; }}
tr.bad td:first-child {{ border-left: 4px solid #c62828; }}
td a {{ color: #fff; padding: 1px 6px; border-radius: 3px; text-decoration: none; }}
</style></head><body>
<h1>rollgate defect catalog</h1>
<p>{html.escape(document['catalog'])}, generated {stamp} in {document['seconds']:.0f} s:
<b>{totals['defects_caught']}/{totals['defects']}</b> defects caught by their check in every run,
<b>{totals['clean_passed']}/{totals['clean']}</b> clean runs PASS, {totals['errors']} ERROR run(s).</p>
<table id="catalog"><tr><th>variant</th><th>class</th><th>scenario</th><th>expected</th><th>got</th>
<th>caught by</th><th>time</th><th>runs</th></tr>
{"".join(body)}
</table></body></html>
"""

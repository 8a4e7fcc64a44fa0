"""The nightly matrix index: from-release x to-release x scenario, one cell per run, linked and coloured.

``build_matrix(run_dirs, out_dir)`` reads each run directory's verdict.json
and writes ``out_dir/index.html`` (rows: "from -> to"; columns: scenarios; a
cell links to its run's report.html by a relative path and is coloured by its
verdict) and ``out_dir/matrix.json`` (the same cells, plus the upgrade tags
earned over all runs). When a cell ran more than once the newest run is
shown and the others are counted, so a flaky cell is visible. A directory
without a readable verdict.json is an ERROR cell, not a silently missing one.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report.tags import TagResult, earned_tags, tags_to_dict
from harness.report.writers import VERDICT_FILE, read_verdict, write_atomically
from harness.verdict import ERROR, Verdict

INDEX_FILE = "index.html"
MATRIX_FILE = "matrix.json"
COLOURS = {"PASS": "#2e7d32", "FAIL": "#c62828", "ERROR": "#6a1b9a"}


@dataclass
class Cell:
    from_release: str
    to_release: str
    scenario: str
    verdict: str
    run_dir: Path
    run_id: str
    seed: int | None
    failing: list[str]
    wall: float
    runs: int = 1
    problem: str | None = None

    def link(self, out_dir: Path) -> str:
        """The report's path relative to the index, with forward slashes (a URL path, not an OS path)."""
        return Path(os.path.relpath(self.run_dir / "report.html", out_dir)).as_posix()

    def to_dict(self, out_dir: Path) -> dict[str, Any]:
        return {
            "from": self.from_release,
            "to": self.to_release,
            "scenario": self.scenario,
            "verdict": self.verdict,
            "run_id": self.run_id,
            "seed": self.seed,
            "runs": self.runs,
            "report": self.link(out_dir),
            "failing_checks": self.failing,
            "problem": self.problem,
        }


def _cell_of(run_dir: Path) -> tuple[Cell, Verdict | None]:
    try:
        verdict = read_verdict(run_dir / VERDICT_FILE)
    except (OSError, ValueError, KeyError) as exc:
        cell = Cell(
            "?",
            "?",
            run_dir.name,
            ERROR,
            run_dir,
            run_dir.name,
            None,
            [],
            0.0,
            problem=f"no readable {VERDICT_FILE}: {exc}",
        )
        return cell, None
    wall = (verdict.wall_offset or 0.0) + (verdict.window[0] if verdict.window else 0.0)
    cell = Cell(
        verdict.from_release or "?",
        verdict.to_release or "?",
        verdict.scenario,
        verdict.verdict,
        run_dir,
        verdict.run_id,
        verdict.seed,
        [c.id for c in verdict.failing()],
        wall,
    )
    return cell, verdict


def collect(run_dirs: Iterable[Path]) -> tuple[dict[tuple[str, str, str], Cell], list[Verdict]]:
    cells: dict[tuple[str, str, str], Cell] = {}
    verdicts: list[Verdict] = []
    for run_dir in sorted(Path(d) for d in run_dirs):
        cell, verdict = _cell_of(run_dir)
        if verdict is not None:
            verdicts.append(verdict)
        key = (cell.from_release, cell.to_release, cell.scenario)
        previous = cells.get(key)
        if previous is None or cell.wall >= previous.wall:
            cell.runs += previous.runs if previous else 0
            cells[key] = cell
        else:
            previous.runs += 1
    return cells, verdicts


def _release_key(release: str) -> tuple[tuple[int, int, str], ...]:
    """Numeric order of releases ("1.10" after "1.9"); "?" (unreadable run) sorts last."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in release.split("."))


def render_index(
    cells: dict[tuple[str, str, str], Cell], tags: dict[str, dict[str, TagResult]], out_dir: Path
) -> str:
    pairs = sorted({(f, t) for f, t, _ in cells}, key=lambda p: (_release_key(p[0]), _release_key(p[1])))
    scenarios = sorted({s for _, _, s in cells})
    head = "".join(f"<th>{html.escape(s)}</th>" for s in scenarios)
    rows = []
    for from_release, to_release in pairs:
        tds = []
        for scenario in scenarios:
            cell = cells.get((from_release, to_release, scenario))
            if cell is None:
                tds.append("<td class='none'>not run</td>")
                continue
            title = html.escape(cell.problem or (", ".join(cell.failing) or "all checks passed"), quote=True)
            runs = f" <small>({cell.runs} runs)</small>" if cell.runs > 1 else ""
            tds.append(
                f"<td style='background:{COLOURS.get(cell.verdict, '#999')}' title='{title}'>"
                f"<a href='{html.escape(cell.link(out_dir), quote=True)}'>{cell.verdict}</a>{runs}"
                f"<br><small>seed {cell.seed}</small></td>"
            )
        rows.append(
            f"<tr><th>{html.escape(from_release)} &rarr; {html.escape(to_release)}</th>{''.join(tds)}</tr>"
        )
    tag_rows = "".join(
        f"<tr><td>{html.escape(project)}</td>"
        + "".join(f"<td>{'earned' if r.earned else '-'}</td>" for r in row.values())
        + "</tr>"
        for project, row in tags.items()
    )
    tag_head = "".join(f"<th>{html.escape(t)}</th>" for t in next(iter(tags.values()), {}))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rollgate upgrade matrix</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 18px; }}
table {{ border-collapse: collapse; margin-bottom: 20px; }}
th, td {{ border: 1px solid #ccc; padding: 6px 10px; text-align: center; }}
td a {{ color: #fff; font-weight: 700; }} td small {{ color: #eee; }}
td.none {{ color: #999; background: #f4f4f4; }}
</style></head><body>
<h1>rollgate upgrade matrix</h1>
<p>{len(cells)} cells, generated {stamp}. Rows: from-release &rarr; to-release; columns: scenarios.</p>
<table id="matrix"><tr><th>upgrade</th>{head}</tr>{"".join(rows)}</table>
<h2>Upgrade tags earned</h2>
<table id="tags"><tr><th>project</th>{tag_head}</tr>{tag_rows}</table>
</body></html>
"""


def build_matrix(run_dirs: Iterable[Path], out_dir: Path) -> tuple[Path, Path]:
    """Write index.html and matrix.json for these run directories; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cells, verdicts = collect(run_dirs)
    tags = earned_tags(verdicts)
    document = {
        "generated": time.time(),
        "cells": [cell.to_dict(out_dir) for cell in cells.values()],
        "tags": tags_to_dict(tags),
    }
    json_path = write_atomically(out_dir / MATRIX_FILE, (json.dumps(document, indent=2) + "\n").encode())
    index_path = write_atomically(out_dir / INDEX_FILE, render_index(cells, tags, out_dir).encode())
    return index_path, json_path

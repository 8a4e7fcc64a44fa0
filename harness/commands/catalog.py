"""``rollgate catalog``: prove the gate's detection power on a catalog of broken releases.

A gate is worth the broken upgrades it stops. The catalog (a cloud's
``catalog.yaml``, minicloud's by default; see ``harness.defect_catalog``) lists
clean scenarios, each of which must PASS, and defect variants, each of which
must FAIL through its scenario with the check named for it among the failing
checks. Every run is a real ``rollgate run`` in its own process (the same gate
as everyone's), ``--workers`` at a time; ``--repeat`` runs each cell several
times (a defect caught 2 runs in 3 is not caught). Results: a table on the
console, ``catalog.json`` and ``index.html`` in the output directory, each
run's own reports under ``runs/``.

Exit 0 when every defect was caught by its check in every run and every clean
run PASSed; 1 when any defect was missed (PASS, or FAIL by another check
only) or a clean run FAILed (a false FAIL); 2 when any run was an ERROR (the
harness or the machine failed: nothing was judged) or the input was bad.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
import yaml

from harness.defect_catalog import MINICLOUD_CATALOG, Catalog, DefectEntry, load_catalog
from harness.errors import EXIT_ERROR, EXIT_FAIL, EXIT_PASS, UsageError, ValidationError
from harness.report.catalog_page import CellResult, render_catalog, summarize
from harness.report.writers import write_atomically
from harness.runstate import results_root
from harness.scenario.load import parse_scenario

REPO_ROOT = MINICLOUD_CATALOG.parents[2]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _scenario_path(name: str, catalog: Catalog) -> Path:
    """A catalog's scenario path: relative to the repository root (as written), else to the catalog."""
    for base in (REPO_ROOT, catalog.path.parent):
        candidate = base / name
        if candidate.is_file():
            return candidate
    raise ValidationError(str(catalog.path), name, "no such scenario file (paths are relative to the "
                          "repository root)")


def defect_cell(raw: dict[str, Any], defect: DefectEntry) -> dict[str, Any]:
    """The scenario with its target replaced by the defect's release (``1.1+NAME``)."""
    cell = copy.deepcopy(raw)
    cell["upgrade"]["to"] = defect.label
    return cell


def plan_cells(catalog: Catalog, cells_dir: Path, repeat: int, clean_repeat: int,
               only: tuple[str, ...]) -> list[CellResult]:
    """Write every cell's scenario file; return the cells (nothing run yet)."""
    cells_dir.mkdir(parents=True, exist_ok=True)
    cells: list[CellResult] = []
    wanted = set(only)
    unknown = wanted - {d.variant for d in catalog.defects} - {Path(c).stem for c in catalog.clean}
    if unknown:
        raise UsageError(f"--only: {', '.join(sorted(unknown))} is neither a defect variant nor a clean "
                         f"scenario of {catalog.path}")
    for name in catalog.clean:
        path = _scenario_path(name, catalog)
        if wanted and path.stem not in wanted:
            continue
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        parse_scenario(raw, str(path))  # bad input stops here, before anything runs
        for index in range(1, clean_repeat + 1):
            cell_path = cells_dir / f"clean--{path.stem}--{index}.yaml"
            cell_path.write_text(yaml.safe_dump(raw, sort_keys=False))
            cells.append(CellResult(kind="clean", name=path.stem, defect_class="-", scenario=name,
                                    expected="PASS", caught_by=None, repeat=index, cell=cell_path,
                                    run_id=f"cat-clean-{_slug(path.stem)[:24]}-{index}"))
    for defect in catalog.defects:
        if wanted and defect.variant not in wanted:
            continue
        path = _scenario_path(defect.scenario, catalog)
        cell = defect_cell(yaml.safe_load(path.read_text(encoding="utf-8")), defect)
        try:
            parse_scenario(cell, f"{catalog.path} ({defect.variant})")
        except ValidationError as exc:
            raise ValidationError(str(catalog.path), f"defects[{defect.variant}]",
                                  f"its scenario {defect.scenario} is invalid with to: {defect.label}: "
                                  f"{exc.field}: {exc.problem}") from exc
        for index in range(1, repeat + 1):
            cell_path = cells_dir / f"defect--{defect.variant}--{index}.yaml"
            cell_path.write_text(yaml.safe_dump(cell, sort_keys=False))
            cells.append(CellResult(kind="defect", name=defect.variant, defect_class=defect.defect_class,
                                    scenario=defect.scenario, expected=f"FAIL by {defect.caught_by}",
                                    caught_by=defect.caught_by, repeat=index, cell=cell_path,
                                    run_id=f"cat-{_slug(defect.variant)[:28]}-{index}"))
    return cells


def run_cell(cell: CellResult, runs_dir: Path, backend: str) -> CellResult:
    """One real gate run in its own process; the result read from its verdict.json."""
    log = runs_dir / f"{cell.run_id}.log"
    command = [sys.executable, "-m", "harness.cli", "run", str(cell.cell), "--backend", backend,
               "--run-id", cell.run_id]
    env = {**os.environ, "ROLLGATE_RESULTS": str(runs_dir)}
    started = time.monotonic()
    with log.open("wb") as output:
        done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, env=env, check=False)
    cell.seconds = round(time.monotonic() - started, 1)
    cell.exit_code = done.returncode
    cell.run_dir = runs_dir / cell.run_id
    cell.read_verdict(log)
    return cell


@click.command("catalog")
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Catalog file (default: minicloud's images/minicloud/catalog.yaml).")
@click.option("--repeat", type=click.IntRange(1, 20), default=1, show_default=True,
              help="Runs of each defect (each must be caught every time).")
@click.option("--clean-repeat", type=click.IntRange(0, 50), default=1, show_default=True,
              help="Runs of each clean scenario (each must PASS every time; 0: none).")
@click.option("--only", multiple=True, help="Run only these defect variants or clean scenarios (by name).")
@click.option("--workers", "-n", type=click.IntRange(1, 16), default=None,
              help="Runs at once (default: one per two cores; each run's own traffic process needs a "
                   "core to itself, or it measures the machine rather than the cloud).")
@click.option("--backend", type=click.Choice(["process", "docker"]), default="process", show_default=True)
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory (default: results/catalog).")
@click.option("--json", "as_json", is_flag=True, help="Print catalog.json instead of the table.")
def catalog_command(catalog_path: Path | None, repeat: int, clean_repeat: int, only: tuple[str, ...],
                    workers: int | None, backend: str, output: Path | None, as_json: bool) -> None:
    """Run every defect variant (must FAIL by its check) and clean scenario (must PASS)."""
    workers = workers or max(1, (os.cpu_count() or 2) // 2)
    catalog = load_catalog(catalog_path or MINICLOUD_CATALOG)
    out_dir = (output or results_root() / "catalog").resolve()
    runs_dir = out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    cells = plan_cells(catalog, out_dir / "cells", repeat, clean_repeat, only)
    if not cells:
        raise UsageError("nothing to run: the catalog is empty or --only matched nothing")
    taken = {c.run_id for c in cells if (runs_dir / c.run_id).exists()}
    if taken:
        raise UsageError(f"{out_dir} holds runs of an earlier catalog ({', '.join(sorted(taken)[:3])}...): "
                         "give another --output, or remove it")
    say = (lambda _line: None) if as_json else click.echo
    say(f"catalog: {len(cells)} run(s) of {catalog.path}, {workers} at a time; runs in {runs_dir}")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for cell in pool.map(lambda c: run_cell(c, runs_dir, backend), cells):
            say(f"  {cell.outcome:<8} {cell.kind:<6} {cell.name:<28} {cell.verdict:<5} "
                f"{', '.join(cell.failing[:3]) or '-'} ({cell.seconds:.0f} s)")
    document = summarize(cells, catalog.path, out_dir, time.monotonic() - started)
    json_path = write_atomically(out_dir / "catalog.json", (json.dumps(document, indent=2) + "\n").encode())
    index = write_atomically(out_dir / "index.html", render_catalog(document).encode())
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(render_table(document))
        click.echo(f"catalog: {json_path} and {index}")
    sys.exit(catalog_exit_code(cells))


def render_table(document: dict[str, Any]) -> str:
    """The console table: one row per defect (all its runs) and per clean scenario."""
    header = ("variant", "class", "scenario", "expected", "got", "caught by", "time")
    rows = [header]
    for row in document["rows"]:
        rows.append((row["name"], row["class"], Path(row["scenario"]).stem, row["expected"], row["got"],
                     row["caught_by_check"] or "-", f"{row['seconds']:.0f} s"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    totals = document["totals"]
    lines.append(f"{totals['defects_caught']}/{totals['defects']} defects caught by their check in every "
                 f"run; {totals['clean_passed']}/{totals['clean']} clean runs PASS; "
                 f"{totals['errors']} ERROR run(s); {document['seconds']:.0f} s")
    return "\n".join(lines)


def catalog_exit_code(cells: list[CellResult]) -> int:
    """2 if any run ERRORed (nothing judged), else 1 if any miss or false FAIL, else 0."""
    if any(c.outcome == "error" for c in cells):
        return EXIT_ERROR
    return EXIT_PASS if all(c.outcome in ("caught", "pass") for c in cells) else EXIT_FAIL


COMMANDS = [catalog_command]

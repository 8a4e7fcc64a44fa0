"""``rollgate matrix``: the nightly from-release x to-release x scenario matrix.

Each cell is a scenario file with its releases replaced (``upgrade.from``, and
``upgrade.to`` unless the scenario is a reboot); combinations the scenario
rules refuse (a skip-level upgrade, a downgrade) are left out and listed, and
so is an "upgrade" from a release to itself. A scenario with ``matrix:
own-releases`` (one release's defect, like security-update) is one cell at its
own releases, whatever pairs the matrix is given.
The cells run in parallel through pytest-xdist and the rollgate pytest plugin
(the same gate as ``rollgate run``), each in its own run directory under
``results/matrix/runs/``; then ``results/matrix/index.html`` and
``matrix.json`` are written from their verdicts. Exit 0 if every cell
PASSed, 1 if any FAILed, 2 if any ERRORed or nothing could run.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from harness.errors import EXIT_ERROR, EXIT_FAIL, EXIT_PASS, UsageError, ValidationError
from harness.report.matrix import build_matrix
from harness.runstate import results_root
from harness.scenario.load import parse_scenario

DEFAULT_SCENARIOS = Path("scenarios")


def cell_scenario(raw: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    """The scenario with its releases replaced (a variant target keeps its variant suffix)."""
    cell = copy.deepcopy(raw)
    upgrade = cell["upgrade"]
    variant = upgrade.get("to", "").partition("+")[2]
    upgrade["from"] = source
    if upgrade.get("action", "upgrade") == "reboot":
        upgrade.pop("to", None)
    else:
        upgrade["to"] = f"{target}+{variant}" if variant else target
    topology = cell.get("topology") or {}
    if "release" in topology:
        topology["release"] = source
    cell["name"] = f"{raw['name']}"
    return cell


def write_cells(scenarios: list[Path], sources: list[str], targets: list[str],
                cells_dir: Path) -> tuple[list[Path], list[str]]:
    """Write every valid cell file; return them and the refused combinations (why)."""
    cells_dir.mkdir(parents=True, exist_ok=True)
    written, refused = [], []
    for path in scenarios:
        raw = yaml.safe_load(path.read_text())
        if not isinstance(raw, dict) or "upgrade" not in raw:
            refused.append(f"{path}: no upgrade section")
            continue
        reboot = raw["upgrade"].get("action", "upgrade") == "reboot"
        for source, target in _pairs(raw, sources, targets, reboot):
            label = f"{path.stem}--{source}--{target}".replace("+", "-")
            if not reboot and source == target:
                refused.append(f"{label}: upgrade.to: {target} is the source release: not an upgrade")
                continue
            cell = cell_scenario(raw, source, target)
            try:
                parse_scenario(cell, f"{label}.yaml")
            except ValidationError as exc:
                refused.append(f"{label}: {exc.field}: {exc.problem}")
                continue
            target_path = cells_dir / f"{label}.yaml"
            target_path.write_text(yaml.safe_dump(cell, sort_keys=False))
            written.append(target_path)
    return written, refused


def _pairs(raw: dict[str, Any], sources: list[str], targets: list[str],
           reboot: bool) -> list[tuple[str, str]]:
    """(from, to) cells of one scenario: its own releases only, or every pair given."""
    upgrade = raw["upgrade"]
    if raw.get("matrix") == "own-releases":
        source = str(upgrade.get("from", ""))
        return [(source, source if reboot else str(upgrade.get("to", "")).partition("+")[0])]
    return [(s, t) for s in sources for t in ([s] if reboot else targets)]


@click.command("matrix")
@click.option("--from", "sources", multiple=True, default=("1.0", "1.1"), show_default=True,
              help="Source release(s).")
@click.option("--to", "targets", multiple=True, default=("1.1", "1.1.1", "2.0"), show_default=True,
              help="Target release(s).")
@click.option("--scenario", "scenarios", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Scenario file(s) (default: every scenarios/*.yaml).")
@click.option("--workers", "-n", default="2", show_default=True, help="pytest-xdist workers (or auto).")
@click.option("--backend", type=click.Choice(["process", "docker"]), default="process", show_default=True)
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Matrix directory (default: results/matrix).")
def matrix_command(sources: tuple[str, ...], targets: tuple[str, ...], scenarios: tuple[Path, ...],
                   workers: str, backend: str, output: Path | None) -> None:
    """Run every from x to x scenario cell in parallel; write index.html and matrix.json."""
    files = list(scenarios) or sorted(DEFAULT_SCENARIOS.glob("*.yaml"))
    if not files:
        raise UsageError("no scenarios: give --scenario FILE or run where scenarios/*.yaml exist")
    out_dir = (output or results_root() / "matrix").resolve()
    cells, refused = write_cells(files, list(sources), list(targets), out_dir / "cells")
    for reason in refused:
        click.echo(f"  not a cell: {reason}")
    if not cells:
        raise UsageError("no valid cell in this matrix (every combination was refused)")
    runs_dir = out_dir / "runs"
    click.echo(f"matrix: {len(cells)} cell(s), {workers} worker(s); runs in {runs_dir}")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
               "--rootdir", str(out_dir), "-c", "/dev/null", "--rollgate-collect-all",
               "--rollgate-backend", backend, "--rollgate-results", str(runs_dir),
               "--junitxml", str(out_dir / "junit.xml"), "-q", "-n", workers, *map(str, cells)]
    done = subprocess.run(command, check=False)
    run_dirs = [d for d in runs_dir.iterdir() if d.is_dir()] if runs_dir.is_dir() else []
    index, json_path = build_matrix(run_dirs, out_dir)
    click.echo(f"matrix: {index} and {json_path} (pytest exit {done.returncode})")
    sys.exit(matrix_exit_code(done.returncode, json.loads(json_path.read_text())["cells"], len(cells)))


def matrix_exit_code(pytest_code: int, cells: list[dict[str, Any]], expected: int) -> int:
    """2 if any cell ERRORed, had no verdict, or pytest itself failed; else 1 if any FAILed; else 0.

    Read from the verdicts, not pytest's exit code: pytest exits 1 for an ERROR cell (an
    errored item) as for a FAIL one, but a gate retries an ERROR and never a FAIL."""
    verdicts = [c.get("verdict") for c in cells]
    judged = all(v in ("PASS", "FAIL") for v in verdicts)
    if pytest_code not in (0, 1) or len(verdicts) < expected or not judged:
        return EXIT_ERROR
    return EXIT_FAIL if "FAIL" in verdicts else EXIT_PASS


COMMANDS = [matrix_command]

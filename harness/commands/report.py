"""``rollgate report RUN_DIR...``: rebuild junit.xml and report.html from what a run left behind.

Reports are a function of verdict.json and timeline.jsonl, so they can be
re-rendered after a crash, after a report bug is fixed, or from a Zuul job's
downloaded logs. ``--matrix OUT_DIR`` also writes the matrix index (index.html
and matrix.json) over the given run directories. The command exits 0 when the
reports were written (whatever the verdicts say) and 2 when it could not.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from harness.errors import UsageError
from harness.report import VERDICT_FILE, render_run_dir
from harness.report.matrix import build_matrix


@click.command("report")
@click.argument(
    "run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--matrix",
    "matrix_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write the matrix index (index.html, matrix.json) of these runs into this directory.",
)
def report_command(run_dirs: tuple[Path, ...], matrix_dir: Path | None) -> None:
    """Re-render junit.xml and report.html of each RUN_DIR from its verdict.json and timeline.jsonl."""
    for run_dir in run_dirs:
        if not (run_dir / VERDICT_FILE).exists():
            raise UsageError(f"{run_dir}: no {VERDICT_FILE}: not a finished run directory")
        started = time.monotonic()
        try:
            paths = render_run_dir(run_dir)
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            raise UsageError(f"{run_dir / VERDICT_FILE}: cannot read: {exc}") from None
        click.echo(
            f"{run_dir}: {paths.junit.name}, {paths.html.name} "
            f"({paths.html.stat().st_size / 1024:.0f} KiB) in {time.monotonic() - started:.2f} s"
        )
    if matrix_dir is not None:
        index, matrix = build_matrix(run_dirs, matrix_dir)
        click.echo(f"matrix: {index}, {matrix}")


COMMANDS = (report_command,)

"""``rollgate report RUN_DIR`` re-renders a run's reports; a directory without verdict.json is exit 2."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from harness.cli import main
from harness.report.writers import write_verdict
from tests.unit.report_synthetic import write_synthetic_run


def test_report_command_rerenders_and_builds_the_matrix(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_verdict(write_synthetic_run(run_dir, events=1500), run_dir)
    result = CliRunner().invoke(main, ["report", str(run_dir), "--matrix", str(tmp_path / "matrix")])
    assert result.exit_code == 0, result.output
    assert (run_dir / "report.html").stat().st_size > 10_000
    assert (run_dir / "junit.xml").exists()
    assert "../run/report.html" in (tmp_path / "matrix" / "index.html").read_text()


def test_report_command_refuses_a_directory_without_verdict(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "no verdict.json" in result.output

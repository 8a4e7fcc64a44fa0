"""The defect catalog runs in CI: every defect caught by its check, every clean scenario PASSes.

This is issue 11's acceptance run, once each on the process backend: ``rollgate
catalog --clean-repeat 0`` (the same command a developer runs) must exit 0, which
it does only when every defect variant of images/minicloud/catalog.yaml FAILed
with its named check among the failing ones. The clean scenarios are not run
again here: tests/integration/test_gate_scenarios.py runs every minicloud
scenario of scenarios/ (the catalog's clean list among them, asserted below)
and requires each to PASS. No run may leave a process behind.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends import procutil
from harness.defect_catalog import load_catalog

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_every_defect_is_caught_by_its_check_and_every_clean_scenario_passes(tmp_path: Path) -> None:
    out = tmp_path / "catalog"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "catalog", "--clean-repeat", "0", "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=3000, check=False)
    document = json.loads((out / "catalog.json").read_text())
    bad = [f"{row['name']}: expected {row['expected']}, got {row['got']} ({row['caught_by_check']}); "
           f"runs {[r['run_id'] for r in row['runs']]}" for row in document["rows"] if not row["ok"]]
    assert done.returncode == 0, "\n".join(bad) + "\n" + done.stdout[-4000:] + done.stderr[-2000:]
    catalog = load_catalog()
    assert document["totals"]["defects_caught"] == len(catalog.defects)
    assert document["totals"]["clean_passed"] == 0
    assert (out / "index.html").read_text().count("<tr class='ok'>") == len(document["rows"])
    for row in document["rows"]:
        for run in row["runs"]:
            assert procutil.tagged_pids(run["run_id"]) == [], run["run_id"]


def test_the_catalogs_clean_scenarios_are_the_ones_the_scenario_gate_runs() -> None:
    from tests.integration.test_gate_scenarios import SCENARIOS

    clean = {Path(entry).stem for entry in load_catalog().clean}
    assert clean
    assert clean <= set(SCENARIOS), clean - set(SCENARIOS)

"""A broken release variant makes rolling-upgrade FAIL, and the violation is named everywhere.

``1.1+unpinned`` ignores the RPC pin and sends Instance 1.1 to 1.0 computes:
the gate must answer FAIL (exit 1, not ERROR), and verdict.json, junit.xml
and report.html must all name what broke.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from harness.backends import procutil

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_unpinned_release_fails_rolling_upgrade(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "scenarios" / "rolling-upgrade.yaml").read_text())
    raw["upgrade"]["to"] = "1.1+unpinned"
    scenario = tmp_path / "rolling-upgrade-unpinned.yaml"
    scenario.write_text(yaml.safe_dump(raw))
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(scenario), "--run-id", "unpinned-1"],
        cwd=ROOT, env={**os.environ, "ROLLGATE_RESULTS": str(results)},
        capture_output=True, text=True, timeout=400, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-6000:]
    run_dir = results / "unpinned-1"
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["verdict"] == "FAIL"
    failed = [c for c in verdict["checks"] if c["status"] == "failed"]
    assert failed, verdict
    check = next(c for c in verdict["checks"] if c["id"] == "rpc.version_compat")
    assert check["status"] == "failed"
    # The evidence cites the log lines of the unpinned release refusing or being refused.
    cited = next(e for e in check["evidence"] if "1.1+unpinned" in e["message"])
    violation = cited["error"]
    assert violation in ("IncompatibleObjectVersion", "UnsupportedVersion")
    assert violation in check["summary"]
    junit = ET.parse(run_dir / "junit.xml").getroot()
    failures = " ".join((f.get("message") or "") + (f.text or "") for f in junit.iter("failure"))
    assert violation in failures
    assert violation in (run_dir / "report.html").read_text()
    assert procutil.tagged_pids("unpinned-1") == []

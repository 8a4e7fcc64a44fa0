"""The gate on the Docker backend: seed scenarios 1 and 2 PASS in containers.

``rollgate run SCENARIO --backend docker`` as a Zuul job runs it: a PASS
verdict with its reports, and no container, network or volume of the run
left afterwards.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends.docker_resources import docker_client, leftovers

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("scenario", ["rolling-upgrade", "failed-upgrade-rollback"])
def test_scenario_passes_on_docker(scenario: str, tmp_path: Path) -> None:
    run_id = f"e2e-gate-{scenario[:12]}"
    env = {**os.environ, "ROLLGATE_RESULTS": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(ROOT / "scenarios" / f"{scenario}.yaml"),
         "--backend", "docker", "--run-id", run_id],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    verdict = json.loads((tmp_path / run_id / "verdict.json").read_text())
    failing = [f"{c['id']}: {c['summary']}; {[e.get('error') or e['message'] for e in c['evidence'][:3]]}"
               for c in verdict["checks"] if c["status"] != "passed"]
    assert done.returncode == 0, (verdict.get("verdict"), failing, done.stderr[-2000:])
    assert verdict["verdict"] == "PASS"
    assert (tmp_path / run_id / "report.html").exists()
    assert (tmp_path / run_id / "junit.xml").exists()
    if scenario == "failed-upgrade-rollback":
        assert "executor.rollback" in {c["id"] for c in verdict["checks"]}
    assert leftovers(docker_client(), run_id) == {"containers": [], "volumes": [], "networks": []}

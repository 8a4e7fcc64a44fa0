"""Every minicloud scenario of scenarios/ runs once, as a job runs it: ``pytest scenarios/X.yaml ...``
with one JUnit file (a testcase per scenario and one per check of its verdict).

This is the issue's "every scenario PASSes on the process backend" (each
scenario runs exactly once in CI). They run one after the other: two
upgrades under traffic on two cores stall the traffic process itself for
half a second at times, longer than the data-plane gap budget, and a gate
must judge the cloud, not the machine's contention. Running in parallel
with ``-n 2`` (distinct run ids, subnets, one JUnit file) is proven by
tests/integration/test_gate_plugin.py. Each run directory must hold every
artifact a person or a gate reads, and leave no process behind.
"""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.backends import procutil
from harness.scenario.load import load_scenario
from tests.integration.junit_support import assert_checks_match_verdicts, scenario_cases

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
# minicloud's scenarios: those with cloud: openstack run on Docker only, in
# tests/e2e/test_gate_openstack.py (once each: they take minutes).
SCENARIOS = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml")
                   if load_scenario(p).cloud == "minicloud")
ARTIFACTS = ("verdict.json", "junit.xml", "timeline.jsonl", "outages.json", "journal", "plan.json",
             "report.html", "locust/stats_stats.csv", "logs")


@pytest.fixture(scope="module")
def scenario_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path, Path]:
    out = tmp_path_factory.mktemp("gate")
    junit, results = out / "junit.xml", out / "results"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *(f"scenarios/{name}.yaml" for name in SCENARIOS), "-p", "no:xdist",
         f"--junitxml={junit}",
         f"--rollgate-results={results}", "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    return done.returncode, done.stdout + done.stderr, junit, results


def test_every_scenario_passes_with_one_junit(scenario_runs: tuple[int, str, Path, Path]) -> None:
    code, output, junit, results = scenario_runs
    assert code == 0, output[-6000:]
    root = ET.parse(junit).getroot()
    assert sorted(scenario_cases(root)) == SCENARIOS
    assert not list(root.iter("failure"))
    assert not list(root.iter("error"))
    verdicts = assert_checks_match_verdicts(root, results)  # one testcase per check
    assert all(len(v["checks"]) > 1 for v in verdicts.values())


@pytest.mark.parametrize("name", SCENARIOS)
def test_run_directory_is_complete_and_clean(scenario_runs: tuple[int, str, Path, Path], name: str) -> None:
    _, _, junit, results = scenario_runs
    case = scenario_cases(ET.parse(junit).getroot())[name]
    run_id = {p.get("name"): p.get("value") for p in case.iter("property")}["run_id"]
    run_dir = results / run_id
    for artifact in ARTIFACTS:
        assert (run_dir / artifact).exists(), f"{name}: {artifact} missing in {run_dir}"
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["verdict"] == "PASS"
    ids = {c["id"] for c in verdict["checks"]}
    assert {"slo.failed_api_requests", "slo.lost_writes", "slo.dataplane_gap", "releases.final",
            "resources.intact", "resources.verify-after"} <= ids
    if name == "failed-upgrade-rollback":
        assert "executor.rollback" in ids
        assert all(r == "1.0" for services in verdict["releases"].values() for r in services.values())
    if name == "security-update":
        check = next(c for c in verdict["checks"] if c["id"] == "security.project-isolation")
        assert check["status"] == "passed"
        assert "found" in check["summary"]
    if name == "mixed-version-hold":
        assert "resources.verify-mixed" in ids
    assert json.loads((run_dir / "run.json").read_text())["status"] == "down"
    assert procutil.tagged_pids(run_id) == []

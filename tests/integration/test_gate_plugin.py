"""The pytest plugin, tested with ``pytester``: scenarios/ collected, -n 2, one JUnit file with a
testcase per scenario and one per check of its verdict.

The scenarios here are tiny (one controller, two computes, a rolling reboot
of the computes: no control-plane restart) so the test stays cheap; the real
scenarios run once in test_gate_scenarios.py.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.backends import procutil
from tests.integration.junit_support import assert_checks_match_verdicts, scenario_cases

pytestmark = pytest.mark.integration
pytest_plugins = ["pytester"]

TINY = """\
name: {name}
seed: 3
topology:
  release: "1.1"
  hosts:
    - {{name: controller-1, roles: [controller, network]}}
    - {{name: compute-1, roles: [compute]}}
    - {{name: compute-2, roles: [compute]}}
upgrade:
  action: reboot
  from: "1.1"
  policy: {{roles: [compute], health_timeout: 30, migration_timeout: 30}}
traffic:
  api: {{users: 1, mix: {{list_servers: 1, list_flavors: 1}}}}
slo: {{api_p99_floor_ms: 1000}}
resources: {{servers: 1, api_down: false}}
"""


def test_collects_only_project_scenarios(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"scenarios/alpha": TINY.format(name="alpha")})
    pytester.makefile(".yaml", **{"tests/fixtures/scenarios/broken": "name: [not, valid"})
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["scenarios/alpha.yaml::alpha"])
    assert "broken" not in result.stdout.str()


def test_two_scenarios_in_parallel_one_junit(pytester: pytest.Pytester, tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        pytester.makefile(".yaml", **{f"scenarios/{name}": TINY.format(name=name)})
    junit = tmp_path / "junit.xml"
    results = tmp_path / "results"
    outcome = pytester.runpytest_subprocess(
        "scenarios/", "-n", "2", f"--junitxml={junit}", f"--rollgate-results={results}", "-p",
        "no:cacheprovider", timeout=300)
    assert outcome.ret == 0, outcome.stdout.str()[-4000:]
    root = ET.parse(junit).getroot()
    assert sorted(scenario_cases(root)) == ["alpha", "beta"]
    verdicts = assert_checks_match_verdicts(root, results)
    checks = [c for v in verdicts.values() for c in v["checks"]]
    skipped = sum(1 for c in checks if c["status"] == "skipped")
    outcome.assert_outcomes(passed=2 + len(checks) - skipped, skipped=skipped)
    run_ids = set()
    for verdict in verdicts.values():
        assert verdict["verdict"] == "PASS"
        assert verdict["action"] == "reboot"
        run_id = str(verdict["run_id"])
        run_ids.add(run_id)
        run = json.loads((results / run_id / "run.json").read_text())
        assert run["status"] == "down"
        assert procutil.tagged_pids(run_id) == []
    assert len(run_ids) == 2
    subnets = {json.loads((results / r / "run.json").read_text())["extra"]["subnet"] for r in run_ids}
    assert len(subnets) == 2, "two parallel runs shared a loopback subnet"


def test_an_invalid_scenario_is_an_error_of_its_item(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """An invalid scenario is an error of its item (not a failure: nothing was judged), with the
    validation error (no cloud is started)."""
    pytester.makefile(".yaml", **{"scenarios/bad": TINY.format(name="bad").replace('from: "1.1"',
                                                                                  'from: "9.9"')})
    outcome = pytester.runpytest(f"--rollgate-results={tmp_path}")
    outcome.assert_outcomes(errors=1)
    outcome.stdout.fnmatch_lines(["*rollgate ERROR (scenario refused, nothing ran)*upgrade.from*unknown "
                                  "release*9.9*"])

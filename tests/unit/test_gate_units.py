"""Cheap pieces of the gate: matrix cells, resource spec parsing, the gate's own checks, run ids."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness.checks.resources import isolation_check, resource_checks
from harness.commands.matrix import matrix_exit_code, write_cells
from harness.errors import ValidationError
from harness.pytest_plugin import run_id_for
from harness.resources import PhaseResult, ResourceSpec, parse_resources
from harness.runstate import RUN_ID_RE
from harness.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_matrix_cells_replace_releases_and_refuse_invalid_pairs(tmp_path: Path) -> None:
    scenarios = [ROOT / "scenarios" / f"{name}.yaml"
                 for name in ("rolling-upgrade", "failed-upgrade-rollback", "dataplane-rolling-reboot")]
    cells, refused = write_cells(scenarios, ["1.0", "1.1"], ["1.1", "2.0"], tmp_path)
    names = sorted(p.stem for p in cells)
    assert "rolling-upgrade--1.0--1.1" in names
    assert "rolling-upgrade--1.1--2.0" in names
    assert "rolling-upgrade--1.0--2.0" not in names  # skip-level: refused by the scenario rules
    assert any(r.startswith("rolling-upgrade--1.0--2.0") and "upgrade.to" in r for r in refused)
    assert "failed-upgrade-rollback--1.0--1.1" in names
    rollback = yaml.safe_load((tmp_path / "failed-upgrade-rollback--1.0--1.1.yaml").read_text())
    assert rollback["upgrade"]["to"] == "1.1+nostart"  # the variant is kept
    reboots = [n for n in names if n.startswith("dataplane")]
    assert reboots == ["dataplane-rolling-reboot--1.0--1.0", "dataplane-rolling-reboot--1.1--1.1"]
    for cell in cells:
        load_scenario(cell)


def test_matrix_refuses_same_release_and_pins_own_release_scenarios(tmp_path: Path) -> None:
    scenarios = [ROOT / "scenarios" / f"{name}.yaml" for name in ("rolling-upgrade", "security-update")]
    cells, refused = write_cells(scenarios, ["1.0", "1.1"], ["1.1", "1.1.1"], tmp_path)
    names = sorted(p.stem for p in cells)
    assert names == ["rolling-upgrade--1.0--1.1", "rolling-upgrade--1.0--1.1.1",
                     "rolling-upgrade--1.1--1.1.1", "security-update--1.1--1.1.1"]
    assert "rolling-upgrade--1.1--1.1: upgrade.to: 1.1 is the source release: not an upgrade" in refused


def test_matrix_exit_code_comes_from_the_verdicts() -> None:
    cells = [{"verdict": "PASS"}, {"verdict": "FAIL"}]
    assert matrix_exit_code(1, cells, 2) == 1
    assert matrix_exit_code(0, [{"verdict": "PASS"}] * 2, 2) == 0
    assert matrix_exit_code(1, [*cells, {"verdict": "ERROR"}], 3) == 2  # ERROR outranks FAIL
    assert matrix_exit_code(1, cells, 3) == 2  # a cell wrote no verdict
    assert matrix_exit_code(4, [{"verdict": "PASS"}], 1) == 2  # pytest usage error


def test_resource_spec_defaults_and_errors() -> None:
    assert parse_resources(None) == ResourceSpec()
    assert parse_resources({"servers": 3, "api_down": False}).servers == 3
    with pytest.raises(ValidationError, match=r"resources\.servers"):
        parse_resources({"servers": 0}, "x.yaml")
    with pytest.raises(ValidationError, match=r"resources\.colour.*valid: servers"):
        parse_resources({"colour": "red"}, "x.yaml")


def test_resources_intact_fails_when_any_survival_phase_fails() -> None:
    ok = PhaseResult("verify-before", checked=2)
    broken = PhaseResult("verify-after", problems=["rollgate-res-1: gone from the API"], checked=2)
    checks = {c.id: c for c in resource_checks([PhaseResult("create", checked=2), ok, broken])}
    assert checks["resources.verify-before"].status == "passed"
    assert checks["resources.verify-after"].status == "failed"
    assert checks["resources.intact"].status == "failed"
    assert "verify-after" in checks["resources.intact"].summary
    assert {c.status for c in resource_checks([ok])} == {"passed"}


def test_isolation_check_needs_the_defect_before_and_none_after() -> None:
    assert isolation_check(["a", "b"], [], "1.1", "1.1.1").status == "passed"
    assert isolation_check(["a"], ["a"], "1.1", "1.1.1").status == "failed"
    assert isolation_check([], [], "1.1", "1.1.1").status == "error"  # proves nothing


def test_run_ids_are_valid_and_distinct() -> None:
    ids = {run_id_for("a-very-long-scenario-name-with-many-words", "gw12") for _ in range(50)}
    assert len(ids) == 50
    assert all(RUN_ID_RE.match(i) for i in ids)
    assert all(re.search(r"-gw12-", i) for i in ids)


def test_version_violations_are_named_with_their_log_lines() -> None:
    from harness.checks.logscan import version_check, version_violations

    logs = {
        ("controller-1", "conductor"): "INFO fine\nERROR conductor controller-1 1.1+unpinned: build "
                                       "refused by compute-3: UnsupportedVersion: RPC 1.1\n",
        ("compute-1", "compute-agent"): "INFO all good\n",
    }
    found = version_violations(logs, lambda host, service: logs[(host, service)])
    assert [(h, s) for h, s, _ in found] == [("controller-1", "conductor")]
    check = version_check(found)
    assert check.status == "failed"
    assert "UnsupportedVersion" in check.summary
    assert check.evidence[0].error == "UnsupportedVersion"
    assert version_check(version_violations([("compute-1", "compute-agent")],
                                            lambda h, s: logs[(h, s)])).status == "passed"


def test_a_gate_run_refuses_faults_it_would_not_inject(tmp_path: Path) -> None:
    from harness.errors import UsageError
    from harness.gate import GateOptions, prepare

    raw = yaml.safe_load((ROOT / "scenarios" / "rolling-upgrade.yaml").read_text())
    raw["faults"] = [{"at": "compute-2", "action": "kill", "service": "compute-agent"}]
    path = tmp_path / "with-faults.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(UsageError, match=r"with-faults\.yaml: faults: .*rollgate fault"):
        prepare(path, GateOptions(), "unit-faults")


def test_in_a_row_passes_only_after_enough_successes_without_a_failure_between() -> None:
    from harness.waiting import in_a_row

    answers = iter([True, True, False, True, True, True])
    check = in_a_row(lambda: next(answers), 3)
    assert check() is False
    assert check() is False
    with pytest.raises(AssertionError):
        check()  # a failure resets the streak
    assert check() is False
    assert check() is False
    assert check() is True

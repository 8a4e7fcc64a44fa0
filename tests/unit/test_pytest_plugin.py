"""The pytest plugin's reports, with ``pytester`` and a fake gate (no cloud is started).

``harness.pytest_plugin.run_scenario`` (the one call the plugin makes to run a
scenario) is replaced by a function that returns a prepared verdict; the tests
read the ``--junitxml`` file pytest writes: one testcase per scenario and one
per check, a failing check's evidence in its ``<failure>``, a skipped check
``<skipped>``, an ERROR run ``<error>`` and never ``<failure>``. The real gate
runs through the plugin in tests/integration/test_gate_plugin.py.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import pytest_plugin
from harness.errors import ValidationError
from harness.verdict import Check, Evidence, Verdict

pytest_plugins = ["pytester"]

SCENARIO = "name: {name}\n"  # never read: the fake gate replaces the run, validation included
LOST = Evidence("rg-res-1 (10.0.0.5:8080): 3 acknowledged writes lost", window=(12.5, 14.0),
                target="rg-res-1", error="read back: 404")


def verdict(name: str, checks: list[Check]) -> Verdict:
    return Verdict(run_id=f"{name}-fake", scenario=name, seed=7, checks=checks, from_release="1.0",
                   to_release="1.1")


PASSING = [Check.passed("slo.failed_api_requests", "0 of 900 requests failed"),
           Check.passed("executor.upgrade", "every step ran"),
           Check.passed("resources.intact", "every resource intact")]
FAILING = [Check.passed("slo.failed_api_requests", "0 of 900 requests failed"),
           Check.failed("slo.lost_writes", "3 acknowledged writes lost (budget 0)", [LOST]),
           Check.skipped("maintenance.disabled-host", "no host was disabled")]
ERRORED = [Check.passed("resources.create", "2 resource(s) ok"),
           Check.failed("slo.failed_api_requests", "41 of 300 requests failed",
                        [Evidence("connection refused")]),
           Check.errored("harness.engine", "the container engine stopped answering for 14.2 s")]


class FakeGate:
    """Stands in for ``run_scenario``: the prepared verdict of each scenario, by file stem."""

    def __init__(self, verdicts: dict[str, Verdict | Exception], run_root: Path) -> None:
        self.verdicts = verdicts
        self.run_root = run_root
        self.calls: list[str] = []

    def __call__(self, path: Path, backend: str, seed: int | None, run_id: str) -> tuple[Verdict, Path]:
        self.calls.append(path.stem)
        found = self.verdicts[path.stem]
        if isinstance(found, Exception):
            raise found
        return found, self.run_root / found.run_id


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, verdicts: dict[str, Verdict | Exception],
        *args: str) -> tuple[pytest.RunResult, ET.Element, FakeGate]:
    gate = FakeGate(verdicts, pytester.path / "runs")
    monkeypatch.setattr(pytest_plugin, "run_scenario", gate)
    for name in verdicts:
        pytester.makefile(".yaml", **{f"scenarios/{name}": SCENARIO.format(name=name)})
    junit = pytester.path / "out.xml"
    result = pytester.runpytest("scenarios/", f"--junitxml={junit}", "-p", "no:cacheprovider", "-ra", *args)
    return result, ET.parse(junit).getroot(), gate


def cases(root: ET.Element) -> dict[str, ET.Element]:
    """testcase elements by classname::name (the node id with the file path dotted)."""
    return {f"{c.get('classname')}::{c.get('name')}": c for c in root.iter("testcase")}


def outcome(case: ET.Element) -> str:
    tags = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
    assert len(tags) <= 1, tags
    return tags[0] if tags else "passed"


def test_one_testcase_per_check_and_all_passed_on_pass(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    result, root, gate = run(pytester, monkeypatch, {"ok": verdict("ok", PASSING)}, "-v")
    assert result.ret == 0, result.stdout.str()
    assert gate.calls == ["ok"]  # one gate run for the scenario and all its checks
    found = cases(root)
    assert sorted(found) == sorted(["scenarios.ok.yaml::ok"]
                                   + [f"scenarios.ok.yaml.ok::{c.id}" for c in PASSING])
    assert {outcome(c) for c in found.values()} == {"passed"}
    result.assert_outcomes(passed=1 + len(PASSING))
    upgrade = found["scenarios.ok.yaml.ok::executor.upgrade"]
    props = {p.get("name"): p.get("value") for p in upgrade.iter("property")}
    assert props == {"rollgate_check": "executor.upgrade", "status": "passed", "run_id": "ok-fake"}
    result.stdout.fnmatch_lines(["scenarios/ok.yaml::ok PASSED * 25%]",
                                 "scenarios/ok.yaml::ok::executor.upgrade PASSED * 75%]"])


def test_a_failing_check_fails_with_its_evidence_and_a_skipped_one_skips(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result, root, _ = run(pytester, monkeypatch, {"bad": verdict("bad", FAILING)})
    assert result.ret == 1
    found = cases(root)
    assert sorted(found) == sorted(["scenarios.bad.yaml::bad"]
                                   + [f"scenarios.bad.yaml.bad::{c.id}" for c in FAILING])
    lost = found["scenarios.bad.yaml.bad::slo.lost_writes"]
    assert outcome(lost) == "failure"
    failure = lost.find("failure")
    assert failure is not None
    assert failure.get("message") == "rollgate FAIL: 3 acknowledged writes lost (budget 0)"
    assert LOST.describe() in (failure.text or "")  # message, target, window and error
    assert "seed=7 run=bad-fake" in (failure.text or "")
    skipped = found["scenarios.bad.yaml.bad::maintenance.disabled-host"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "maintenance.disabled-host: no host was disabled"
    assert outcome(found["scenarios.bad.yaml::bad"]) == "failure"
    assert outcome(found["scenarios.bad.yaml.bad::slo.failed_api_requests"]) == "passed"
    assert not list(root.iter("error"))
    result.assert_outcomes(passed=1, failed=2, skipped=1)
    result.stdout.fnmatch_lines(["FAILED scenarios/bad.yaml::bad::slo.lost_writes - rollgate FAIL: 3 *"])


def test_an_error_run_is_an_error_never_a_failure(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    result, root, _ = run(pytester, monkeypatch, {"boom": verdict("boom", ERRORED)})
    assert result.ret == 1
    assert not list(root.iter("failure")), "an ERROR run must not report a FAIL it could not prove"
    found = cases(root)
    assert len(found) == 1 + len(ERRORED)
    scenario = found["scenarios.boom.yaml::boom"].find("error")
    assert scenario is not None
    assert "rollgate ERROR boom 1.0 -> 1.1 seed=7 run=boom-fake" in (scenario.get("message") or "")
    engine = found["scenarios.boom.yaml.boom::harness.engine"].find("error")
    assert engine is not None
    assert "rollgate ERROR: the container engine stopped answering" in (engine.get("message") or "")
    symptom = found["scenarios.boom.yaml.boom::slo.failed_api_requests"].find("error")
    assert symptom is not None
    assert "not a verdict on the cloud" in (symptom.get("message") or "")
    assert "connection refused" in (symptom.text or "")
    assert outcome(found["scenarios.boom.yaml.boom::resources.create"]) == "passed"
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines(["ERROR scenarios/boom.yaml::boom - *rollgate ERROR boom*",
                                 "ERROR scenarios/boom.yaml::boom::harness.engine - rollgate ERROR: *"])


def test_a_refused_scenario_is_an_error_with_no_checks(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    refused = ValidationError("scenarios/bad.yaml", "upgrade.from", "unknown release 9.9")
    result, root, _ = run(pytester, monkeypatch, {"bad": refused})
    found = cases(root)
    assert list(found) == ["scenarios.bad.yaml::bad"]
    error = found["scenarios.bad.yaml::bad"].find("error")
    assert error is not None
    assert "rollgate ERROR (scenario refused, nothing ran): scenarios/bad.yaml: upgrade.from" in (
        error.get("message") or "")
    result.assert_outcomes(errors=1)


CONFTEST = """\
import json
import os
from pathlib import Path

from harness import pytest_plugin
from harness.verdict import Verdict


def fake_gate(path, backend, seed, run_id):
    raw = json.loads((path.parent.parent / "verdicts" / (path.stem + ".json")).read_text())
    raw["run_id"] = run_id
    with open(path.parent.parent / "calls.txt", "a") as calls:
        calls.write(f"{path.stem} {os.environ.get('PYTEST_XDIST_WORKER')}\\n")
    return Verdict.from_dict(raw), path.parent.parent / "runs" / run_id


pytest_plugin.run_scenario = fake_gate
"""


def test_xdist_runs_each_scenario_once_and_reports_every_check(pytester: pytest.Pytester) -> None:
    verdicts = {"ok": verdict("ok", PASSING), "bad": verdict("bad", FAILING)}
    pytester.makeconftest(CONFTEST)
    (pytester.path / "verdicts").mkdir()
    for name, made in verdicts.items():
        (pytester.path / "verdicts" / f"{name}.json").write_text(json.dumps(made.to_dict()))
        pytester.makefile(".yaml", **{f"scenarios/{name}": SCENARIO.format(name=name)})
    junit = pytester.path / "out.xml"
    result = pytester.runpytest_subprocess("scenarios/", "-n", "2", f"--junitxml={junit}",
                                           "-p", "no:cacheprovider", timeout=120)
    assert result.ret == 1, result.stdout.str()
    calls = (pytester.path / "calls.txt").read_text().split("\n")[:-1]
    assert sorted(c.split()[0] for c in calls) == ["bad", "ok"]
    assert all(c.split()[1].startswith("gw") for c in calls), calls
    found = cases(ET.parse(junit).getroot())
    expected = [f"scenarios.{n}.yaml::{n}" for n in verdicts] + [
        f"scenarios.{n}.yaml.{n}::{c.id}" for n, v in verdicts.items() for c in v.checks]
    assert sorted(found) == sorted(expected)
    assert outcome(found["scenarios.bad.yaml.bad::slo.lost_writes"]) == "failure"
    result.assert_outcomes(passed=2 + len(PASSING), failed=2, skipped=1)

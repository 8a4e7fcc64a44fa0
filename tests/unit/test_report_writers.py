"""verdict.json round-trips and is written atomically; junit.xml is valid JUnit with the evidence."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report.writers import read_verdict, write_junit, write_verdict
from harness.verdict import Check, Evidence, Verdict
from tests.unit.report_synthetic import write_synthetic_run


def test_verdict_json_round_trips(tmp_path: Path) -> None:
    verdict = write_synthetic_run(tmp_path, events=1500)
    path = write_verdict(verdict, tmp_path)
    raw = json.loads(path.read_text())
    assert raw["verdict"] == "FAIL"
    assert raw["exit_code"] == 1
    assert raw["seed"] == 7
    assert read_verdict(tmp_path).to_dict() == verdict.to_dict()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_failed_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    verdict = Verdict("r", "s", 1, [Check.passed("a", "ok")])
    write_verdict(verdict, tmp_path)
    before = (tmp_path / "verdict.json").read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("harness.report.writers.os.replace", broken_replace)
    verdict.checks.append(Check.failed("b", "no"))
    with pytest.raises(OSError, match="disk full"):
        write_verdict(verdict, tmp_path)
    assert (tmp_path / "verdict.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["verdict.json"]


def test_junit_has_one_testcase_per_check_with_failure_evidence(tmp_path: Path) -> None:
    verdict = write_synthetic_run(tmp_path, events=1500)
    verdict.checks.append(Check.errored("harness.hosts", "docker down \x1b[31m", [Evidence("ping failed")]))
    verdict.checks.append(Check.skipped("hosts.vulnerability", "not a security scenario"))
    root = ET.parse(write_junit(verdict, tmp_path)).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c.id for c in verdict.checks]
    assert {c.get("classname") for c in cases} == {"rollgate.rolling-upgrade"}
    assert suite.get("tests") == str(len(verdict.checks))
    assert suite.get("failures") == "3"  # failed API requests, the data-plane gap and its failures
    assert suite.get("errors") == "1"
    assert suite.get("skipped") == "2"  # hosts.vulnerability, slo.api_latency (no operation samples)
    by_name = {c.get("name"): c for c in cases}
    failure = by_name["slo.failed_api_requests"].find("failure")
    assert failure is not None
    assert failure.text is not None
    assert "HTTP 503 Service Unavailable" in failure.text
    assert "compute/new" in failure.text
    assert '"line":' in failure.text.replace(" ", "")
    assert "seed=7" in failure.text
    error = by_name["harness.hosts"].find("error")
    assert error is not None
    assert "\x1b" not in (error.get("message") or "")
    assert by_name["hosts.vulnerability"].find("skipped") is not None
    assert by_name["slo.lost_writes"].find("failure") is None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["verdict"] == "ERROR"
    assert properties["seed"] == "7"

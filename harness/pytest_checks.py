"""One pytest report per check of a scenario's verdict (the pytest plugin's JUnit and summary).

Which checks a gate run reports is known only once it has run: the probes'
points depend on the operations that happened, a probe that breaks adds
``probe.<name>``, a run that ends early reports fewer phases and an ERROR adds
``harness.run``, ``harness.engine`` or ``harness.infrastructure``. So the checks
cannot be collected as items before the run. The scenario stays the one item
that runs (its setup runs the gate); its setup report carries the verdict
(``VERDICT_ATTR``, plain data, so pytest-xdist ships it from the worker like
any report field), and in the process that writes the terminal summary and
``--junitxml`` (the xdist controller, or the only process) ``CheckReports``
turns it, after the scenario's teardown, into setup, call and teardown
reports per check, node id ``<scenario item>::<check id>``, through the
ordinary ``pytest_runtest_logreport`` hook: JUnit gets one testcase per
check, the summary counts them.

A check becomes: ``passed`` a pass; ``skipped`` a skip, the reason its id and
summary; ``failed`` a failure whose text is the summary and the evidence (as
in the run's own junit.xml); ``error`` a setup *error* (``<error>`` in JUnit,
``E`` in the summary), and so does a ``failed`` check of a run that is an
ERROR: a FAIL the harness could not prove is no verdict on the cloud, so an
ERROR run has no ``<failure>`` at all. Every failure or error message starts
with ``rollgate FAIL`` or ``rollgate ERROR`` (``ERROR_PREFIX``), and each
check's testcase has the properties ``rollgate_check``, ``status`` (the
check's own) and ``run_id``.

The terminal shows a check like any test (a letter, a line with ``-v``, the
short summary); pytest's count of tests grows by a run's checks when its
verdict is known, so its progress percentage stays true.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from harness.verdict import ERROR, ERRORED, FAILED, PASSED, SKIPPED, Verdict

#: the scenario's setup report's attribute that carries the verdict (a dict: xdist serializes it).
VERDICT_ATTR = "rollgate_verdict"
ERROR_PREFIX = "rollgate ERROR"
FAIL_PREFIX = "rollgate FAIL"


def verdict_payload(verdict: Verdict, run_dir: Path) -> dict[str, Any]:
    """What the controller needs of a verdict: plain data only (it crosses xdist's channel)."""
    from harness.report.writers import evidence_text  # the run's own junit.xml text

    trailer = f"seed={verdict.seed} run={verdict.run_id} report: {run_dir / 'report.html'}"
    return {
        "verdict": verdict.verdict,
        "run_id": verdict.run_id,
        "checks": [{"id": c.id, "status": c.status, "summary": c.summary,
                    "text": f"{evidence_text(c)}\n{trailer}", "duration": c.duration_s or 0.0}
                   for c in verdict.checks],
    }


def check_outcome(status: str, verdict: str) -> str:
    """The pytest outcome of a check with ``status`` in a run whose verdict is ``verdict``."""
    if status == ERRORED or (status == FAILED and verdict == ERROR):
        return "error"
    return {PASSED: "passed", FAILED: "failed", SKIPPED: "skipped"}[status]


@dataclass(frozen=True)
class _Crash:
    """What pytest's JUnit writer and short summary read of a failure: one line."""

    path: str
    lineno: int
    message: str


class CheckRepr:
    """A check's failure or error text: ``reprcrash.message`` the one line, the rest the evidence."""

    def __init__(self, path: str, message: str, text: str) -> None:
        self.reprcrash = _Crash(path, 0, message)
        self.text = text

    def toterminal(self, out: Any) -> None:
        for line in self.text.splitlines():
            out.line(line)

    def __str__(self) -> str:
        return self.text


def check_reports(item_report: pytest.TestReport, payload: dict[str, Any],
                  check: dict[str, Any]) -> list[pytest.TestReport]:
    """setup, call (when setup passed) and teardown reports of one check, as a real item has."""
    nodeid = f"{item_report.nodeid}::{check['id']}"
    path = item_report.location[0]
    scenario = item_report.nodeid.rsplit("::", 1)[-1]
    location = (path, None, f"rollgate check {check['id']} of {scenario}")
    outcome = check_outcome(check["status"], payload["verdict"])
    duration = float(check["duration"])

    def report(when: Literal["setup", "call", "teardown"], result: Literal["passed", "failed", "skipped"],
               longrepr: Any = None, seconds: float = 0.0,
               properties: list[tuple[str, object]] | None = None) -> pytest.TestReport:
        return pytest.TestReport(nodeid, location, {}, result, longrepr, when, duration=seconds,
                                 user_properties=properties)

    reports = []
    if outcome == "skipped":
        reports.append(report("setup", "skipped", (path, 0, f"Skipped: {check['id']}: {check['summary']}"),
                              duration))
    elif outcome == "error":
        prefix = ERROR_PREFIX if check["status"] == ERRORED else (
            f"{ERROR_PREFIX} (failed in a run that is an ERROR: not a verdict on the cloud)")
        reports.append(report("setup", "failed", CheckRepr(path, f"{prefix}: {check['summary']}",
                                                           f"{prefix}\n{check['text']}"), duration))
    else:
        reports.append(report("setup", "passed"))
        longrepr = (CheckRepr(path, f"{FAIL_PREFIX}: {check['summary']}", check["text"])
                    if outcome == "failed" else None)
        reports.append(report("call", "failed" if longrepr else "passed", longrepr, duration))
    reports.append(report("teardown", "passed", properties=[
        ("rollgate_check", check["id"]), ("status", check["status"]), ("run_id", payload["run_id"])]))
    return reports


class CheckReports:
    """Registered where the summary and the JUnit file are written (never in an xdist worker)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.session: pytest.Session | None = None
        self.pending: dict[str, dict[str, Any]] = {}  # scenario node id -> its verdict, until teardown

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = getattr(report, VERDICT_ATTR, None)
        if report.when == "setup" and payload:
            self.pending[report.nodeid] = payload
            if self.session is not None:  # a check is a test the progress counts (never collected)
                self.session.testscollected += len(payload["checks"])
        elif report.when == "teardown" and report.nodeid in self.pending:  # after the scenario's own
            payload = self.pending.pop(report.nodeid)
            for check in payload["checks"]:
                for each in check_reports(report, payload, check):
                    self.config.hook.pytest_runtest_logreport(report=each)

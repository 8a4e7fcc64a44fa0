"""The verdict model: FAIL and ERROR kept apart, exit codes, round trip, recap with the seed."""

from __future__ import annotations

import pytest

from harness.errors import EXIT_ERROR, EXIT_FAIL, EXIT_PASS
from harness.verdict import (
    ERROR,
    FAIL,
    PASS,
    Check,
    Evidence,
    Verdict,
    decide,
)


def _verdict(*checks: Check) -> Verdict:
    return Verdict(
        run_id="r1",
        scenario="rolling-upgrade",
        seed=42,
        checks=list(checks),
        from_release="1.0",
        to_release="1.1",
    )


@pytest.mark.parametrize(
    ("statuses", "expected", "code"),
    [
        (["passed", "passed"], PASS, EXIT_PASS),
        (["passed", "skipped"], PASS, EXIT_PASS),
        (["passed", "failed"], FAIL, EXIT_FAIL),
        (["failed", "error"], ERROR, EXIT_ERROR),  # an error decides even next to a failure: gates retry it
        (["error", "passed"], ERROR, EXIT_ERROR),
        ([], ERROR, EXIT_ERROR),  # nothing judged is not a pass
    ],
)
def test_verdict_is_derived_from_checks(statuses: list[str], expected: str, code: int) -> None:
    checks = [Check(f"c{i}", status, "s") for i, status in enumerate(statuses)]
    verdict = _verdict(*checks)
    assert decide(checks) == expected
    assert verdict.verdict == expected
    assert verdict.exit_code == code


def test_check_rejects_unknown_status_and_bad_id() -> None:
    with pytest.raises(ValueError, match="status"):
        Check("slo.x", "broken", "s")
    with pytest.raises(ValueError, match="whitespace"):
        Check("slo x", "passed", "s")


def test_round_trip_keeps_every_field() -> None:
    evidence = Evidence("2 failed", (10.5, 12.25), "compute/new", "HTTP 503", ({"line": 7, "t": 10.5},))
    verdict = _verdict(
        Check.failed("slo.failed_api_requests", "2 failed", [evidence]),
        Check.passed("executor.upgrade", "done"),
    )
    verdict.releases = {"compute-1": {"compute-agent": "1.1"}}
    verdict.releases_at_failure = {"compute-1": {"compute-agent": "1.0"}}
    verdict.window = (1.0, 20.0)
    verdict.notes = ["n"]
    again = Verdict.from_dict(verdict.to_dict())
    assert again.to_dict() == verdict.to_dict()
    assert again.checks[0].evidence[0].window == (10.5, 12.25)
    assert again.verdict == FAIL


def test_a_verdict_file_that_contradicts_its_checks_is_refused() -> None:
    raw = _verdict(Check.failed("slo.lost_writes", "lost")).to_dict()
    raw["verdict"] = PASS
    with pytest.raises(ValueError, match="checks decide FAIL"):
        Verdict.from_dict(raw)


def test_recap_names_seed_and_failing_checks_errors_first() -> None:
    verdict = _verdict(
        Check.failed("slo.lost_writes", "key k1 lost"), Check.errored("harness.deploy", "docker down")
    )
    recap = verdict.recap()
    assert recap.startswith("ERROR rolling-upgrade 1.0 -> 1.1 seed=42")
    assert recap.index("harness.deploy") < recap.index("slo.lost_writes")


def test_first_failure_time_is_the_earliest_failed_window() -> None:
    verdict = _verdict(
        Check.failed("a", "s", [Evidence("x", (30.0, 31.0)), Evidence("y", (12.0, 13.0))]),
        Check.passed("b", "s", [Evidence("z", (1.0, 2.0))]),
    )
    assert verdict.first_failure_time() == 12.0

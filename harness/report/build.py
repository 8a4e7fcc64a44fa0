"""Turn what a run produced (SLO report, executor result, releases) into checks and a verdict.

The run command owns the run; this module owns the translation, so every
caller (``rollgate run``, ``observe``, the pytest plugin) names checks the same
way and the report, the JUnit file and the tags read the same ids. Each SLO is
always one check, passed or failed, so a JUnit history has the same testcases
in every run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.checks.slo import (
    API_LATENCY,
    API_P99,
    DATAPLANE_FAILED,
    DATAPLANE_GAP,
    FAILED_API,
    LOST_WRITES,
    SloReport,
    Violation,
)
from harness.report.releases import infer_initial, release_changes, releases_at, step_spans
from harness.traffic.config import SloConfig
from harness.verdict import (
    CHECK_API_P99,
    CHECK_DATAPLANE_GAP,
    CHECK_FAILED_API,
    CHECK_LOST_WRITES,
    CHECK_RELEASES,
    CHECK_ROLLBACK,
    CHECK_UPGRADE,
    FAILED,
    Check,
    Evidence,
    Releases,
    Verdict,
)

SLO_CHECKS: dict[str, str] = {
    FAILED_API: CHECK_FAILED_API,
    LOST_WRITES: CHECK_LOST_WRITES,
    DATAPLANE_GAP: CHECK_DATAPLANE_GAP,
    DATAPLANE_FAILED: "slo.dataplane_failed",
    API_P99: CHECK_API_P99,
    API_LATENCY: "slo.api_latency",
}
DATAPLANE_SLOS = (LOST_WRITES, DATAPLANE_GAP, DATAPLANE_FAILED)


def evidence_of(violation: Violation) -> Evidence:
    return Evidence(
        violation.message, violation.window, violation.target, violation.error, tuple(violation.evidence)
    )


def _passed_summary(slo_name: str, report: SloReport, slo: SloConfig) -> str:
    counts = report.counts
    if slo_name == FAILED_API:
        return f"{counts.get('api_requests', 0)} API requests, {counts.get('failed_api_requests', 0)} failed"
    if slo_name == LOST_WRITES:
        return f"{report.acknowledged_writes} acknowledged writes, none lost"
    if slo_name == DATAPLANE_GAP:
        longest = max((g[0].duration_s for g in report.gaps.values() if g), default=0.0)
        return (
            f"longest data-plane gap {longest * 1000:.0f} ms over "
            f"{len(report.gaps)} instance connection types "
            f"(limit {slo.max_dataplane_gap_ms:g} ms)"
        )
    if slo_name == DATAPLANE_FAILED:
        return (f"{counts.get('dataplane_requests', 0)} data-plane requests, "
                f"{counts.get('failed_dataplane_requests', 0)} failed "
                f"(budget {slo.max_failed_dataplane_requests})")
    if slo_name == API_LATENCY:
        worst = max(report.operations, key=lambda o: o.growth_ms / o.limit_ms, default=None)
        if worst is None:
            return "no operation had enough samples to judge"
        return (f"{len({o.operation for o in report.operations})} operations within their limits; closest: "
                f"{worst.operation} {worst.growth_ms:+.1f} ms {worst.phase} "
                f"(limit {worst.limit_ms:.1f} ms; median {worst.median_ms:.1f} ms, "
                f"baseline {worst.baseline_ms:.1f} ms)")
    if slo_name == API_P99:
        skipped = [n for n in report.notes if n.startswith("api_p99")]
        return (
            skipped[0] if skipped else f"API p99 during the upgrade within {slo.api_p99_ratio:g} x baseline"
        )
    return "kept"


def slo_checks(report: SloReport, slo: SloConfig, *, no_dataplane: str | None = None) -> list[Check]:
    """One check per SLO (always present), plus one per other violated promise (e.g. ``command``).

    ``no_dataplane``: why this cloud has no data plane to judge (real OpenStack
    on the fake virt driver runs no guest). Its two data-plane SLOs are then
    reported ``skipped`` with that reason rather than passed over nothing,
    unless the run did send data-plane requests (then they are judged).
    """
    by_slo: dict[str, list[Violation]] = {}
    for violation in report.violations:
        by_slo.setdefault(violation.slo, []).append(violation)
    checks = []
    for slo_name, check_id in SLO_CHECKS.items():
        violations = by_slo.pop(slo_name, [])
        if violations:
            summary = violations[0].message + (
                f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
            )
            checks.append(Check.failed(check_id, summary, [evidence_of(v) for v in violations]))
        elif ((slo_name == API_LATENCY and not report.operations)
              or (slo_name == API_P99 and any(n.startswith("api_p99") for n in report.notes))):
            checks.append(Check.skipped(check_id, _passed_summary(slo_name, report, slo)))
        elif (slo_name in DATAPLANE_SLOS and no_dataplane
              and not report.counts.get("dataplane_requests")):
            checks.append(Check.skipped(check_id, f"not judged: {no_dataplane}"))
        else:
            checks.append(Check.passed(check_id, _passed_summary(slo_name, report, slo)))
    for slo_name, violations in sorted(by_slo.items()):
        checks.append(
            Check.failed(f"slo.{slo_name}", violations[0].message, [evidence_of(v) for v in violations])
        )
    return checks


def executor_check(
    status: str, failed_step: str | None, error: str | None, *, expect_rollback: bool,
    stopped_before: str | None = None,
) -> Check:
    """The executor's outcome as a check.

    ``expect_rollback`` is for scenarios that break on purpose: there the
    promise is a clean rollback (``executor.rollback``), and a completed
    upgrade is itself a failure (the gate did not catch the bad release).
    ``stopped_before``: the run stopped there on purpose (``upgrade.rollback_before``).
    """
    check_id = CHECK_ROLLBACK if expect_rollback else CHECK_UPGRADE
    where = f" at {failed_step}" if failed_step else ""
    wanted = "rolled_back" if expect_rollback else "completed"
    evidence = [Evidence(f"executor status {status}{where}", error=error, target=failed_step)]
    if status == wanted:
        note = f"upgrade failed{where} and was rolled back cleanly" if expect_rollback else "plan completed"
        if stopped_before and expect_rollback:
            note = f"upgrade stopped before {stopped_before} on purpose and was rolled back cleanly"
        return Check.passed(check_id, note, evidence)
    return Check.failed(
        check_id, f"executor ended {status}{where}" + (f": {error}" if error else ""), evidence
    )


def releases_check(actual: Releases, expected: str, *, only: Sequence[str] | None = None) -> Check:
    """Every service (or those named in ``only``) runs ``expected`` at the end."""
    wrong = [
        Evidence(f"{host}/{service} runs {release}, expected {expected}", target=f"{host}/{service}")
        for host, services in sorted(actual.items())
        for service, release in sorted(services.items())
        if release != expected and (only is None or service in only)
    ]
    total = sum(len(s) for s in actual.values())
    if not total:
        return Check.failed(CHECK_RELEASES, "no service release is known at the end of the run")
    if wrong:
        return Check.failed(CHECK_RELEASES, f"{len(wrong)} of {total} services not at {expected}", wrong)
    return Check.passed(CHECK_RELEASES, f"all {total} services at {expected}")


def assemble(
    *,
    run_id: str,
    scenario: str,
    seed: int | None,
    checks: list[Check],
    events: Sequence[Mapping[str, Any]],
    initial_releases: Releases | None = None,
    final_releases: Releases | None = None,
    outages: list[dict[str, Any]] | None = None,
    counts: Mapping[str, int] | None = None,
    **fields: Any,
) -> Verdict:
    """A Verdict with the releases (initial, end, at failure) and changes derived from the step events.

    ``final_releases`` overrides what the step events imply (a host check that
    asked the services themselves knows better than the journal).
    """
    spans = step_spans(events)
    changes = release_changes(spans)
    initial = initial_releases or infer_initial(changes)
    header = next((e for e in events if e.get("kind") == "header"), None)
    times = [float(e["t"]) for e in events if "t" in e and e.get("kind") != "header"]
    verdict = Verdict(
        run_id=run_id,
        scenario=scenario,
        seed=seed,
        checks=checks,
        window=(min(times), max(times)) if times else None,
        wall_offset=(float(header["wall"]) - float(header["t"])) if header else None,
        releases_initial=initial,
        releases=final_releases if final_releases is not None else releases_at(initial, changes),
        release_changes=changes,
        outages=outages or [],
        counts=dict(counts or {}),
        **fields,
    )
    if any(c.status == FAILED for c in checks):
        moment = verdict.first_failure_time()
        failed_steps = [s.start for s in spans if s.outcome == "failed"]
        candidates = [m for m in (moment, min(failed_steps, default=None)) if m is not None]
        verdict.releases_at_failure = releases_at(initial, changes, min(candidates) if candidates else None)
    return verdict

"""Checks only a gate run has: resources per phase, the security check, the harness's own error.

SLO and executor checks come from ``harness.report.build`` (shared with
``observe``); what only a gate run knows is turned into checks here (moved
from ``harness/gate/checks.py`` so that "checks" has one home), with the
same stable-id habit: ``resources.<phase>`` per grenade phase plus the
aggregate ``resources.intact`` that the upgrade tags read, and
``security.project-isolation``.
"""
from __future__ import annotations

from collections.abc import Sequence

from harness.resources import PhaseResult
from harness.verdict import CHECK_RESOURCES, Check, Evidence

CHECK_PROJECT_ISOLATION = "security.project-isolation"
CHECK_HARNESS = "harness.run"
#: phases whose failure means a resource did not survive (create/destroy failing is its own check).
SURVIVAL_PHASES = ("verify-before", "verify-api-down", "verify-mixed", "verify-mixed-api",
                   "verify-mixed-compute", "verify-after")


def phase_check(result: PhaseResult) -> Check:
    check_id = f"resources.{result.phase}"
    if result.ok:
        check = Check.passed(check_id, f"{result.checked} resource(s) ok")
    else:
        check = Check.failed(check_id, f"{len(result.problems)} problem(s): {result.problems[0]}",
                             [Evidence(p, target=p.split(":", 1)[0]) for p in result.problems[:20]])
    return Check(check.id, check.status, check.summary, check.evidence, round(result.duration_s, 3))


def resource_checks(results: Sequence[PhaseResult]) -> list[Check]:
    """One check per phase that ran, and ``resources.intact`` over the survival phases."""
    checks = [phase_check(r) for r in results]
    survival = [r for r in results if r.phase in SURVIVAL_PHASES]
    broken = [r for r in survival if not r.ok]
    if not survival:
        return checks
    if broken:
        checks.append(Check.failed(
            CHECK_RESOURCES, f"resources damaged in {', '.join(r.phase for r in broken)}",
            [Evidence(f"{r.phase}: {p}") for r in broken for p in r.problems[:10]]))
    else:
        checks.append(Check.passed(
            CHECK_RESOURCES, f"every resource intact in {', '.join(r.phase for r in survival)}"))
    return checks


def isolation_check(before: Sequence[str] | None, after: Sequence[str], source: str, target: str) -> Check:
    """The security update must close the leak on every path; the check must also prove it sees
    the leak before.

    ``before`` and ``after`` list the leaks (``harness.isolation.leaks``: one
    line per path and server) a non-admin user finds at the source release
    (None: not measured) and at the end. A check that cannot find the known
    defect before the update proves nothing after it: that is an ERROR.
    """
    if after:
        paths = sorted({leak.split(":", 1)[0] for leak in after})
        return Check.failed(CHECK_PROJECT_ISOLATION,
                            f"after {target} a non-admin user still reaches another project's servers on "
                            f"{len(paths)} path(s), e.g. {paths[0]}",
                            [Evidence(leak, target=leak.split(":", 1)[0]) for leak in after[:30]])
    if before is not None and not before:
        return Check.errored(CHECK_PROJECT_ISOLATION,
                             f"the check did not find the known defect at {source}: it proves nothing")
    paths_before = len({leak.split(":", 1)[0] for leak in before or ()})
    seen = f"found {len(before)} leak(s) on {paths_before} path(s) at {source}, " if before else ""
    return Check.passed(CHECK_PROJECT_ISOLATION, f"{seen}none on any path at {target}")


def harness_error(message: str) -> Check:
    """The run could not be judged: the harness or the machine failed (ERROR, retried by gates)."""
    return Check.errored(CHECK_HARNESS, message.splitlines()[0][:300],
                         [Evidence(message[-4000:])] if "\n" in message else ())

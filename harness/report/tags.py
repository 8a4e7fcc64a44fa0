"""Which of OpenStack's former upgrade tags each project has earned, judged from verdicts.

The governance repository once defined four ``assert:`` tags for upgrades. We
judge them per project (named by its catalog type: compute, identity, image,
network) from the verdicts of N-1 -> N upgrade runs, by these definitions:

- ``assert:supports-upgrade``: an upgrade N-1 -> N completes (``executor.upgrade``
  passed) with resources intact (``resources.intact`` passed), every service of
  the project at N at the end.
- ``assert:supports-rolling-upgrade``: that, and the project's services ran at
  different releases at the same time during the upgrade (a mixed state).
- ``assert:supports-accessible-upgrade``: supports-upgrade, and no API outage
  interval on the project's API during the upgrade.
- ``assert:supports-zero-downtime-upgrade``: supports-upgrade, and no failed API
  request to the project, and (for projects carrying the data plane: compute,
  network) no data-plane gap beyond budget and no lost write.

A tag is earned when at least one qualifying run proves it and none disproves
it. Qualifying runs are upgrades across release series that were meant to
complete (they have an ``executor.upgrade`` check; a rollback scenario does
not) and whose verdict is not ERROR: an ERROR run proves nothing either way.
A run that cannot show a property (a project with one host is never mixed; a
check skipped or absent) leaves it unproven rather than disproven.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.report.releases import DATA_PLANE_PROJECTS, mixed_projects, project_of
from harness.verdict import (
    CHECK_DATAPLANE_GAP,
    CHECK_FAILED_API,
    CHECK_LOST_WRITES,
    CHECK_RESOURCES,
    CHECK_UPGRADE,
    ERROR,
    FAILED,
    PASSED,
    Verdict,
)

SUPPORTS_UPGRADE = "assert:supports-upgrade"
ROLLING_UPGRADE = "assert:supports-rolling-upgrade"
ACCESSIBLE_UPGRADE = "assert:supports-accessible-upgrade"
ZERO_DOWNTIME_UPGRADE = "assert:supports-zero-downtime-upgrade"
TAGS = (SUPPORTS_UPGRADE, ROLLING_UPGRADE, ACCESSIBLE_UPGRADE, ZERO_DOWNTIME_UPGRADE)


@dataclass
class TagResult:
    """Whether a project earned a tag, which runs prove it, and why not if it did not."""

    earned: bool = False
    proven_by: list[str] = field(default_factory=list)
    disproven: list[str] = field(default_factory=list)  # "<run> (<scenario>): why"
    unproven: list[str] = field(default_factory=list)  # runs that could not show it, and why

    def to_dict(self) -> dict[str, Any]:
        return {
            "earned": self.earned,
            "proven_by": self.proven_by,
            "disproven": self.disproven,
            "unproven": self.unproven,
        }


def _series(release: str | None) -> str | None:
    """The release series: "1.1.1" -> "1.1" (a patch update stays in its series)."""
    if release is None:
        return None
    return ".".join(release.split(".")[:2])


def qualifies(verdict: Verdict) -> bool:
    """Is this run an N-1 -> N upgrade that proves something (not ERROR)?"""
    return (
        verdict.action == "upgrade"
        and verdict.verdict != ERROR
        and verdict.check(CHECK_UPGRADE) is not None
        and verdict.from_release is not None
        and verdict.to_release is not None
        and _series(verdict.from_release) != _series(verdict.to_release)
    )


def projects_of(verdict: Verdict) -> list[str]:
    services = {
        s
        for releases in (verdict.releases_initial, verdict.releases)
        for per in releases.values()
        for s in per
    }
    return sorted({project_of(s) for s in services})


def _api_targets_of(project: str, targets: Iterable[str | None]) -> list[str]:
    """Targets (``compute``, ``compute/new``, ``compute/reused/list``) that belong to the project's API."""
    return sorted({t for t in targets if t and t.split("/")[0] == project})


def _status(verdict: Verdict, check_id: str) -> str | None:
    check = verdict.check(check_id)
    return check.status if check else None


PROVEN = "proven"
UNPROVEN = "unproven"
DISPROVEN = "disproven"
Judgement = tuple[str, str]  # (PROVEN | UNPROVEN | DISPROVEN, why)


def _supports_upgrade(verdict: Verdict, project: str) -> Judgement:
    upgrade, resources = _status(verdict, CHECK_UPGRADE), _status(verdict, CHECK_RESOURCES)
    services = [
        (h, s, r) for h, per in verdict.releases.items() for s, r in per.items() if project_of(s) == project
    ]
    behind = [f"{h}/{s}={r}" for h, s, r in services if r != verdict.to_release]
    if upgrade == FAILED:
        return DISPROVEN, f"{CHECK_UPGRADE} failed"
    if resources == FAILED:
        return DISPROVEN, f"{CHECK_RESOURCES} failed"
    if behind:
        return DISPROVEN, f"not at {verdict.to_release}: {', '.join(behind)}"
    if upgrade != PASSED or resources != PASSED:
        missing = CHECK_UPGRADE if upgrade != PASSED else CHECK_RESOURCES
        return UNPROVEN, f"{missing} is {_status(verdict, missing) or 'absent'}"
    if not services:
        return UNPROVEN, "no service of the project is known"
    return PROVEN, f"completed {verdict.from_release} -> {verdict.to_release}, resources intact"


def judge(verdict: Verdict, project: str) -> dict[str, Judgement]:
    """For one run and one project: tag -> (proven | unproven | disproven, why)."""
    base = _supports_upgrade(verdict, project)
    result: dict[str, Judgement] = {SUPPORTS_UPGRADE: base}
    prerequisite = None if base[0] == PROVEN else (base[0], f"{SUPPORTS_UPGRADE}: {base[1]}")

    mixed = mixed_projects(verdict.releases_initial, verdict.release_changes).get(project)
    result[ROLLING_UPGRADE] = prerequisite or (
        (PROVEN, "ran mixed " + "+".join(mixed))
        if mixed
        else (UNPROVEN, "services never ran at two releases at once")
    )

    outage_targets = _api_targets_of(
        project, (o.get("target") for o in verdict.outages if o.get("kind") == "api")
    )
    api_check = verdict.check(CHECK_FAILED_API)
    measured = api_check is not None and api_check.status in (PASSED, FAILED)
    failed_targets = _api_targets_of(
        project, (e.target for e in (api_check.evidence if api_check and api_check.status == FAILED else ()))
    )
    if prerequisite:
        result[ACCESSIBLE_UPGRADE] = prerequisite
    elif outage_targets:
        result[ACCESSIBLE_UPGRADE] = (DISPROVEN, "API outage on " + ", ".join(outage_targets))
    elif not measured:
        result[ACCESSIBLE_UPGRADE] = (UNPROVEN, "the API was not measured")
    else:
        result[ACCESSIBLE_UPGRADE] = (PROVEN, "no API outage")

    if prerequisite:
        result[ZERO_DOWNTIME_UPGRADE] = prerequisite
    elif failed_targets or outage_targets:
        result[ZERO_DOWNTIME_UPGRADE] = (
            DISPROVEN,
            "failed API requests on " + ", ".join(sorted(set(failed_targets) | set(outage_targets))),
        )
    elif not measured:
        result[ZERO_DOWNTIME_UPGRADE] = (UNPROVEN, "the API was not measured")
    else:
        result[ZERO_DOWNTIME_UPGRADE] = (PROVEN, "no failed API request")
        if project in DATA_PLANE_PROJECTS:
            for check_id in (CHECK_DATAPLANE_GAP, CHECK_LOST_WRITES):
                status = _status(verdict, check_id)
                if status == FAILED:
                    result[ZERO_DOWNTIME_UPGRADE] = (DISPROVEN, f"{check_id} failed")
                    break
                if status != PASSED:
                    result[ZERO_DOWNTIME_UPGRADE] = (UNPROVEN, f"{check_id} is {status or 'absent'}")
                    break
            else:
                result[ZERO_DOWNTIME_UPGRADE] = (
                    PROVEN,
                    "no failed API request, data-plane gap or lost write",
                )
    return result


def earned_tags(verdicts: Iterable[Verdict]) -> dict[str, dict[str, TagResult]]:
    """project -> tag -> TagResult over every qualifying run."""
    table: dict[str, dict[str, TagResult]] = {}
    for verdict in verdicts:
        if not qualifies(verdict):
            continue
        for project in projects_of(verdict):
            row = table.setdefault(project, {tag: TagResult() for tag in TAGS})
            for tag, (outcome, why) in judge(verdict, project).items():
                if outcome == PROVEN:
                    row[tag].proven_by.append(verdict.run_id)
                else:
                    bucket = row[tag].disproven if outcome == DISPROVEN else row[tag].unproven
                    bucket.append(f"{verdict.run_id} ({verdict.scenario}): {why}")
    for row in table.values():
        for result in row.values():
            result.earned = bool(result.proven_by) and not result.disproven
    return dict(sorted(table.items()))


def tags_to_dict(table: dict[str, dict[str, TagResult]]) -> dict[str, Any]:
    return {project: {tag: r.to_dict() for tag, r in row.items()} for project, row in table.items()}

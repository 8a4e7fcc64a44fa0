"""The gate verdict: PASS, FAIL or ERROR, decided by named checks that cite their evidence.

A run ends in a list of checks (SLOs over the timeline, the executor's outcome,
releases at the end, resources, hosts), each with a stable id so that JUnit
history, dashboards and the project tags can follow it from run to run. The
verdict is never set by hand: it is derived from the checks, keeping the two
kinds of failure apart (see ``harness.errors``):

- any check in ``error`` (the harness or the machine failed) makes it ERROR,
  because a gate retries ERROR and must never retry a real product failure
  hidden behind it, nor report a FAIL it could not prove;
- else any ``failed`` check makes it FAIL;
- else PASS. A verdict with no check at all is ERROR: nothing was judged.

``verdict.json`` is ``Verdict.to_dict()``; ``Verdict.from_dict`` reads it back
(the ``rollgate report`` command re-renders reports from it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import EXIT_ERROR, EXIT_FAIL, EXIT_PASS

VERDICT_FORMAT = 1

PASS = "PASS"
FAIL = "FAIL"
ERROR = "ERROR"
EXIT_CODES: dict[str, int] = {PASS: EXIT_PASS, FAIL: EXIT_FAIL, ERROR: EXIT_ERROR}

# Check statuses.
PASSED = "passed"
FAILED = "failed"
ERRORED = "error"
SKIPPED = "skipped"  # not applicable to this run (e.g. no executor step): neither proof nor failure
STATUSES = (PASSED, FAILED, ERRORED, SKIPPED)

# Stable check ids shared with the tags module: renaming one breaks history.
CHECK_FAILED_API = "slo.failed_api_requests"
CHECK_LOST_WRITES = "slo.lost_writes"
CHECK_DATAPLANE_GAP = "slo.dataplane_gap"
CHECK_API_P99 = "slo.api_p99"
CHECK_UPGRADE = "executor.upgrade"  # the plan ran to completion
CHECK_ROLLBACK = "executor.rollback"  # a rollback left every host at the source release
CHECK_RELEASES = "releases.final"  # every service at the expected release at the end
CHECK_RESOURCES = "resources.intact"  # resources created before the upgrade survive it


@dataclass(frozen=True)
class Evidence:
    """What proves a check's status: a window of the timeline, a target, an error, the events."""

    message: str
    window: tuple[float, float] | None = None
    target: str | None = None
    error: str | None = None
    events: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "window": [round(self.window[0], 6), round(self.window[1], 6)] if self.window else None,
            "target": self.target,
            "error": self.error,
            "events": [dict(e) for e in self.events],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Evidence:
        window = raw.get("window")
        return cls(
            message=str(raw.get("message", "")),
            window=(float(window[0]), float(window[1])) if window else None,
            target=raw.get("target"),
            error=raw.get("error"),
            events=tuple(dict(e) for e in raw.get("events") or ()),
        )

    def describe(self) -> str:
        """One line for people (JUnit failure text, console): message, target, window, error."""
        parts = [self.message]
        if self.target and self.target not in self.message:
            parts.append(f"target={self.target}")
        if self.window:
            parts.append(f"window=[{self.window[0]:.3f}, {self.window[1]:.3f}]")
        if self.error:
            parts.append(f"error={self.error!r}")
        return " ".join(parts)


@dataclass(frozen=True)
class Check:
    """One named promise and whether the run kept it."""

    id: str
    status: str
    summary: str
    evidence: tuple[Evidence, ...] = ()
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check {self.id}: status {self.status!r} is not one of {', '.join(STATUSES)}")
        if not self.id or any(c.isspace() for c in self.id):
            raise ValueError(f"check id {self.id!r} must be non-empty and contain no whitespace")

    @classmethod
    def passed(cls, check_id: str, summary: str, evidence: Iterable[Evidence] = ()) -> Check:
        return cls(check_id, PASSED, summary, tuple(evidence))

    @classmethod
    def failed(cls, check_id: str, summary: str, evidence: Iterable[Evidence] = ()) -> Check:
        return cls(check_id, FAILED, summary, tuple(evidence))

    @classmethod
    def errored(cls, check_id: str, summary: str, evidence: Iterable[Evidence] = ()) -> Check:
        return cls(check_id, ERRORED, summary, tuple(evidence))

    @classmethod
    def skipped(cls, check_id: str, summary: str) -> Check:
        return cls(check_id, SKIPPED, summary)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "summary": self.summary,
            "evidence": [e.to_dict() for e in self.evidence],
        }
        if self.duration_s is not None:
            data["duration_s"] = round(self.duration_s, 6)
        return data

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Check:
        duration = raw.get("duration_s")
        return cls(
            id=str(raw["id"]),
            status=str(raw["status"]),
            summary=str(raw.get("summary", "")),
            evidence=tuple(Evidence.from_dict(e) for e in raw.get("evidence") or ()),
            duration_s=float(duration) if duration is not None else None,
        )


Releases = dict[str, dict[str, str]]  # host -> service -> release


def decide(checks: Sequence[Check]) -> str:
    """The verdict the checks imply: any error -> ERROR, else any failure -> FAIL, else PASS."""
    if not checks:
        return ERROR
    statuses = {check.status for check in checks}
    if ERRORED in statuses:
        return ERROR
    if FAILED in statuses:
        return FAIL
    return PASS


@dataclass
class Verdict:
    """Everything a gate, a person and the matrix need to know about one run's outcome.

    ``window`` and every evidence time are monotonic seconds of the run's
    timeline; ``wall_offset`` added to one gives wall-clock (epoch) time. ``releases`` are the
    releases at the end; ``releases_at_failure`` those when the first failed
    check's evidence begins (None on PASS); ``release_changes`` the replace
    steps as they completed, so mixed-version windows can be recomputed.
    """

    run_id: str
    scenario: str
    seed: int | None
    checks: list[Check]
    from_release: str | None = None
    to_release: str | None = None
    action: str = "upgrade"
    backend: str | None = None
    cloud: str | None = None
    window: tuple[float, float] | None = None
    wall_offset: float | None = None
    releases_initial: Releases = field(default_factory=dict)
    releases: Releases = field(default_factory=dict)
    releases_at_failure: Releases | None = None
    release_changes: list[dict[str, Any]] = field(default_factory=list)
    outages: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return decide(self.checks)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def check(self, check_id: str) -> Check | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def failing(self) -> list[Check]:
        """The checks that decided a non-PASS verdict (errors first: they decide it)."""
        return [c for c in self.checks if c.status == ERRORED] + [
            c for c in self.checks if c.status == FAILED
        ]

    def first_failure_time(self) -> float | None:
        """The earliest evidence window start among failed checks (when things went wrong)."""
        starts = [e.window[0] for c in self.checks if c.status == FAILED for e in c.evidence if e.window]
        return min(starts) if starts else None

    def recap(self) -> str:
        """The one-line recap printed at the end of a run, with the seed (to replay it)."""
        counted = {s: sum(1 for c in self.checks if c.status == s) for s in STATUSES}
        line = (
            f"{self.verdict} {self.scenario} {self.from_release or '?'} -> {self.to_release or '?'} "
            f"seed={self.seed} run={self.run_id}: {counted[PASSED]} passed, {counted[FAILED]} failed, "
            f"{counted[ERRORED]} error, {counted[SKIPPED]} skipped"
        )
        failing = self.failing()
        if failing:
            line += "; " + "; ".join(f"{c.id}: {c.summary}" for c in failing[:3])
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": VERDICT_FORMAT,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "run_id": self.run_id,
            "scenario": self.scenario,
            "seed": self.seed,
            "action": self.action,
            "from_release": self.from_release,
            "to_release": self.to_release,
            "backend": self.backend,
            "cloud": self.cloud,
            "window": [round(self.window[0], 6), round(self.window[1], 6)] if self.window else None,
            "wall_offset": self.wall_offset,
            "checks": [c.to_dict() for c in self.checks],
            "releases_initial": self.releases_initial,
            "releases": self.releases,
            "releases_at_failure": self.releases_at_failure,
            "release_changes": self.release_changes,
            "outages": self.outages,
            "counts": self.counts,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Verdict:
        """Read back ``to_dict``; the stored verdict must agree with the checks (else the file lies)."""
        if raw.get("format") != VERDICT_FORMAT:
            raise ValueError(f"verdict format {raw.get('format')!r} is not {VERDICT_FORMAT}")
        window = raw.get("window")
        verdict = cls(
            run_id=str(raw["run_id"]),
            scenario=str(raw["scenario"]),
            seed=raw.get("seed"),
            checks=[Check.from_dict(c) for c in raw.get("checks") or ()],
            from_release=raw.get("from_release"),
            to_release=raw.get("to_release"),
            action=str(raw.get("action", "upgrade")),
            backend=raw.get("backend"),
            cloud=raw.get("cloud"),
            window=(float(window[0]), float(window[1])) if window else None,
            wall_offset=raw.get("wall_offset"),
            releases_initial=dict(raw.get("releases_initial") or {}),
            releases=dict(raw.get("releases") or {}),
            releases_at_failure=raw.get("releases_at_failure"),
            release_changes=list(raw.get("release_changes") or ()),
            outages=list(raw.get("outages") or ()),
            counts=dict(raw.get("counts") or {}),
            notes=list(raw.get("notes") or ()),
        )
        stored = raw.get("verdict")
        if stored is not None and stored != verdict.verdict:
            raise ValueError(f"verdict.json says {stored} but its checks decide {verdict.verdict}")
        return verdict

"""``versions.consistent``: what each service says it runs agrees with what it registered.

``releases.final`` trusts each service's ``/healthz``. But the rest of the
cloud does not read ``/healthz``: the conductor computes its RPC cap ("auto")
from the service versions registered in the services table, and the schema
contract refuses while an old version is registered. A service that runs the
new release but registers an old service version leaves the cap down for good.
The versions probe (``harness.gate.versions_probe``) reads every service's
``/healthz`` (release, service version) and the services table (the admin
CLI's ``service list --json``: host, binary, release, version) before, during
and after the upgrade; this module judges the readings, with no I/O and no
knowledge of any cloud's version numbers:

- **healthz = table**: a registered service reports the release and service
  version it registered (rows of services that did not answer are skipped; a
  service registers on its own heartbeat, so the probe re-reads for a few
  seconds before it records a disagreement);
- **one version per release**: every service of the same release, in
  ``/healthz`` and in the table, at every point, reports the same service
  version;
- **the new release is newer**: the target release's service version is higher
  than the source's (equal allowed only within a release series: a patch
  release may keep its version).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.verdict import Check, Evidence

CHECK_VERSIONS = "versions.consistent"
MAX_EVIDENCE = 20


@dataclass(frozen=True)
class VersionReading:
    """One look at the cloud: every service's ``/healthz`` and the services table, at one moment."""

    point: str
    t: float
    #: (host, service) -> (release, service version) of every service that answered /healthz
    healthz: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    #: the services table's rows: host, binary, release, version (as ``service list --json``)
    table: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # the table could not be read (the reading is not judged)


@dataclass(frozen=True)
class VersionProblem:
    message: str
    reading: VersionReading
    target: str | None = None

    def evidence(self) -> Evidence:
        return Evidence(self.message, window=(self.reading.t, self.reading.t), target=self.target)


def release_series(label: str) -> str:
    """``1.1.1+variant`` -> ``1.1``; ``2026.1`` -> ``2026.1``: the release a patch belongs to."""
    return ".".join(label.partition("+")[0].split(".")[:2])


def _row_key(row: dict[str, Any]) -> tuple[str, str]:
    return str(row.get("host")), str(row.get("binary"))


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def disagreements(healthz: dict[tuple[str, str], tuple[str, int]],
                  table: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(host, service) of the rows whose release or version differ from that service's /healthz."""
    found = []
    for row in table:
        key = _row_key(row)
        answer = healthz.get(key)
        if answer is not None and answer != (str(row.get("release")), _as_int(row.get("version"))):
            found.append(key)
    return found


def judge_versions(readings: Sequence[VersionReading], source: str | None = None,
                   target: str | None = None) -> list[VersionProblem]:
    """Every disagreement the readings show (module docstring), each stated once."""
    problems: list[VersionProblem] = []
    seen: set[str] = set()

    def report(message: str, reading: VersionReading, where: str | None = None) -> None:
        if message not in seen:
            seen.add(message)
            problems.append(VersionProblem(message, reading, where))

    # release -> version -> the first (source, reading) that said so
    claims: dict[str, dict[int, tuple[str, VersionReading]]] = {}
    for reading in readings:
        if reading.error is not None:
            continue
        for (host, service), (release, version) in sorted(reading.healthz.items()):
            claims.setdefault(release, {}).setdefault(version, (f"{host}/{service} /healthz", reading))
        for row in reading.table:
            host, binary = _row_key(row)
            registered = _as_int(row.get("version"))
            release = str(row.get("release"))
            if registered is None:
                report(f"{host}/{binary}: the services table has no service version ({row.get('version')!r})",
                       reading, f"{host}/{binary}")
                continue
            who = f"{host}/{binary} services table"
            claims.setdefault(release, {}).setdefault(registered, (who, reading))
            answer = reading.healthz.get((host, binary))
            if answer is not None and answer != (release, registered):
                report(f"{host}/{binary} ({reading.point}): /healthz says release {answer[0]} service "
                       f"version {answer[1]}; the services table says release {release} version {registered}",
                       reading, f"{host}/{binary}")
    for release, versions in sorted(claims.items()):
        if len(versions) > 1:
            said = "; ".join(f"{v} ({who}, {r.point})" for v, (who, r) in sorted(versions.items()))
            report(f"release {release} reports {len(versions)} service versions: {said}",
                   next(iter(versions.values()))[1])
    if source and target and source != target and claims.get(source) and claims.get(target):
        old, new = max(claims[source]), min(claims[target])
        same_series = release_series(source) == release_series(target)
        if new < old or (new == old and not same_series):
            who, reading = claims[target][new]
            report(f"the new release {target} reports service version {new} ({who}), "
                   f"{'older than' if new < old else 'the same as'} {source}'s {old}: peers "
                   f"cannot tell the releases apart", reading)
    return problems


def versions_check(readings: Sequence[VersionReading], source: str | None = None,
                   target: str | None = None) -> Check:
    """``versions.consistent`` from the probe's readings."""
    judged = [r for r in readings if r.error is None]
    if not judged:
        why = next((r.error for r in readings if r.error), "no reading was made")
        return Check.errored(CHECK_VERSIONS, f"the services table could not be read: {why}"[:300])
    problems = judge_versions(readings, source, target)
    rows = sum(len(r.table) for r in judged)
    answers = sum(len(r.healthz) for r in judged)
    points = ", ".join(dict.fromkeys(r.point for r in judged))
    scope = f"{answers} /healthz answers and {rows} services-table rows at {len(judged)} point(s) ({points})"
    if len(judged) < len(readings):
        scope += f"; {len(readings) - len(judged)} table read(s) failed and were not judged"
    if problems:
        return Check.failed(CHECK_VERSIONS, f"{len(problems)} version disagreement(s) in {scope}: "
                                            f"{problems[0].message}"[:600],
                            [p.evidence() for p in problems[:MAX_EVIDENCE]])
    return Check.passed(CHECK_VERSIONS, f"{scope}: /healthz and the table agree, one service version per "
                                        "release, the new release's newer")

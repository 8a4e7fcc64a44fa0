"""Which release every service ran, and when: derived from the executor's step events.

The timeline records each ``replace-service`` step as a start and an end event
(host, service, from, to, outcome). From those and the releases at the start,
this module answers the questions the verdict, the swimlanes of the report and
the project tags ask: the releases at any moment, each host's release over time
(with the windows in which a service was being replaced, or the host rebooted),
and whether a project ran mixed versions at the same time (a rolling upgrade).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.verdict import Releases

REPLACE = "replace-service"
ROUNDING_S = 1e-6  # verdict.json rounds times to the microsecond: compare with that slack
REBOOT = "reboot-host"

# Service (minicloud or OpenStack) -> the project it belongs to, named by its catalog type.
SERVICE_PROJECTS: dict[str, str] = {
    "identity": "identity",
    "keystone": "identity",
    "image": "image",
    "glance": "image",
    "compute-api": "compute",
    "conductor": "compute",
    "scheduler": "compute",
    "compute-agent": "compute",
    "hypervisor": "compute",
    "network": "network",
    "datapath": "network",
    "neutron": "network",
    "placement": "placement",
}
PROJECT_PREFIXES: dict[str, str] = {"nova-": "compute", "neutron-": "network", "glance-": "image"}
DATA_PLANE_PROJECTS = frozenset({"compute", "network"})


def project_of(service: str) -> str:
    """The project (catalog type) a service belongs to; unknown services are their own project."""
    if service in SERVICE_PROJECTS:
        return SERVICE_PROJECTS[service]
    for prefix, project in PROJECT_PREFIXES.items():
        if service.startswith(prefix):
            return project
    return service


@dataclass(frozen=True)
class StepSpan:
    """One executor step as it ran: its start and end event merged."""

    start: float
    end: float | None  # None: still running when the timeline ends (crash, timeout)
    name: str
    step_id: str | None
    direction: str
    host: str | None
    service: str | None
    from_release: str | None
    to_release: str | None
    outcome: str | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "name": self.name,
            "step_id": self.step_id,
            "direction": self.direction,
            "host": self.host,
            "service": self.service,
            "from": self.from_release,
            "to": self.to_release,
            "outcome": self.outcome,
            "error": self.error,
        }


def step_spans(events: Iterable[Mapping[str, Any]]) -> list[StepSpan]:
    """Pair every step's start and end event (by step id and direction, else by name/host/service)."""
    open_steps: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    spans: list[StepSpan] = []

    def span(start: Mapping[str, Any], end: Mapping[str, Any] | None) -> StepSpan:
        last = end or start
        return StepSpan(
            start=float(start["t"]),
            end=float(end["t"]) if end else None,
            name=str(start.get("name", "step")),
            step_id=start.get("step_id"),
            direction=str(start.get("direction") or "forward"),
            host=start.get("host"),
            service=start.get("service"),
            from_release=last.get("from", start.get("from")),
            to_release=last.get("to", start.get("to")),
            outcome=end.get("outcome") if end else None,
            error=end.get("error") if end else None,
        )

    for event in events:
        if event.get("kind") != "step":
            continue
        identity = (
            event.get("step_id"),
            event.get("direction"),
            event.get("name"),
            event.get("host"),
            event.get("service"),
        )
        if event.get("phase") == "start":
            open_steps.setdefault(identity, []).append(event)
        elif event.get("phase") == "end":
            starts = open_steps.get(identity)
            if starts:
                spans.append(span(starts.pop(0), event))
    spans.extend(span(start, None) for starts in open_steps.values() for start in starts)
    return sorted(spans, key=lambda s: s.start)


def release_changes(spans: Iterable[StepSpan]) -> list[dict[str, Any]]:
    """Every service replacement as the verdict records it: {t, end, host, service, from, to, outcome}."""
    return [
        {
            "t": round(s.start, 6),
            "end": round(s.end, 6) if s.end is not None else None,
            "host": s.host,
            "service": s.service,
            "from": s.from_release,
            "to": s.to_release,
            "outcome": s.outcome,
        }
        for s in spans
        if s.name == REPLACE and s.host and s.service
    ]


def infer_initial(changes: Iterable[Mapping[str, Any]]) -> Releases:
    """Releases at the start when no plan says: each service's first replacement's ``from``."""
    initial: Releases = {}
    for change in changes:
        if change.get("from"):
            initial.setdefault(str(change["host"]), {}).setdefault(
                str(change["service"]), str(change["from"])
            )
    return initial


def releases_at(initial: Releases, changes: Iterable[Mapping[str, Any]], t: float | None = None) -> Releases:
    """Releases after every change that completed by ``t`` (all of them if None).

    A failed replacement leaves its service's release unknown (``?``): the old
    process is gone and the new one may never have come up.
    """
    releases = {host: dict(services) for host, services in initial.items()}
    for change in sorted(changes, key=lambda c: c.get("end") or float("inf")):
        end = change.get("end")
        if end is None or (t is not None and end > t + ROUNDING_S):
            continue
        host, service = str(change["host"]), str(change["service"])
        ok = change.get("outcome") == "ok"
        releases.setdefault(host, {})[service] = str(change["to"]) if ok else "?"
    return releases


def mixed_projects(initial: Releases, changes: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Projects whose services ran at two or more releases at once, with those releases.

    The state only changes when a replacement completes, so checking right
    after each completion covers every moment of the run.
    """
    mixed: dict[str, set[str]] = {}
    moments = [None, *sorted(c["end"] for c in changes if c.get("end") is not None)]
    for moment in moments:
        per_project: dict[str, set[str]] = {}
        for services in releases_at(initial, changes, moment).values():
            for service, release in services.items():
                if release != "?":
                    per_project.setdefault(project_of(service), set()).add(release)
        for project, seen in per_project.items():
            if len(seen) > 1:
                mixed.setdefault(project, set()).update(seen)
    return {project: sorted(seen) for project, seen in sorted(mixed.items())}


def _host_state(services: Mapping[str, str]) -> tuple[str, str]:
    seen = sorted(set(services.values()))
    if not seen:
        return "none", "-"
    if len(seen) == 1:
        return "release", seen[0]
    return "mixed", "mixed " + "+".join(seen)


def host_lanes(initial: Releases, spans: list[StepSpan], window: tuple[float, float]) -> list[dict[str, Any]]:
    """One swimlane per host: segments {start, end, state, label} covering ``window``.

    state is ``release`` (one release on every service), ``mixed``, ``replacing``
    (a service being replaced: label "svc a -> b"), ``rebooting`` or ``none``.
    """
    changes = release_changes(spans)
    if not initial:
        initial = infer_initial(changes)
    hosts = sorted(set(initial) | {c["host"] for c in changes})
    lanes = []
    for host in hosts:
        busy = [s for s in spans if s.host == host and s.name in (REPLACE, REBOOT)]
        marks = {window[0], window[1]}
        for s in busy:
            marks.update(m for m in (s.start, s.end) if m is not None and window[0] <= m <= window[1])
        points = sorted(marks)
        segments: list[dict[str, Any]] = []
        for a, b in itertools.pairwise(points):
            active = [s for s in busy if s.start <= a and (s.end is None or s.end >= b)]
            if active:
                current = active[-1]
                state = "rebooting" if current.name == REBOOT else "replacing"
                label = (
                    "reboot"
                    if state == "rebooting"
                    else f"{current.service} {current.from_release} -> {current.to_release}"
                )
            else:
                state, label = _host_state(releases_at(initial, changes, a).get(host, {}))
            if segments and segments[-1]["state"] == state and segments[-1]["label"] == label:
                segments[-1]["end"] = b
            else:
                segments.append({"start": a, "end": b, "state": state, "label": label})
        lanes.append({"host": host, "services": sorted(initial.get(host, {})), "segments": segments})
    return lanes


def service_lanes(initial: Releases, spans: list[StepSpan],
                  window: tuple[float, float]) -> list[dict[str, Any]]:
    """One swimlane per ``host/service`` (``host_lanes`` with every service its own host):
    where one host runs many services (OpenStack's controller), each swap is its own lane."""
    per_service: Releases = {f"{host}/{service}": {service: release}
                             for host, services in initial.items() for service, release in services.items()}
    moved = [dataclasses.replace(s, host=f"{s.host}/{s.service}") if s.host and s.service else s
             for s in spans]
    return host_lanes(per_service, moved, window)

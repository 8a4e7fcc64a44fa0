"""``api.contract``: the public APIs keep their contract across the upgrade, at every microversion.

openstacksdk negotiates the newest microversion both sides speak, so the rest
of the gate never sees what an older client sees. The contract probe
(``harness.gate.contract_probe``) asks the same resources at the minimum
microversion (2.1), at the old release's maximum and at the new release's
maximum, before, during and after the upgrade, and hands its readings here.
A reading is one ``GET``; this module judges them, with no I/O:

- **answers**: every request answered 200;
- **schemas**: every body validates against Nova's (Glance's) response schema
  at its microversion (``harness.checks.contract_schemas``);
- **shapes**: the same resource at the same microversion has the same fields,
  of the same types, at every point (a field dropped at 2.1 by the new
  release, or one showing at an older microversion, is a broken promise);
  items are compared only while their ``status`` is the same (Nova adds
  ``fault`` to an ERROR server, ``links`` to a running migration);
- **values**: ids, names, flavors, addresses, hosts of services... of the same
  resource at the same microversion do not change (fields that legitimately
  move during an upgrade, such as a server's host or a service's state, are
  ``VOLATILE``; a value that was null may be filled in); an item listed
  once is still listed later;
- **filters**: ``os-services?binary=nova-compute`` lists exactly the
  nova-compute rows of the unfiltered list, so a client written for Nova finds
  the compute services.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema

from harness.checks.contract_schemas import schema_for
from harness.verdict import Check, Evidence

CHECK_API_CONTRACT = "api.contract"
COMPUTE_FILTER = "os-services?binary=nova-compute"
#: problems cited in a failing check's evidence (the summary gives the count)
MAX_EVIDENCE = 20
MAX_SHAPE_DEPTH = 4

#: resource -> (the body's list or object key, the item's identity fields). ``None`` as the key:
#: the body is the item (Glance's image show).
ITEMS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "servers": ("servers", ("id",)),
    "servers/detail": ("servers", ("id",)),
    "server": ("server", ("id",)),
    "flavors": ("flavors", ("id",)),
    "flavors/detail": ("flavors", ("id",)),
    "flavor": ("flavor", ("id",)),
    "os-services": ("services", ("host", "binary")),
    COMPUTE_FILTER: ("services", ("host", "binary")),
    "os-migrations": ("migrations", ("id",)),
    "images": ("images", ("id",)),
    "image": (None, ("id",)),
}
SERVER_RESOURCES = frozenset({"servers", "servers/detail", "server"})
#: resources that list items (an item listed once must stay listed: nothing here is deleted)
LISTS = frozenset(r for r, (key, _) in ITEMS.items() if key is not None and key.endswith("s"))
_SERVER_VOLATILE = frozenset({
    "status", "updated", "progress", "hostId", "fault", "host_status", "OS-EXT-SRV-ATTR:host",
    "OS-EXT-SRV-ATTR:hypervisor_hostname", "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state",
    "OS-EXT-STS:power_state"})
_SERVICE_VOLATILE = frozenset({"status", "state", "updated_at", "disabled_reason", "forced_down"})
#: fields whose value may change during an upgrade without breaking a promise
VOLATILE: dict[str, frozenset[str]] = {
    **{r: _SERVER_VOLATILE for r in SERVER_RESOURCES},
    "os-services": _SERVICE_VOLATILE, COMPUTE_FILTER: _SERVICE_VOLATILE,
    "os-migrations": frozenset({"status", "updated_at", "links"}),
}


@dataclass(frozen=True)
class Reading:
    """One ``GET`` of the probe: where and when it was asked, at which microversion, what came back."""

    point: str  # "before", "after controller-1/compute-api -> 1.1", "after"
    api: str  # where it was asked: "lb" (the public endpoint) or a controller's name
    release: str | None  # the release of the API that answered (None: behind the load balancer)
    resource: str  # a key of ITEMS
    version: str | None  # the microversion asked (None: the image API has none)
    status: int
    body: Any
    t: float = 0.0
    error: str | None = None

    @property
    def where(self) -> str:
        release = f" ({self.release})" if self.release else ""
        return f"{self.point}, {self.api}{release}"

    @property
    def what(self) -> str:
        return f"GET {self.resource}" + (f" at {self.version}" if self.version else "")

    @property
    def target(self) -> str:
        return f"{self.api}/{'image' if self.version is None else 'compute-api'}"


@dataclass(frozen=True)
class Problem:
    kind: str  # answer | schema | shape | value | missing | filter
    message: str
    reading: Reading

    def evidence(self) -> Evidence:
        return Evidence(f"{self.kind}: {self.message}", window=(self.reading.t, self.reading.t),
                        target=self.reading.target)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def items(reading: Reading, tracked: frozenset[str] | None = None) -> dict[str, dict[str, Any]]:
    """The items of a reading by identity (servers: only ``tracked`` ones when given)."""
    key, ident = ITEMS[reading.resource]
    body = reading.body
    if not isinstance(body, dict):
        return {}
    raw = body if key is None else body.get(key)
    found = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    out: dict[str, dict[str, Any]] = {}
    for item in found:
        if not isinstance(item, dict):
            continue
        name = "/".join(str(item.get(f)) for f in ident)
        if tracked is not None and reading.resource in SERVER_RESOURCES and name not in tracked:
            continue
        out[name] = item
    return out


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number" if isinstance(value, float) else "integer"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def shape(value: Any, prefix: str = "", depth: int = 0) -> dict[str, set[str]]:
    """Field path -> the JSON types seen there (list elements merged under ``path[]``)."""
    out: dict[str, set[str]] = {}
    if depth > MAX_SHAPE_DEPTH:
        return out
    if isinstance(value, dict):
        for key, inner in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.setdefault(path, set()).add(_type(inner))
            for sub, types in shape(inner, path, depth + 1).items():
                out.setdefault(sub, set()).update(types)
    elif isinstance(value, list):
        for inner in value:
            path = f"{prefix}[]"
            out.setdefault(path, set()).add(_type(inner))
            for sub, types in shape(inner, path, depth + 1).items():
                out.setdefault(sub, set()).update(types)
    return out


def shape_differences(before: dict[str, set[str]], after: dict[str, set[str]]) -> list[str]:
    """Fields dropped, added or retyped between two shapes of the same item (null fits any type).

    A field inside a list that is empty on one side is no difference: only
    the other side has elements to describe.
    """
    def in_empty_list(path: str, other: dict[str, set[str]]) -> bool:
        head = path.split("[]", 1)[0] + "[]"
        return "[]" in path and head not in other

    found = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            if not in_empty_list(path, after):
                found.append(f"field {path} dropped")
        elif path not in before:
            if not in_empty_list(path, before):
                found.append(f"field {path} added")
        else:
            old, new = before[path] - {"null"}, after[path] - {"null"}
            if old and new and not old & new:
                found.append(f"field {path} changed type {'/'.join(sorted(old))} -> {'/'.join(sorted(new))}")
    return found


def value_differences(resource: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Top-level fields whose value changed (volatile fields and null -> value excepted)."""
    volatile = VOLATILE.get(resource, frozenset())
    found = []
    for key in sorted(set(before) & set(after) - volatile):
        if before[key] is not None and before[key] != after[key]:
            found.append(f"{key} changed {_short(before[key])} -> {_short(after[key])}")
    return found


@functools.lru_cache(maxsize=256)
def _validator(resource: str, version: str | None) -> jsonschema.Draft7Validator | None:
    schema = schema_for(resource, version)
    return None if schema is None else jsonschema.Draft7Validator(schema)


def schema_problems(reading: Reading, limit: int = 3) -> list[Problem]:
    validator = _validator(reading.resource, reading.version)
    if validator is None:
        return []
    errors = sorted(validator.iter_errors(reading.body),
                    key=lambda e: list(map(str, e.absolute_path)))
    problems = []
    for error in errors[:limit]:
        path = "/".join(str(p) for p in error.absolute_path) or "(body)"
        problems.append(Problem("schema", f"{reading.what} ({reading.where}): {path}: "
                                          f"{_short(error.message, 160)}", reading))
    return problems


def _filter_problems(readings: Sequence[Reading]) -> list[Problem]:
    unfiltered = {(r.point, r.api, r.version): r for r in readings if r.resource == "os-services"}
    problems = []
    for reading in readings:
        full = unfiltered.get((reading.point, reading.api, reading.version))
        if reading.resource != COMPUTE_FILTER or full is None or reading.status != 200:
            continue
        want = sorted(k for k, item in items(full).items() if item.get("binary") == "nova-compute")
        got = sorted(items(reading))
        if got != want or not want:
            problems.append(Problem("filter", f"{reading.what} ({reading.where}) lists {got or 'nothing'}; "
                                              f"the unfiltered list's nova-compute services are "
                                              f"{want or 'none'}", reading))
    return problems


def _group_problems(resource: str, version: str | None, group: Sequence[Reading],
                    tracked: frozenset[str] | None) -> list[Problem]:
    """Shapes, values and presence of the same items across the points of one (resource, version)."""
    problems: list[Problem] = []
    first: dict[str, tuple[Reading, dict[str, Any]]] = {}
    by_status: dict[tuple[str, Any], tuple[Reading, dict[str, Any]]] = {}
    for reading in sorted(group, key=lambda r: r.t):
        listed = items(reading, tracked)
        for name, (origin, _) in first.items():
            if name not in listed and resource in LISTS:
                problems.append(Problem("missing", f"{reading.what} ({reading.where}) no longer lists "
                                                   f"{name} (listed at {origin.where})", reading))
        for name, item in listed.items():
            if name not in first:
                first[name] = (reading, item)
            else:
                origin, reference = first[name]
                problems += [Problem("value", f"{reading.what} {name}: {d} between {origin.where} and "
                                              f"{reading.where}", reading)
                             for d in value_differences(resource, reference, item)]
            status_key = (name, item.get("status"))
            if status_key not in by_status:
                by_status[status_key] = (reading, item)
                continue
            origin, reference = by_status[status_key]
            problems += [Problem("shape", f"{reading.what} {name}: {d} between {origin.where} and "
                                          f"{reading.where}", reading)
                         for d in shape_differences(shape(reference), shape(item))]
    return problems


def judge(readings: Sequence[Reading], tracked: Iterable[str] | None = None) -> list[Problem]:
    """Every broken promise the readings show (see the module docstring), duplicates folded."""
    tracked_ids = frozenset(tracked) if tracked is not None else None
    problems: list[Problem] = []
    answered = []
    for reading in readings:
        if reading.error is not None or reading.status != 200:
            problems.append(Problem("answer", f"{reading.what} ({reading.where}) answered "
                                              f"{reading.error or reading.status}", reading))
            continue
        answered.append(reading)
        problems += schema_problems(reading)
    problems += _filter_problems(answered)
    groups: dict[tuple[str, str | None], list[Reading]] = {}
    for reading in answered:
        groups.setdefault((reading.resource, reading.version), []).append(reading)
    for (resource, version), group in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or "")):
        problems += _group_problems(resource, version, group, tracked_ids)
    return _fold(problems)


def _fold(problems: list[Problem]) -> list[Problem]:
    """One problem per message: the same dropped field seen at every later point is one problem."""
    seen: set[str] = set()
    out = []
    for problem in problems:
        if problem.message not in seen:
            seen.add(problem.message)
            out.append(problem)
    return out


def contract_check(readings: Sequence[Reading], tracked: Iterable[str] | None = None,
                   problems: list[Problem] | None = None) -> Check:
    """``api.contract`` from the probe's readings (``problems``: ``judge``'s, if already known)."""
    if not readings:
        return Check.skipped(CHECK_API_CONTRACT, "no API reading was made (nothing to compare)")
    if problems is None:
        problems = judge(readings, tracked)
    versions = sorted({r.version for r in readings if r.version}, key=lambda v: tuple(map(int, v.split("."))))
    points = list(dict.fromkeys(r.point for r in readings))
    scope = (f"{len(readings)} responses at microversions {', '.join(versions)} from {len(points)} "
             f"point(s) ({', '.join(points)})")
    if problems:
        kinds = sorted({p.kind for p in problems})
        return Check.failed(CHECK_API_CONTRACT,
                            f"{len(problems)} contract problem(s) ({', '.join(kinds)}) in {scope}: "
                            f"{problems[0].message}"[:600],
                            [p.evidence() for p in problems[:MAX_EVIDENCE]])
    return Check.passed(CHECK_API_CONTRACT, f"{scope}: answers, Nova's schemas, shapes and values agree")

"""The rules a scenario file must satisfy, turned into typed models.

Shared by every cloud's profile (``harness.clouds.<cloud>.build_scenario``
composes them). ``check_schema`` turns JSON Schema errors into one message
naming the field and what is valid; the builders apply the cross-field
rules: host names and addresses unique, releases known, only N and N+1 in one
cloud, a sane policy for the hosts there are.
"""
from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema

from harness.errors import ValidationError
from harness.scenario.model import (
    DEFAULT_TOPOLOGY,
    ROLE_SERVICES,
    ROLLED_ROLES,
    Host,
    Scenario,
    Topology,
    Upgrade,
    UpgradePolicy,
    release_key,
    release_problem,
    release_series_index,
    scenario_schema,
    section_parser,
)


def field_name(parts: Any) -> str:
    """``["topology", "hosts", 2, "roles", 0]`` -> ``topology.hosts[2].roles[0]``."""
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(top level)"


def _schema_at(schema: Mapping[str, Any], sub: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = sub.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved: Mapping[str, Any] = schema["$defs"][ref.rsplit("/", 1)[1]]
        return resolved
    return sub


def _describe(error: jsonschema.ValidationError, schema: Mapping[str, Any]) -> tuple[str, str]:
    """(field, problem) for one schema error, in words a user acts on."""
    path = list(error.absolute_path)
    where = field_name(path)
    kind, instance = error.validator, error.instance
    if kind == "additionalProperties":
        allowed = sorted(_schema_at(schema, error.schema).get("properties", {}))
        extra = sorted(set(instance) - set(allowed))
        return field_name([*path, extra[0]]), f"unknown field {extra[0]!r}; valid: {', '.join(allowed)}"
    if kind == "required":
        missing = [name for name in error.validator_value if name not in instance]
        return field_name([*path, missing[0]]), "missing (required)"
    if kind == "enum":
        noun = "role" if "roles" in [p for p in path if isinstance(p, str)][-1:] else "value"
        valid = ", ".join(str(v) for v in error.validator_value)
        return where, f"unknown {noun} {instance!r}; valid: {valid}"
    if kind == "type":
        return where, f"must be {error.validator_value}, got {type(instance).__name__} {instance!r}"
    if kind == "pattern" and isinstance(instance, str):
        problem = release_problem(instance) if "release" in where else None
        return where, problem or f"{instance!r} is invalid: use lowercase letters, digits and dashes"
    if kind in ("minimum", "exclusiveMinimum"):
        bound = "at least" if kind == "minimum" else "more than"
        return where, f"must be {bound} {error.validator_value}, got {instance!r}"
    if kind == "minItems":
        return where, f"must list at least {error.validator_value} item(s)"
    if kind == "oneOf" and path and path[-1] == "order":
        return where, f"unknown order {instance!r}; valid: name, random, or a list of host names"
    if kind == "format":
        return where, f"{instance!r} is not a valid {error.validator_value} address"
    return where, error.message


def check_schema(raw: Any, path: str) -> None:
    """Raise ValidationError for the first structural problem (stable order)."""
    if not isinstance(raw, dict):
        raise ValidationError(path, "(top level)", "must be a mapping with at least 'name'")
    schema = scenario_schema()
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(raw), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        where, problem = _describe(errors[0], schema)
        raise ValidationError(path, where, problem)


def _check_release(path: str, where: str, label: str) -> str:
    problem = release_problem(label)
    if problem:
        raise ValidationError(path, where, problem)
    return label


def build_topology(raw: Mapping[str, Any], default_release: str | None, path: str) -> Topology:
    """Hosts with every service's release; the default topology when none is given."""
    section = raw.get("topology") or {}
    default_release = section.get("release", default_release)
    where_default = "topology.release" if "release" in section else "upgrade.from"
    if default_release is not None:
        _check_release(path, where_default, default_release)
    host_entries = section.get("hosts") or [
        {"name": name, "roles": [role]} for name, role in DEFAULT_TOPOLOGY]
    hosts: list[Host] = []
    names: dict[str, int] = {}
    addresses: dict[str, str] = {}
    for index, entry in enumerate(host_entries):
        where = f"topology.hosts[{index}]"
        name = entry["name"]
        if name in names:
            raise ValidationError(path, f"{where}.name",
                                  f"duplicate host name {name!r} (also topology.hosts[{names[name]}])")
        names[name] = index
        roles = tuple(entry["roles"])
        if len(set(roles)) != len(roles):
            raise ValidationError(path, f"{where}.roles", f"a role is listed twice in {list(roles)}")
        release = entry.get("release", default_release)
        services = [s for role in roles for s in ROLE_SERVICES[role]]
        if release is None and services:
            raise ValidationError(path, f"{where}.release",
                                  "missing: give it here, in topology.release or in upgrade.from")
        if "release" in entry:
            _check_release(path, f"{where}.release", release)
        per_service = entry.get("releases") or {}
        for service, label in per_service.items():
            if service not in services:
                valid = ", ".join(services) or "none (this host runs no minicloud service)"
                raise ValidationError(path, f"{where}.releases.{service}",
                                      f"service {service!r} does not run on this host; valid: {valid}")
            _check_release(path, f"{where}.releases.{service}", label)
        releases = {s: per_service.get(s, release) for s in services}
        address = entry.get("address")
        if address is not None:
            if address in addresses:
                raise ValidationError(path, f"{where}.address",
                                      f"{address} is already the address of {addresses[address]}; "
                                      "every host needs its own")
            addresses[address] = name
        hosts.append(Host(name=name, roles=roles, releases=releases, address=address))
    return Topology(hosts=tuple(hosts))


def _field_of(topology: Topology, host: str, service: str) -> str:
    index = [h.name for h in topology.hosts].index(host)
    return f"topology.hosts[{index}] ({host}/{service})"


def check_series(topology: Topology, target: str | None, path: str) -> None:
    """Only N and N+1 run together: in the topology, and with the target."""
    labelled = [(h.name, s, r) for h in topology.hosts for s, r in h.releases.items()]
    if not labelled:
        return
    oldest = min(labelled, key=lambda item: release_series_index(item[2]))
    for host, service, label in labelled:
        if release_series_index(label) - release_series_index(oldest[2]) > 1:
            raise ValidationError(
                path, _field_of(topology, host, service),
                f"release {label} next to {oldest[2]} ({oldest[0]}/{oldest[1]}): "
                "only N and N+1 may run in one cloud")
    if target is not None and release_series_index(target) - release_series_index(oldest[2]) > 1:
        raise ValidationError(
            path, "upgrade.to",
            f"{target} is two release series after {oldest[2]} ({oldest[0]}/{oldest[1]}): "
            "only N -> N+1 is supported; upgrade to the series in between first")


def build_policy(raw: Mapping[str, Any], action: str, topology: Topology, path: str) -> UpgradePolicy:
    where = "upgrade.policy"
    computes = topology.with_role("compute")
    batch = int(raw.get("batch_size", 1))
    max_unavailable = int(raw.get("max_unavailable", batch))
    if computes and max_unavailable > len(computes):
        raise ValidationError(path, f"{where}.max_unavailable",
                              f"{max_unavailable} is more than the {len(computes)} compute hosts; "
                              f"valid: 1..{len(computes)}")
    if batch > max_unavailable:
        raise ValidationError(path, f"{where}.batch_size",
                              f"{batch} exceeds max_unavailable {max_unavailable}: a batch takes its "
                              f"hosts down together; valid: 1..{max_unavailable}")
    instances = raw.get("instances", "live-migrate")
    if instances != "leave" and computes and batch >= len(computes):
        raise ValidationError(path, f"{where}.batch_size",
                              f"{batch} takes every compute host down at once, leaving nowhere to "
                              f"{instances} instances to; use a smaller batch or instances: leave")
    order_raw = raw.get("order", "name")
    order: str | tuple[str, ...] = order_raw if isinstance(order_raw, str) else tuple(order_raw)
    host_names = [h.name for h in topology.hosts]
    if isinstance(order, tuple):
        seen: set[str] = set()
        for index, name in enumerate(order):
            if name not in host_names:
                raise ValidationError(path, f"{where}.order[{index}]",
                                      f"no host {name!r}; valid: {', '.join(host_names)}")
            if name in seen:
                raise ValidationError(path, f"{where}.order[{index}]", f"host {name!r} listed twice")
            seen.add(name)
    patterns = tuple(raw.get("hosts", ("*",)))
    roles = tuple(raw.get("roles", ROLLED_ROLES if action == "upgrade" else ("compute",)))
    policy = UpgradePolicy(
        batch_size=batch, max_unavailable=max_unavailable, order=order,
        pause_between_batches=float(raw.get("pause_between_batches", 0.0)),
        health_timeout=float(raw.get("health_timeout", 120.0)),
        stop_timeout=float(raw.get("stop_timeout", 15.0)),
        migration_timeout=float(raw.get("migration_timeout", 120.0)),
        instances=instances, hosts=patterns, roles=roles,
        auto_rollback=bool(raw.get("auto_rollback", True)),
        online_migration_batch=int(raw.get("online_migration_batch", 50)),
        api_drain=bool(raw.get("api_drain", True)))
    for index, pattern in enumerate(patterns):
        if not any(fnmatch.fnmatchcase(name, pattern) for name in host_names):
            raise ValidationError(path, f"{where}.hosts[{index}]",
                                  f"pattern {pattern!r} matches no host; hosts: {', '.join(host_names)}")
    return policy


def build_upgrade(raw: Mapping[str, Any] | None, topology: Topology, path: str) -> Upgrade | None:
    if raw is None:
        return None
    action = raw.get("action", "upgrade")
    source = _check_release(path, "upgrade.from", raw["from"])
    if "to" not in raw and action == "upgrade":
        raise ValidationError(path, "upgrade.to", "missing (required for action upgrade)")
    target = _check_release(path, "upgrade.to", raw.get("to", source))
    if action == "reboot" and target != source:
        raise ValidationError(path, "upgrade.to",
                              f"a rolling reboot keeps the release: to must equal from ({source})")
    if release_key(target) < release_key(source):
        raise ValidationError(path, "upgrade.to",
                              f"target {target} is older than the source {source}: downgrades are not "
                              "supported (roll back an unfinished upgrade with `rollgate rollback`)")
    check_series(topology, target, path)
    for host in topology.hosts:
        for service, label in host.releases.items():
            if release_key(label) > release_key(target):
                raise ValidationError(path, _field_of(topology, host.name, service),
                                      f"release {label} is newer than the upgrade's target {target}")
    policy = build_policy(raw.get("policy") or {}, action, topology, path)
    hold = raw.get("hold")
    hold_after = None if hold is None else int(hold["after_batch"])
    if hold_after is not None:
        computes = [h for h in topology.with_role("compute") if policy.selects(h)]
        batches = -(-len(computes) // policy.batch_size) if "compute" in policy.roles else 0
        if hold_after >= batches:
            valid = (f"valid: 1..{batches - 1}" if batches > 1
                     else "a hold needs at least 2 compute batches")
            raise ValidationError(path, "upgrade.hold.after_batch",
                                  f"{hold_after} leaves no compute batch after the hold "
                                  f"({batches} batch(es)); {valid}")
    rollback_before = raw.get("rollback_before")
    if rollback_before is not None and action != "upgrade":
        raise ValidationError(path, "upgrade.rollback_before",
                              "only an upgrade rolls back; remove it from a rolling reboot")
    expect = raw.get("expect", "complete")
    if expect == "rollback" and action != "upgrade":
        raise ValidationError(path, "upgrade.expect",
                              "only an upgrade rolls back; remove it from a rolling reboot")
    return Upgrade(from_release=source, to_release=target, action=action, policy=policy,
                   hold_after_batch=hold_after,
                   hold_seconds=float((hold or {}).get("seconds", 0.0)), rollback_before=rollback_before,
                   expect=expect)


def parse_with(raw: Any, path: str, build: Callable[[Mapping[str, Any], str], Scenario]) -> Scenario:
    """The scenario ``build`` (a cloud's builder) makes of a mapping ``check_schema`` accepted,
    with its traffic and SLO sections typed (``SECTION_PARSERS``)."""
    scenario = build(raw, path)
    parsed: dict[str, Any] = {}
    for section in ("traffic", "slo"):
        parser = section_parser(section)
        if parser is not None:
            parsed[f"{section}_config"] = parser(raw.get(section), path)
    return dataclasses.replace(scenario, **parsed)

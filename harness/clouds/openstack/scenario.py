"""The rules of a scenario with ``cloud: openstack``: real Keystone, Placement and Nova.

The openstack profile (``harness.clouds.openstack``) fixes the hosts (db, mq,
lb, one controller) and their services; a scenario chooses only the number of
computes (``topology.computes``), the release pair and the policy. Releases
are OpenStack's (2026.1, 2026.2), and only N-1 -> N is an upgrade: a pair that
skips a release, goes backwards or names a release the profile has no image
for is refused here, naming the field, before anything starts. The policy is
checked by the same rules as minicloud's (``build_policy``), plus what the
profile does not wire (cold migration, rolling reboots, holds).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.clouds import openstack as profile
from harness.errors import ValidationError
from harness.scenario import Host, Scenario, Topology, Upgrade
from harness.scenario.rules import build_policy

DEFAULT_COMPUTES = 3
#: scenario fields that only mean something on minicloud
MINICLOUD_ONLY = {"topology.release": "the profile deploys every service at upgrade.from",
                  "topology.hosts": "the profile fixes the hosts; give topology.computes",
                  "upgrade.hold": "holds are not wired for the openstack profile"}


def openstack_topology(release: str, computes: int) -> Topology:
    """The profile's hosts with the release of every OpenStack service (MariaDB & co left out)."""
    return Topology(tuple(
        Host(spec.name, tuple(spec.roles), {s: r for s, r in spec.services.items() if r != profile.SYSTEM})
        for spec in profile.topology(release, computes)))


def _release(path: str, where: str, label: str) -> str:
    problem = profile.check_release(label)
    if problem:
        raise ValidationError(path, where, problem)
    return label


def _refuse_minicloud_fields(raw: Mapping[str, Any], path: str) -> None:
    sections = {"topology": raw.get("topology") or {}, "upgrade": raw.get("upgrade") or {}}
    for name, why in MINICLOUD_ONLY.items():
        section, _, key = name.partition(".")
        if key in sections[section]:
            raise ValidationError(path, name, f"minicloud only (cloud: openstack): {why}")
    if raw.get("checks"):
        raise ValidationError(path, "checks", "project-isolation checks minicloud's 1.1 defect; "
                              "no named check is wired for the openstack profile")


def build_upgrade(raw: Mapping[str, Any], topology: Topology, path: str) -> Upgrade:
    action = raw.get("action", "upgrade")
    if action != "upgrade":
        raise ValidationError(path, "upgrade.action", f"{action!r} is not wired for the openstack "
                              "profile (rolling reboots are minicloud only); valid: upgrade")
    source = _release(path, "upgrade.from", raw["from"])
    if "to" not in raw:
        raise ValidationError(path, "upgrade.to", "missing (required for action upgrade)")
    target = _release(path, "upgrade.to", raw["to"])
    step = profile.RELEASES.index(target) - profile.RELEASES.index(source)
    if step <= 0:
        raise ValidationError(path, "upgrade.to", f"{target} is not newer than {source}: "
                              f"an upgrade goes from N-1 to N ({' -> '.join(profile.RELEASES)})")
    if step > 1:
        raise ValidationError(path, "upgrade.to", f"{source} -> {target} skips a release: OpenStack "
                              "supports N-1 -> N only; upgrade to the release in between first")
    policy_raw = dict(raw.get("policy") or {})
    policy_raw.setdefault("roles", list(profile.UPGRADE_ROLES))
    policy = build_policy(policy_raw, action, topology, path)
    profile.check_policy(policy.instances, policy.roles, path)
    return Upgrade(from_release=source, to_release=target, action=action, policy=policy,
                   rollback_before=raw.get("rollback_before"))


def build_openstack_scenario(raw: Mapping[str, Any], path: str) -> Scenario:
    """The typed openstack scenario, after every rule held (ValidationError naming the field)."""
    _refuse_minicloud_fields(raw, path)
    upgrade_raw = raw.get("upgrade")
    if upgrade_raw is None:
        raise ValidationError(path, "upgrade", "missing: an openstack scenario rolls from upgrade.from "
                              f"to upgrade.to ({' -> '.join(profile.RELEASES)})")
    computes = int((raw.get("topology") or {}).get("computes", DEFAULT_COMPUTES))
    problem = profile.check_computes(computes)
    if problem:
        raise ValidationError(path, "topology.computes", problem)
    source = _release(path, "upgrade.from", upgrade_raw["from"])
    topology = openstack_topology(source, computes)
    upgrade = build_upgrade(upgrade_raw, topology, path)
    return Scenario(
        name=raw["name"], description=raw.get("description", ""), topology=topology, upgrade=upgrade,
        seed=raw.get("seed"), traffic=raw.get("traffic") or {}, slo=raw.get("slo") or {},
        faults=tuple(raw.get("faults") or ()), resources=raw.get("resources") or {}, checks=(),
        path=path, cloud="openstack")

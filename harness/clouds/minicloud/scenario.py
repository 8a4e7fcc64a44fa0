"""The rules of a minicloud scenario: its hosts as the scenario lists them, and the shared rules.

minicloud's topology is the scenario's (``topology.hosts``, or the default
topology), its releases are minicloud's (``harness.scenario.model``'s release
table, restated from images/minicloud/DESIGN.md), and every rule is one of
``harness.scenario.rules``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.errors import ValidationError
from harness.scenario import Scenario
from harness.scenario.rules import build_topology, build_upgrade, check_series


def build_minicloud_scenario(raw: Mapping[str, Any], path: str) -> Scenario:
    """The typed scenario, after every cross-field rule held."""
    if "computes" in (raw.get("topology") or {}):
        raise ValidationError(path, "topology.computes", "openstack only (cloud: openstack); a minicloud "
                              "topology lists its hosts in topology.hosts")
    upgrade_raw = raw.get("upgrade")
    default_release = upgrade_raw["from"] if upgrade_raw else None
    topology = build_topology(raw, default_release, path)
    if upgrade_raw is None:
        check_series(topology, None, path)
    upgrade = build_upgrade(upgrade_raw, topology, path)
    return Scenario(
        name=raw["name"], description=raw.get("description", ""), topology=topology,
        upgrade=upgrade, seed=raw.get("seed"), traffic=raw.get("traffic") or {},
        slo=raw.get("slo") or {}, faults=tuple(raw.get("faults") or ()),
        resources=raw.get("resources") or {}, checks=tuple(raw.get("checks") or ()), path=path)


def check_schedulable(scenario: Scenario) -> None:
    """A minicloud topology needs a controller (the API, the scheduler), a compute host (where
    the resource and traffic servers go) and a network host (every compute agent asks the network
    service for ports and floating IPs): without one, a run would deploy and then end ERROR on a
    timeout whose cause is only in a service's log."""
    for role, why in (("controller", "nothing would serve the API or schedule a server"),
                      ("compute", "no server could be scheduled (the resources and the traffic boot "
                                  "servers)"),
                      ("network", "compute agents cannot start without the network service (ports, "
                                  "floating IPs)")):
        if not scenario.topology.with_role(role):
            raise ValidationError(scenario.path, "topology.hosts",
                                  f"no host has the {role} role: {why}; add a host with roles: [{role}]")

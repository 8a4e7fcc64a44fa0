"""The openstack profile: real Keystone, Placement and Nova (fake virt driver) in containers.

Its topology is fixed (``harness.clouds.openstack``; a scenario chooses the
number of computes), its plan is its own service order
(``harness.clouds.openstack_plan``), it runs on Docker only, and none of the
gate's minicloud probes can read it (its own end checks compare Nova's service
versions and run ``nova-status upgrade check``: ``harness.clouds.openstack_gate``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.clouds import openstack
from harness.clouds.base import CloudProfile

if TYPE_CHECKING:
    from harness.clouds.openstack_gate import OpenStackGateCloud
    from harness.executor.plan import Plan
    from harness.runstate import RunState
    from harness.scenario.model import Scenario


class OpenStackProfile(CloudProfile):
    name = "openstack"
    releases = openstack.RELEASES
    backends = ("docker",)
    default_release = openstack.DEFAULT_RELEASE
    summary = "real OpenStack services in containers"

    def build_scenario(self, raw: Mapping[str, Any], path: str) -> Scenario:
        from harness.clouds.openstack_scenario import build_openstack_scenario

        return build_openstack_scenario(raw, path)

    def plan(self, scenario: Scenario, seed: int) -> Plan:
        from harness.clouds.openstack_plan import plan_openstack

        assert scenario.upgrade is not None
        return plan_openstack(scenario.name, scenario.topology, scenario.upgrade.to_release,
                              scenario.upgrade.policy, seed)

    def deploy(self, state: RunState, scenario: Scenario, backend: str) -> OpenStackGateCloud:
        from harness.clouds.openstack_gate import open_openstack

        return open_openstack(state, scenario)

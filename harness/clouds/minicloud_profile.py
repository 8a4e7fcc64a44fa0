"""minicloud's profile: the simulated cloud that ships with rollgate (images/minicloud/).

Its scenarios list their hosts; its plan is the executor's nova-style planner
(``harness.executor.plan.plan_upgrade``); it deploys on either backend through
``harness.deploy``, and every gate probe can read it (its ``/healthz``, its admin
CLI, its request-holding test hooks).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.clouds import minicloud
from harness.clouds.base import PROBES, CloudProfile
from harness.clouds.minicloud_scenario import build_minicloud_scenario, check_schedulable

if TYPE_CHECKING:
    from harness.clouds.minicloud_gate import GateCloud
    from harness.executor.plan import Plan
    from harness.runstate import RunState
    from harness.scenario.model import Scenario


class MinicloudProfile(CloudProfile):
    name = "minicloud"
    releases = minicloud.RELEASES
    backends = ("process", "docker")
    default_release = "1.0"
    summary = "the simulated cloud, as local processes or containers"
    gate_probes = frozenset(PROBES)

    def build_scenario(self, raw: Mapping[str, Any], path: str) -> Scenario:
        return build_minicloud_scenario(raw, path)

    def plan(self, scenario: Scenario, seed: int) -> Plan:
        from harness.executor.plan import plan_upgrade

        assert scenario.upgrade is not None
        return plan_upgrade(scenario.name, scenario.topology, scenario.upgrade, seed)

    def check_runnable(self, scenario: Scenario) -> None:
        check_schedulable(scenario)

    def deploy(self, state: RunState, scenario: Scenario, backend: str) -> GateCloud:
        from harness.clouds.minicloud_gate import GateCloud, deploy_on

        return GateCloud(state, deploy_on(state, scenario, backend))

"""minicloud's profile: the simulated cloud that ships with rollgate (images/minicloud/).

Its scenarios list their hosts; its plan is the executor's nova-style planner
(``harness.executor.plan.plan_upgrade``); it deploys on either backend through
``harness.deploy``, and every gate probe can read it (its ``/healthz``, its admin
CLI, its request-holding test hooks).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.clouds import minicloud
from harness.clouds.base import PROBES, CloudProfile, UpRequest
from harness.clouds.minicloud.scenario import build_minicloud_scenario, check_schedulable

if TYPE_CHECKING:
    from harness.clouds.minicloud.gate import GateCloud
    from harness.executor.ops import CloudOps
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
    rolling_reboot = True
    faults = True

    def build_scenario(self, raw: Mapping[str, Any], path: str) -> Scenario:
        return build_minicloud_scenario(raw, path)

    def plan(self, scenario: Scenario, seed: int) -> Plan:
        from harness.executor.plan import plan_upgrade

        assert scenario.upgrade is not None
        return plan_upgrade(scenario.name, scenario.topology, scenario.upgrade, seed)

    def check_runnable(self, scenario: Scenario) -> None:
        check_schedulable(scenario)

    def deploy(self, state: RunState, scenario: Scenario, backend: str) -> GateCloud:
        from harness.clouds.minicloud.gate import GateCloud, deploy_on

        return GateCloud(state, deploy_on(state, scenario, backend))

    def prepare_up(self, request: UpRequest) -> UpRequest:
        from harness.clouds.minicloud import runs as minicloud_runs

        return minicloud_runs.prepare_up(request)

    def up(self, run_id: str, request: UpRequest) -> list[str]:
        from harness.clouds.minicloud import runs as minicloud_runs

        return minicloud_runs.up(run_id, request)

    def destroy_run(self, state: RunState) -> None:
        from harness.backends import make_backend

        make_backend(state.backend, state).destroy()

    def plan_for_run(self, state: RunState, action: str, target: str | None, policy: dict[str, Any],
                     seed: int | None, label: str) -> Plan:
        from harness.clouds.minicloud import runs as minicloud_runs

        return minicloud_runs.plan_for_run(state, action, target, policy, seed, label)

    def run_ops(self, state: RunState, plan: Plan) -> CloudOps:
        from harness.backends import make_backend
        from harness.clouds.minicloud.ops import MinicloudOps

        return MinicloudOps(make_backend(state.backend, state), state, target_release=plan.to_release)

    def image_specs(self) -> Sequence[Any]:
        from harness.images import image_specs

        return image_specs()

    def build_images(self, client: Any, releases: Sequence[str] | None,
                     progress: Callable[[str], None]) -> list[Any]:
        from harness.images import ImageBuilder

        return list(ImageBuilder(client, progress=progress).build_all(releases or None))

    def build_hint(self, release: str | None) -> str:
        return "rollgate images build"

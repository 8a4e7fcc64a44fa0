"""The openstack profile: real Keystone, Placement and Nova (fake virt driver) in containers.

Its topology is fixed (``harness.clouds.openstack``; a scenario chooses the
number of computes), its plan is its own service order
(``harness.clouds.openstack.plan``), it runs on Docker only, and none of the
gate's minicloud probes can read it (its own end checks compare Nova's service
versions and run ``nova-status upgrade check``: ``harness.clouds.openstack.gate``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.clouds import openstack
from harness.clouds.base import CloudProfile, UpRequest

if TYPE_CHECKING:
    from harness.clouds.openstack.gate import OpenStackGateCloud
    from harness.executor.ops import CloudOps
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
        from harness.clouds.openstack.scenario import build_openstack_scenario

        return build_openstack_scenario(raw, path)

    def plan(self, scenario: Scenario, seed: int) -> Plan:
        from harness.clouds.openstack.plan import plan_openstack

        assert scenario.upgrade is not None
        return plan_openstack(scenario.name, scenario.topology, scenario.upgrade.to_release,
                              scenario.upgrade.policy, seed)

    def deploy(self, state: RunState, scenario: Scenario, backend: str) -> OpenStackGateCloud:
        from harness.clouds.openstack.gate import open_openstack

        return open_openstack(state, scenario)

    def check_up(self, request: UpRequest) -> None:
        from harness.clouds.openstack import runs as openstack_runs

        openstack_runs.check_up(request)

    def prepare_up(self, request: UpRequest) -> UpRequest:
        return request  # the topology is the profile's (openstack.topology)

    def up(self, run_id: str, request: UpRequest) -> list[str]:
        from harness.clouds.openstack import runs as openstack_runs

        return openstack_runs.up(run_id, request)

    def destroy_run(self, state: RunState) -> None:
        from harness.clouds.openstack import runs as openstack_runs

        openstack_runs.destroy_run(state)

    def service_health(self, state: RunState) -> Mapping[tuple[str, str], str] | None:
        from harness.clouds.openstack import runs as openstack_runs

        return openstack_runs.health(state)

    def plan_for_run(self, state: RunState, action: str, target: str | None, policy: dict[str, Any],
                     seed: int | None, label: str) -> Plan:
        from harness.clouds.openstack import runs as openstack_runs

        return openstack_runs.plan_for_run(state, action, target, policy, seed, label)

    def run_ops(self, state: RunState, plan: Plan) -> CloudOps:
        from harness.clouds.openstack import runs as openstack_runs

        return openstack_runs.run_ops(state, plan)

    def image_specs(self) -> Sequence[Any]:
        from harness.clouds.openstack.images import openstack_image_specs

        return openstack_image_specs()

    def build_images(self, client: Any, releases: Sequence[str] | None,
                     progress: Callable[[str], None]) -> list[Any]:
        from harness.clouds.openstack.images import OpenStackImageBuilder

        return list(OpenStackImageBuilder(client, progress=progress).build_openstack(releases or None))

    def build_hint(self, release: str | None) -> str:
        return "rollgate images build --cloud openstack" + (f" --release {release}" if release else "")

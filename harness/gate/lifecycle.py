"""Resources created by the new release, in the mixed state and after the upgrade, judged at the end.

Resources created only before the upgrade test one direction: the new release
reading what the old one wrote. The other direction matters as much, most of
all after a rollback: what the new release wrote (a server it built, an
address it stored in its new columns) must be read back by whatever runs at
the end, the old release included. So the ``lifecycle`` probe watches the
executor's operations and, at two points of the mixed state, creates one more
resource and verifies every resource so far:

- ``mixed-api``: right after the last controller's compute-api runs the new
  release (every API answer and every build now comes from the new code,
  while the computes still run the old one);
- ``mixed-compute``: right after the first compute upgraded to the new release
  is enabled again (its builds may land there: the new agent writes them).

and the run creates one more right after the executor's last step (also
after a rollback: ``after_upgrade_phases``). ``verify-after`` then verifies
them all. Each point records its phases (``resources.create-<point>``,
``resources.verify-<point>``) in the run's phase list, so that
``resources.intact`` judges the mixed verifications with the others.

minicloud only: the phases read a data plane the openstack profile does not
have (its fake driver runs no guest), so the factory returns None for a cloud
whose profile does not list the ``lifecycle`` probe (``CloudProfile.gate_probes``).
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from harness import clouds
from harness.gate.probes import PROBE_FACTORIES, ProbeContext, StepProbe
from harness.resources import PhaseResult, ResourcePhases
from harness.scenario import Scenario

LOG = logging.getLogger(__name__)
COMPUTE_API = "compute-api"
COMPUTE_AGENT = "compute-agent"
MIXED_API = "mixed-api"
MIXED_COMPUTE = "mixed-compute"
AFTER = "after"
SERVERS_PER_POINT = 1


class LifecycleProbe(StepProbe):
    """Creates and verifies resources at the mixed-state points (see the module docstring)."""

    name = "lifecycle"

    def __init__(self, resources: ResourcePhases, phases: list[Any], controllers: set[str],
                 target: str) -> None:
        self.resources = resources
        self.phases = phases
        self.controllers_left = set(controllers)
        self.target = target
        self.upgraded_computes: set[str] = set()
        self.done: list[str] = []

    @contextlib.contextmanager
    def _after(self, operation: str, args: tuple[Any, ...]) -> Iterator[None]:
        yield  # not reached when the operation raised: a failed step is no mixed state to probe
        point = self._point(operation, args)
        if point is not None and point not in self.done:
            self.done.append(point)
            self.at_point(point)

    def around(self, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> contextlib.AbstractContextManager[None]:
        return self._after(operation, (*args, *kwargs.values()))

    def _point(self, operation: str, args: tuple[Any, ...]) -> str | None:
        if operation == "replace_service" and len(args) >= 3 and args[2] == self.target:
            host, service = args[0], args[1]
            if service == COMPUTE_API and host in self.controllers_left:
                self.controllers_left.discard(host)
                return MIXED_API if not self.controllers_left else None
            if service == COMPUTE_AGENT:
                self.upgraded_computes.add(host)
        if operation == "enable_compute" and args and args[0] in self.upgraded_computes:
            return MIXED_COMPUTE
        return None

    def at_point(self, point: str) -> None:
        LOG.info("lifecycle: %s: one more resource, and every resource verified", point)
        self.phases.append(self.resources.create_more(f"create-{point}", SERVERS_PER_POINT))
        self.phases.append(self.resources.verify(f"verify-{point}"))


def after_upgrade_phases(scenario: Scenario, resources: ResourcePhases) -> list[PhaseResult]:
    """One more resource right after the executor's last step (or its rollback): whatever runs at
    the end builds it, and ``verify-after`` reads it back with the others. minicloud only."""
    if not clouds.profile(scenario.cloud).probes("lifecycle"):
        return []
    return [resources.create_more(f"create-{AFTER}", SERVERS_PER_POINT)]


def lifecycle_probe(context: ProbeContext) -> StepProbe | None:
    scenario = context.scenario
    if (not clouds.profile(scenario.cloud).probes("lifecycle") or context.resources is None
            or scenario.upgrade is None):
        return None
    if scenario.upgrade.action != "upgrade":
        return None  # a rolling reboot has no new release to write anything
    controllers = {h.name for h in scenario.topology.hosts if "controller" in h.roles}
    return LifecycleProbe(context.resources, context.phases, controllers, scenario.upgrade.to_release)


PROBE_FACTORIES.append(lifecycle_probe)

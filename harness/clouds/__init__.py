"""Clouds the harness can build and upgrade: the static registry of their profiles.

``profile(name)`` is how everything outside this package reaches a cloud: the commands,
the gate, the pytest plugin and scenario loading never branch on a cloud's name. The
interface is ``harness.clouds.base``; each cloud's knowledge lives in its own folder here
(``minicloud/``, ``openstack/``). Adding a cloud: a folder with its profile, and one line in
``registry`` (docs/architecture.md has the checklist).
"""
from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from harness.clouds.base import CloudProfile, DeployedCloud
from harness.errors import UsageError

if TYPE_CHECKING:
    from harness.executor.plan import Plan
    from harness.scenario.model import Scenario

#: the cloud of a scenario or a run that names none
DEFAULT_CLOUD = "minicloud"


@cache
def registry() -> dict[str, CloudProfile]:
    """name -> profile, a static registry until a third party needs entry points.

    Built on first use, not at import: the backends import this package's ``minicloud``
    module (its services), and the profiles import the scenario model, which imports the
    backends."""
    from harness.clouds.minicloud.profile import MinicloudProfile
    from harness.clouds.openstack.profile import OpenStackProfile

    return {"minicloud": MinicloudProfile(), "openstack": OpenStackProfile()}


def profile(name: str) -> CloudProfile:
    """The profile of the cloud called ``name`` (UsageError naming the valid ones otherwise)."""
    try:
        return registry()[name]
    except KeyError:
        raise UsageError(f"unknown cloud {name!r}; valid: {', '.join(registry())}") from None


def build_plan(scenario: Scenario, seed: int) -> Plan:
    """The plan of the scenario's upgrade section, by its cloud's profile (ValueError if it has none)."""
    if scenario.upgrade is None:
        raise ValueError(f"{scenario.path}: upgrade: missing: nothing to plan")
    return profile(scenario.cloud).plan(scenario, seed)


__all__ = ["DEFAULT_CLOUD", "CloudProfile", "DeployedCloud", "build_plan", "profile", "registry"]

"""Every registered cloud conforms: its profile implements ``CloudProfile`` whole, the scenario
schema's ``cloud`` enum is the registry, and each profile has a golden plan test."""
from __future__ import annotations

import inspect

import pytest

from harness import clouds
from harness.backends import BACKENDS
from harness.clouds.base import PROBES, CloudProfile
from harness.errors import UsageError
from harness.scenario import scenario_schema
from tests.unit.test_plan_golden import CASES

NAMES = sorted(clouds.registry())


@pytest.mark.parametrize("name", NAMES)
def test_every_profile_implements_the_whole_interface(name: str) -> None:
    profile = clouds.profile(name)
    assert isinstance(profile, CloudProfile)
    assert not inspect.isabstract(type(profile))
    assert profile.name == name
    assert profile.releases, "a cloud has releases to deploy and roll between"
    assert profile.default_release in profile.releases
    assert profile.backends, "a cloud lives on at least one backend"
    assert set(profile.backends) <= set(BACKENDS)
    assert profile.gate_probes <= set(PROBES)
    assert profile.summary


def test_the_schemas_cloud_enum_is_the_registry() -> None:
    cloud = scenario_schema()["properties"]["cloud"]
    assert sorted(cloud["enum"]) == NAMES
    assert cloud["default"] == clouds.DEFAULT_CLOUD


def test_every_profile_has_a_golden_plan_test() -> None:
    covered = {raw.get("cloud", clouds.DEFAULT_CLOUD) for raw, _seed in CASES.values()}
    assert covered == set(NAMES)


def test_an_unknown_cloud_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(UsageError, match="unknown cloud 'nimbus'; valid: minicloud, openstack"):
        clouds.profile("nimbus")


def test_releases_belong_to_one_cloud_each() -> None:
    """``rollgate up --release R`` names the cloud a release belongs to: never two."""
    seen = [r for name in NAMES for r in clouds.profile(name).releases]
    assert len(seen) == len(set(seen))

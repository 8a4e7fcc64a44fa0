"""Scenarios: the typed model (``model``), the rules every cloud shares (``rules``) and
loading a file into its cloud's ``Scenario`` (``load``; the cloud's own rules are its profile's).

This package re-exports the model only: ``harness.scenario.load`` asks the cloud registry,
which the clouds' own modules (importing the model) must not reach back into.
"""
from harness.scenario.model import (
    ACTIONS,
    DATA_PLANE_SERVICES,
    DEFAULT_TOPOLOGY,
    ROLE_SERVICES,
    ROLLED_ROLES,
    SECTION_PARSERS,
    Host,
    Scenario,
    Topology,
    Upgrade,
    UpgradePolicy,
    release_key,
    release_problem,
    release_series_index,
    same_series,
    scenario_schema,
)

__all__ = [
    "ACTIONS", "DATA_PLANE_SERVICES", "DEFAULT_TOPOLOGY", "ROLE_SERVICES", "ROLLED_ROLES", "SECTION_PARSERS",
    "Host", "Scenario", "Topology", "Upgrade", "UpgradePolicy", "release_key", "release_problem",
    "release_series_index", "same_series", "scenario_schema",
]

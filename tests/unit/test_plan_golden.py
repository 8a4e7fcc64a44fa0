"""Golden-file tests of the planner: a few topologies and policies, printed and as JSON.

Regenerate after an intended change with ``ROLLGATE_REGEN_GOLDEN=1 pytest
tests/unit/test_plan_golden.py`` and review the diff like code.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from harness.clouds import build_plan
from harness.executor.plan import Plan
from harness.scenario.load import parse_scenario

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "plans"
REGENERATE = os.environ.get("ROLLGATE_REGEN_GOLDEN") == "1"


def hosts(controllers: int, computes: int, *, lb: bool = True) -> list[dict[str, Any]]:
    entries = [{"name": f"controller-{i}", "roles": ["controller"]} for i in range(1, controllers + 1)]
    entries += [{"name": f"compute-{i}", "roles": ["compute"]} for i in range(1, computes + 1)]
    entries += [{"name": "network-1", "roles": ["network"]}, {"name": "db-1", "roles": ["db"]}]
    return entries + ([{"name": "lb-1", "roles": ["lb"]}] if lb else [])


CASES: dict[str, tuple[dict[str, Any], int]] = {
    "default-upgrade": ({"name": "default-upgrade",
                         "upgrade": {"from": "1.0", "to": "1.1"}}, 1),
    "six-computes-batch2-random": ({
        "name": "six-computes-batch2-random",
        "topology": {"release": "1.1", "hosts": hosts(2, 6)},
        "upgrade": {"from": "1.1", "to": "2.0",
                    "policy": {"batch_size": 2, "max_unavailable": 2, "order": "random",
                               "pause_between_batches": 5, "health_timeout": 30}}}, 42),
    "rolling-reboot-batch2": ({
        "name": "rolling-reboot-batch2",
        "upgrade": {"action": "reboot", "from": "1.1",
                    "policy": {"batch_size": 2, "max_unavailable": 2}}}, 7),
    "patch-update": ({"name": "patch-update", "upgrade": {"from": "1.1", "to": "1.1.1"}}, 3),
    "explicit-order-filter-cold-no-lb": ({
        "name": "explicit-order-filter-cold-no-lb",
        "topology": {"release": "1.0", "hosts": hosts(1, 4, lb=False)},
        "upgrade": {"from": "1.0", "to": "1.1",
                    "policy": {"order": ["compute-3", "compute-1"], "instances": "cold-migrate",
                               "hosts": ["controller-*", "compute-1", "compute-3"]}}}, 0),
    "mixed-start-leave": ({
        "name": "mixed-start-leave",
        "topology": {"release": "1.0", "hosts": [
            *hosts(2, 2), {"name": "compute-3", "roles": ["compute"], "release": "1.1"}]},
        "upgrade": {"from": "1.0", "to": "1.1", "policy": {"instances": "leave"}}}, 5),
    "openstack-upgrade-batch2": ({
        "name": "openstack-upgrade-batch2", "cloud": "openstack", "topology": {"computes": 4},
        "upgrade": {"from": "2026.1", "to": "2026.2", "policy": {"batch_size": 2, "max_unavailable": 2}}}, 4),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_plan_matches_golden(case: str) -> None:
    raw, seed = CASES[case]
    plan = build_plan(parse_scenario(raw, f"{case}.yaml"), seed)
    text, data = plan.render(), plan.to_json()
    text_file, json_file = GOLDEN / f"{case}.txt", GOLDEN / f"{case}.json"
    if REGENERATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        text_file.write_text(text)
        json_file.write_text(data)
    assert text_file.exists(), f"no golden file {text_file}: run with ROLLGATE_REGEN_GOLDEN=1"
    assert text == text_file.read_text()
    assert data == json_file.read_text()
    assert Plan.from_json(json_file.read_text()) == plan

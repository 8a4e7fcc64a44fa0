"""scenarios/, zuul.d/ and docs/scenarios.md agree, and every scenario validates and plans."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.clouds import build_plan
from harness.executor.steps import Pause
from harness.gate.hold import HOLD_PHASE, insert_hold
from harness.resources import parse_resources
from harness.scenario import scenario_schema
from harness.scenario.load import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
EXPECTED = {"rolling-upgrade", "failed-upgrade-rollback", "security-update",
            "dataplane-rolling-reboot", "mixed-version-hold", "abort-rollback", "upgrade-rollback",
            "openstack-rolling-upgrade", "openstack-rollback"}


def test_the_eight_scenarios_exist() -> None:
    assert {p.stem for p in SCENARIOS} == EXPECTED


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_validates_and_plans(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.upgrade is not None
    parse_resources(scenario.resources, str(path))
    plan = build_plan(scenario, scenario.seed or 0)
    assert plan.steps
    if scenario.upgrade.hold_after_batch:
        held = insert_hold(plan, scenario.upgrade.hold_after_batch, scenario.upgrade.hold_seconds)
        assert sum(1 for s in held.steps if s.phase == HOLD_PHASE) == 1


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_has_a_zuul_job_and_a_docs_entry(path: Path) -> None:
    jobs = {item["job"]["name"]: item["job"] for f in (ROOT / "zuul.d").glob("*.yaml")
            for item in yaml.safe_load(f.read_text()) if "job" in item}
    job = jobs.get(f"rollgate-{path.stem}")
    assert job is not None, f"no Zuul job rollgate-{path.stem}"
    assert job["vars"]["rollgate_scenario"] == f"scenarios/{path.name}"
    docs = (ROOT / "docs" / "scenarios.md").read_text()
    assert f"`scenarios/{path.name}`" in docs


def test_docs_name_every_schema_field() -> None:
    schema = scenario_schema()
    docs = (ROOT / "docs" / "scenarios.md").read_text()
    for name in schema["properties"]:
        assert f"`{name}" in docs, f"docs/scenarios.md does not describe {name}"
    for name in schema["$defs"]["policy"]["properties"]:
        assert name in docs, f"docs/scenarios.md does not describe upgrade.policy.{name}"
    for name in schema["$defs"]["upgrade"]["properties"]:
        assert f"upgrade.{name}" in docs, f"docs/scenarios.md does not describe upgrade.{name}"


def test_hold_is_inserted_after_the_batch_and_steps_renumbered() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "mixed-version-hold.yaml")
    assert scenario.upgrade is not None
    plan = build_plan(scenario, 1)
    held = insert_hold(plan, 1, 0.0)
    ids = [s.step_id for s in held.steps]
    assert ids == [f"s{i:03d}" for i in range(1, len(plan.steps) + 2)]
    index = next(i for i, s in enumerate(held.steps) if s.phase == HOLD_PHASE)
    assert isinstance(held.steps[index], Pause)
    assert held.steps[index - 1].phase.startswith("computes batch 1/")
    assert held.steps[index + 1].phase.startswith("computes batch 2/")


def test_a_hold_without_a_later_batch_is_refused(tmp_path: Path) -> None:
    from harness.errors import ValidationError

    raw = yaml.safe_load((ROOT / "scenarios" / "mixed-version-hold.yaml").read_text())
    raw["upgrade"]["hold"]["after_batch"] = 2
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValidationError, match=r"upgrade\.hold\.after_batch"):
        load_scenario(path)

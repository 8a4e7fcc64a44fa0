"""The planner's promises, for any topology and policy: same seed same plan, safe order."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.clouds import build_plan
from harness.executor.plan import Plan
from harness.executor.steps import (
    DbContract,
    DisableCompute,
    DrainApi,
    EnableCompute,
    HealthGate,
    MigrateInstances,
    RebootHost,
    ReplaceService,
    Step,
    UndrainApi,
)
from harness.scenario import Scenario
from harness.scenario.load import parse_scenario

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"


def scenario_with(computes: int, policy: dict[str, Any], *, controllers: int = 2, source: str = "1.0",
                  target: str = "1.1", action: str = "upgrade") -> Scenario:
    hosts = [{"name": f"controller-{i}", "roles": ["controller"]} for i in range(1, controllers + 1)]
    hosts += [{"name": f"compute-{i}", "roles": ["compute"]} for i in range(1, computes + 1)]
    hosts += [{"name": "network-1", "roles": ["network"]}, {"name": "lb-1", "roles": ["lb"]}]
    upgrade: dict[str, Any] = {"from": source, "action": action, "policy": policy}
    if action == "upgrade":
        upgrade["to"] = target
    return parse_scenario({"name": "prop", "topology": {"release": source, "hosts": hosts},
                           "upgrade": upgrade})


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    computes = draw(st.integers(2, 9))
    max_unavailable = draw(st.integers(1, computes - 1))
    batch = draw(st.integers(1, max_unavailable))
    source, target = draw(st.sampled_from([("1.0", "1.1"), ("1.1", "2.0"), ("1.1", "1.1.1")]))
    action = draw(st.sampled_from(["upgrade", "upgrade", "reboot"]))
    policy = {"batch_size": batch, "max_unavailable": max_unavailable,
              "order": draw(st.sampled_from(["name", "random"])),
              "instances": draw(st.sampled_from(["live-migrate", "cold-migrate", "leave"])),
              "pause_between_batches": draw(st.sampled_from([0, 2]))}
    return scenario_with(computes, policy, source=source, target=target, action=action,
                         controllers=draw(st.integers(1, 3)))


def down_hosts_peak(steps: tuple[Step, ...]) -> int:
    """Most hosts out of service at once, replaying drain/disable/reboot/replace."""
    down: set[str] = set()
    peak = 0
    for step in steps:
        if isinstance(step, DrainApi | DisableCompute):
            down.add(step.host_name)
        elif isinstance(step, UndrainApi | EnableCompute):
            down.discard(step.host_name)
        momentary = {step.host_name} if isinstance(step, ReplaceService | RebootHost) else set()
        peak = max(peak, len(down | momentary))
    assert not down, f"hosts left out of service at the end: {down}"
    return peak


@settings(max_examples=60, deadline=None)
@given(scenarios(), st.integers(0, 2**31 - 1))
def test_plan_properties(scenario: Scenario, seed: int) -> None:
    assert scenario.upgrade is not None
    policy = scenario.upgrade.policy
    plan = build_plan(scenario, seed)
    assert plan == build_plan(scenario, seed), "same seed must give the same plan"
    assert Plan.from_json(plan.to_json()) == plan
    assert [s.step_id for s in plan.steps] == [f"s{i:03d}" for i in range(1, len(plan.steps) + 1)]
    assert down_hosts_peak(plan.steps) <= policy.max_unavailable
    replaced = [(s.host_name, s.service) for s in plan.steps if isinstance(s, ReplaceService)]
    assert len(replaced) == len(set(replaced)), "a service is replaced once"
    if scenario.upgrade.action == "reboot":
        assert not replaced
        computes = {h.name for h in scenario.topology.with_role("compute")}
        assert {s.host_name for s in plan.steps if isinstance(s, RebootHost)} == computes
    else:
        expected = {(h.name, s) for h in scenario.topology.hosts for s in h.upgradable_services}
        assert set(replaced) == expected
    final = plan.finalize_index
    if final is not None:
        assert all(s.finalize for s in plan.steps[final:]), "nothing reversible after finalize"
        assert isinstance(plan.steps[-1], DbContract)
    # Every compute is disabled (and emptied, unless leave) before its agent is touched.
    disabled: set[str] = set()
    emptied: set[str] = set()
    for step in plan.steps:
        if isinstance(step, DisableCompute):
            disabled.add(step.host_name)
        elif isinstance(step, MigrateInstances):
            emptied.add(step.host_name)
        elif isinstance(step, ReplaceService | RebootHost) and step.host_name.startswith("compute"):
            assert step.host_name in disabled
            assert policy.instances == "leave" or step.host_name in emptied
        elif isinstance(step, EnableCompute):
            disabled.discard(step.host_name)
    # A gate follows every batch of changes before hosts go back into service.
    for index, step in enumerate(plan.steps):
        if isinstance(step, EnableCompute | UndrainApi):
            before = [s for s in plan.steps[:index] if not isinstance(s, EnableCompute | UndrainApi)]
            assert isinstance(before[-1], HealthGate)


def test_conductors_then_schedulers_then_api_then_computes_then_network() -> None:
    plan = build_plan(scenario_with(3, {}), 0)
    services = [s.service for s in plan.steps if isinstance(s, ReplaceService)]
    first = {name: services.index(name) for name in set(services)}
    assert first["conductor"] < first["scheduler"] < first["identity"] < first["compute-agent"]
    assert first["compute-agent"] < first["network"]
    kinds = [s.kind for s in plan.steps]
    assert kinds[:3] == ["pre-check", "db-expand", "pin-rpc"]
    assert kinds[-4:] == ["online-migrations", "health-gate", "unpin-rpc", "db-contract"]


def test_random_order_depends_on_the_seed_only() -> None:
    scenario = scenario_with(6, {"order": "random"})
    orders = {tuple(s.host_name for s in build_plan(scenario, seed).steps
                    if isinstance(s, DisableCompute)) for seed in range(10)}
    assert len(orders) > 1, "different seeds should give different orders"
    assert all(sorted(order) == [f"compute-{i}" for i in range(1, 7)] for order in orders)


def test_plan_for_500_hosts_within_a_second() -> None:
    scenario = scenario_with(494, {"batch_size": 10, "max_unavailable": 10, "order": "random"},
                             controllers=3)
    started = time.perf_counter()
    plan = build_plan(scenario, 1)
    elapsed = time.perf_counter() - started
    assert len(plan.steps) > 2000
    assert elapsed < 1.0, f"planning 500 hosts took {elapsed:.2f}s"


def test_save_and_load(tmp_path: Path) -> None:
    plan = build_plan(scenario_with(3, {}), 9)
    path = plan.save(tmp_path / "run" / "plan.json")
    assert Plan.load(path) == plan
    assert path.read_text() == plan.to_json()
    assert Plan.load(path).digest() == plan.digest()


def test_cli_plan_text_json_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    text = runner.invoke(main, ["plan", str(FIXTURES / "valid" / "minimal.yaml"), "--seed", "5"])
    assert text.exit_code == 0, text.output
    assert text.output.startswith("plan minimal: upgrade 1.0 -> 1.1, seed 5")
    out = tmp_path / "plan.json"
    full = yaml.safe_load((FIXTURES / "valid" / "full.yaml").read_text())
    del full["faults"]  # `plan` refuses what `run` refuses: faults are not injected yet
    (tmp_path / "full.yaml").write_text(yaml.safe_dump(full))
    as_json = runner.invoke(main, ["plan", str(tmp_path / "full.yaml"), "--json", "-o", str(out)])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["seed"] == 1234, "the scenario's seed is the default"
    assert json.loads(out.read_text()) == data
    bad = runner.invoke(main, ["plan", str(FIXTURES / "invalid" / "batch-zero.yaml")])
    assert bad.exit_code == 2
    assert "upgrade.policy.batch_size: must be at least 1, got 0" in bad.output
    none = runner.invoke(main, ["plan", str(FIXTURES / "valid" / "no-upgrade.yaml")])
    assert none.exit_code == 2
    assert "no-upgrade.yaml: upgrade: missing: a gate run (and its plan) needs an upgrade" in none.output

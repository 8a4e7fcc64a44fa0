"""``cloud: openstack`` scenarios: validation before anything starts, the plan the gate
runs (the profile's own order), and the gate's openstack-only checks, without Docker."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.clouds import build_plan
from harness.clouds.openstack.gate import versions_check
from harness.errors import UsageError, ValidationError
from harness.executor import STOPPED, Executor, Journal
from harness.executor.plan import stop_step
from harness.executor.steps import DrainApi, PointOfNoReturn, ReplaceService
from harness.gate.run import GateOptions, expects_rollback, prepare
from harness.scenario.load import load_scenario, parse_scenario
from harness.verdict import FAILED, PASSED
from tests.unit.test_openstack_ops import RecordingOps

ROOT = Path(__file__).resolve().parents[2]


def scenario(**upgrade: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"name": "os", "cloud": "openstack",
                           "upgrade": {"from": "2026.1", "to": "2026.2", **upgrade}}
    return raw


def test_the_openstack_scenarios_load_and_plan_the_profiles_order() -> None:
    for name in ("openstack-rolling-upgrade", "openstack-rollback"):
        loaded = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
        assert loaded.cloud == "openstack"
        assert [h.name for h in loaded.topology.hosts] == [
            "db", "mq", "lb", "controller", "compute-1", "compute-2", "compute-3"]
        assert loaded.topology.host("controller").releases["nova-api"] == "2026.1"
        assert "mariadb" not in loaded.topology.host("db").releases  # the test bed has no release
        plan = build_plan(loaded, 1)
        swaps = [f"{s.host_name}/{s.service}" for s in plan.steps if isinstance(s, ReplaceService)]
        assert swaps[:4] == ["controller/keystone", "controller/placement", "controller/glance",
                             "controller/neutron"]
        assert swaps[4:7] == ["controller/nova-conductor", "controller/nova-scheduler", "controller/nova-api"]
        assert plan.policy["roles"] == ["controller", "compute"]


@pytest.mark.parametrize(("upgrade", "field", "words"), [
    ({"to": "2027.1"}, "upgrade.to", "unknown openstack release '2027.1'; valid: 2026.1, 2026.2"),
    ({"from": "2026.2", "to": "2026.1"}, "upgrade.to", "not newer than 2026.2"),
    ({"from": "2026.1", "to": "2026.1"}, "upgrade.to", "not newer"),
    ({"from": "1.0", "to": "1.1"}, "upgrade.from", "unknown openstack release '1.0'"),
    ({"policy": {"instances": "cold-migrate"}}, "upgrade.policy.instances", "not wired"),
    ({"policy": {"roles": ["network"]}}, "upgrade.policy.roles", "no network host"),
    ({"action": "reboot"}, "upgrade.action", "minicloud only"),
    ({"hold": {"after_batch": 1}}, "upgrade.hold", "minicloud only"),
    ({"policy": {"max_unavailable": 4}}, "upgrade.policy.max_unavailable", "more than the 3 compute"),
])
def test_bad_openstack_upgrades_name_the_field_and_what_is_valid(upgrade: dict[str, Any], field: str,
                                                                  words: str) -> None:
    raw = scenario()
    raw["upgrade"].update(upgrade)
    with pytest.raises(ValidationError) as caught:
        parse_scenario(raw, "os.yaml")
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "os.yaml" in str(caught.value)


def test_a_release_pair_that_skips_a_release_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.clouds import openstack as profile

    monkeypatch.setattr(profile, "RELEASES", ("2026.1", "2026.2", "2027.1"))
    with pytest.raises(ValidationError, match=r"2026\.1 -> 2027\.1 skips a release: OpenStack supports N-1"):
        parse_scenario(scenario(to="2027.1"), "os.yaml")


@pytest.mark.parametrize(("raw", "field"), [
    ({"topology": {"hosts": [{"name": "c", "roles": ["compute"]}]}}, "topology.hosts"),
    ({"topology": {"release": "2026.1"}}, "topology.release"),
    ({"topology": {"computes": 11}}, "topology.computes"),
    ({"checks": ["project-isolation"]}, "checks"),
])
def test_minicloud_fields_in_an_openstack_scenario_are_refused(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_scenario({**scenario(), **raw}, "os.yaml")
    assert caught.value.field == field


def test_computes_are_openstack_only() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_scenario({"name": "m", "topology": {"computes": 2}, "upgrade": {"from": "1.0", "to": "1.1"}})
    assert caught.value.field == "topology.computes"


def test_two_computes_and_the_policy_reach_the_plan() -> None:
    loaded = parse_scenario({**scenario(policy={"stop_timeout": 5}), "topology": {"computes": 2}})
    plan = build_plan(loaded, 3)
    assert [s.host_name for s in plan.steps if isinstance(s, ReplaceService)
            and s.service == "nova-compute"] == ["compute-1", "compute-2"]
    assert {s.stop_timeout for s in plan.steps if isinstance(s, ReplaceService)} == {5.0}


def test_an_openstack_scenario_needs_the_docker_backend(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--backend process: .* run it with --backend docker"):
        prepare(ROOT / "scenarios" / "openstack-rolling-upgrade.yaml", GateOptions(backend="process"), "x1")


def test_rollback_before_stops_the_executor_there_and_the_gate_expects_the_source(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path))
    run = prepare(ROOT / "scenarios" / "openstack-rollback.yaml", GateOptions(backend="docker"), "x2")
    no_return = next(s for s in run.plan.steps if isinstance(s, PointOfNoReturn))
    assert run.stop_before == no_return.step_id
    assert expects_rollback(run.scenario)
    assert any("stops before " + no_return.step_id in note for note in run.plan.notes)
    ops = RecordingOps()
    executor = Executor(run.plan, ops, Journal(tmp_path / "journal", durable=False))
    result = executor.run(stop_before=run.stop_before)
    assert result.status == STOPPED
    assert not [c for c in ops.calls if c[0] == "replace_service" and c[2].startswith("nova-")]
    back = executor.rollback()
    assert back.status == "rolled_back"
    assert [c[2] for c in ops.calls if c[0] == "replace_service" and c[3] == "2026.1"] == [
        "neutron", "glance", "placement", "keystone"]


def test_stop_step_finds_the_first_step_of_a_kind_or_none() -> None:
    plan = build_plan(parse_scenario(scenario()), 1)
    assert stop_step(plan, "point-of-no-return") == next(
        s.step_id for s in plan.steps if isinstance(s, PointOfNoReturn))
    minicloud = build_plan(parse_scenario({"name": "m", "upgrade": {"from": "1.1", "to": "1.1.1"}}), 1)
    assert stop_step(minicloud, "point-of-no-return") is None


def test_a_rollback_before_a_step_the_plan_lacks_is_a_validation_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path))
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nupgrade: {from: '1.1', to: '1.1.1', rollback_before: point-of-no-return}\n")
    with pytest.raises(ValidationError) as caught:
        prepare(path, GateOptions(), "x3")
    assert caught.value.field == "upgrade.rollback_before"


def test_stop_before_an_unknown_step_is_a_bug_said_at_once(tmp_path: Path) -> None:
    plan = build_plan(parse_scenario(scenario()), 1)
    with pytest.raises(ValueError, match="no step 's999'"):
        Executor(plan, RecordingOps(), Journal(tmp_path / "j", durable=False)).run(stop_before="s999")


def test_api_drain_false_leaves_the_drain_steps_out_of_a_minicloud_plan() -> None:
    drained = build_plan(parse_scenario({"name": "m", "upgrade": {"from": "1.0", "to": "1.1"}}), 1)
    plain = build_plan(parse_scenario({"name": "m", "upgrade": {
        "from": "1.0", "to": "1.1", "policy": {"api_drain": False}}}), 1)
    assert [s for s in drained.steps if isinstance(s, DrainApi)]
    assert not [s for s in plain.steps if isinstance(s, DrainApi)]
    assert plain.policy["api_drain"] is False


def test_nova_service_versions_all_at_the_release_pass_and_any_other_is_named() -> None:
    rows = {("controller", "nova-conductor"): 74, ("compute-1", "nova-compute"): 74}
    assert versions_check(rows, "2026.2").status == PASSED
    mixed = versions_check({**rows, ("compute-2", "nova-compute"): 72}, "2026.2")
    assert mixed.status == FAILED
    assert "1 of 3 nova service(s) not at version 74 (2026.2)" in mixed.summary
    assert [e.target for e in mixed.evidence] == ["compute-2/nova-compute"]
    assert versions_check({}, "2026.1").status == FAILED


def test_the_gate_marks_an_openstack_run_down_once_it_removed_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.clouds.openstack.gate import OpenStackGateCloud
    from harness.runstate import RunState

    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path))
    state = RunState(run_id="os-down", backend="docker", cloud="openstack", status="up")
    state.save()
    removed: list[str] = []
    def destroy(_: object) -> dict[str, int]:
        removed.append("all")
        return {"containers": 9}

    containers = type("Containers", (), {"destroy": destroy})()
    OpenStackGateCloud(state, containers).destroy()
    assert removed == ["all"]
    assert RunState.load("os-down").status == "down"


class _Conductors:
    """The containers of a cloud at its end, as far as the upgrade check looks at them."""

    def __init__(self, *running: str) -> None:
        self.running = running
        self.ran_in: list[str | None] = []

    def containers(self, host: str, service: str) -> list[Any]:
        from harness.backends.docker_resources import LABEL_RELEASE
        return [type("C", (), {"status": "running", "labels": {LABEL_RELEASE: r}})() for r in self.running]

    def exec_result(self, host: str, service: str, command: list[str], timeout: float,
                    release: str | None = None) -> tuple[int, str]:
        self.ran_in.append(release)
        from tests.unit.test_openstack_ops import NOVA_STATUS
        return 1, NOVA_STATUS


def test_the_upgrade_check_runs_in_the_conductor_that_runs_at_the_end_whatever_its_release() -> None:
    """A failed upgrade rolled back ends at 2026.1 although 2026.2 was expected: nova-status
    runs in the 2026.1 conductor and says so (it once asked for a 2026.2 container: an ERROR)."""
    from harness.clouds.openstack.gate import CHECK_UPGRADE_CHECK, OpenStackGateCloud

    rolled_back = _Conductors("2026.1")
    check = OpenStackGateCloud(None, rolled_back)._upgrade_check("2026.2")  # type: ignore[arg-type]
    assert (check.id, check.status) == (CHECK_UPGRADE_CHECK, PASSED)
    assert check.summary.endswith("(run in the 2026.1 conductor; 2026.2 was expected)")
    assert rolled_back.ran_in == ["2026.1"]
    at_target = _Conductors("2026.2")
    assert "was expected" not in OpenStackGateCloud(None, at_target)._upgrade_check(  # type: ignore[arg-type]
        "2026.2").summary
    for running in ((), ("2026.1", "2026.2")):
        none_or_two = OpenStackGateCloud(None, _Conductors(*running))._upgrade_check(  # type: ignore[arg-type]
            "2026.2")
        assert none_or_two.status == FAILED
        assert none_or_two.summary.startswith("not run: nova-conductor containers running at the end")

"""The executor against FakeCloud: full runs, crashes at every point, resume, rollback, gates."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.clouds import build_plan
from harness.executor import (
    COMPLETED,
    FAILED,
    ROLLED_BACK,
    Executor,
    Journal,
    JournalHasProgress,
    JournalMismatch,
    Plan,
    RollbackRefused,
)
from harness.executor.journal import DONE, PARTIAL
from harness.scenario import Scenario
from harness.scenario.load import parse_scenario
from harness.timeline import Timeline, read_events
from tests.unit.fakecloud import FakeCloud, SimulatedCrash


def scenario(upgrade: dict[str, Any], **extra: Any) -> Scenario:
    return parse_scenario({"name": "engine", "upgrade": upgrade, **extra})


DEFAULT = scenario({"from": "1.0", "to": "1.1"})


def fresh(s: Scenario, tmp_path: Path, seed: int = 0, name: str = "journal"
          ) -> tuple[Plan, FakeCloud, Journal]:
    plan = build_plan(s, seed)
    cloud = FakeCloud.from_topology(s.topology, plan.max_unavailable)
    # fsync only matters for power loss; these crashes are in-process (see test_journal_fsyncs).
    return plan, cloud, Journal(tmp_path / name, durable=False)


def all_at(cloud: FakeCloud, release: str) -> bool:
    return cloud.release_set() == {release}


def test_full_upgrade_completes_with_timeline_and_journal(tmp_path: Path) -> None:
    plan, cloud, journal = fresh(DEFAULT, tmp_path)
    with Timeline(tmp_path / "timeline.jsonl") as timeline:
        result = Executor(plan, cloud, journal, timeline).run()
    assert result.status == COMPLETED
    assert result.steps_run == len(plan.steps)
    assert cloud.violations == []
    assert all_at(cloud, "1.1")
    assert cloud.contracted == "1.1"
    assert cloud.pin is None
    assert all(i.alive and i.interruptions == 0 for i in cloud.instances.values())
    events = [e for e in read_events(tmp_path / "timeline.jsonl") if e["kind"] == "step"]
    assert len(events) == 2 * len(plan.steps)
    replace = next(e for e in events if e["name"] == "replace-service" and e["phase"] == "end")
    assert replace["outcome"] == "ok"
    assert replace["from"] == "1.0"
    assert replace["to"] == "1.1"
    assert replace["host"] == "controller-1"
    assert replace["service"] == "conductor"
    lines = list(journal.entries())
    assert lines[0]["type"] == "plan"
    assert lines[0]["digest"] == plan.digest()
    assert [e["type"] for e in lines[1:3]] == ["begin", "end"]
    assert lines[-1] == {**lines[-1], "type": "run", "status": COMPLETED}


def count_mutations(s: Scenario, tmp_path: Path) -> int:
    plan, cloud, journal = fresh(s, tmp_path, name="count")
    assert Executor(plan, cloud, journal).run().status == COMPLETED
    return cloud._mutations


@pytest.mark.parametrize("after_effect", [False, True], ids=["before-effect", "after-effect"])
def test_crash_at_every_operation_then_resume_completes(tmp_path: Path, after_effect: bool) -> None:
    total = count_mutations(DEFAULT, tmp_path)
    assert total > 30
    for point in range(1, total + 1):
        plan, cloud, journal = fresh(DEFAULT, tmp_path, name=f"j-{point}-{after_effect}")
        cloud.arm_crash(point, after_effect=after_effect)
        with pytest.raises(SimulatedCrash):
            Executor(plan, cloud, journal).run()
        result = Executor(plan, cloud, Journal(journal.path, durable=False)).resume()
        assert result.status == COMPLETED, (point, result)
        assert cloud.violations == [], point
        assert all_at(cloud, "1.1"), point
        assert cloud.contracted == "1.1", point


def test_rollback_from_every_point_before_finalize(tmp_path: Path) -> None:
    plan, _, _ = fresh(DEFAULT, tmp_path)
    final = plan.finalize_index
    assert final is not None
    total = count_mutations(DEFAULT, tmp_path)
    refused = 0
    for point in range(1, total + 1):
        plan, cloud, journal = fresh(DEFAULT, tmp_path, name=f"rb-{point}")
        cloud.arm_crash(point)
        with pytest.raises(SimulatedCrash):
            Executor(plan, cloud, journal).run()
        if journal.state().finalize_started:
            refused += 1
            with pytest.raises(RollbackRefused, match="finalize began"):
                Executor(plan, cloud, journal).rollback()
            continue
        result = Executor(plan, cloud, journal).rollback()
        assert result.status == ROLLED_BACK, (point, result)
        assert cloud.violations == [], point
        assert all_at(cloud, "1.0"), (point, cloud.releases)
        assert not cloud.disabled
        assert not cloud.drained
        assert all(i.alive for i in cloud.instances.values())
    assert refused == 2, "crashes inside unpin and contract are past the point of no return"


def test_rollback_gates_each_host_after_its_services_go_back_and_before_it_is_let_in(tmp_path: Path) -> None:
    """Reversed literally, a batch would be disable, gate, replace back, enable: the
    host takes work straight after its service changed. Rollback keeps the forward
    meaning: the gate runs after the replacement and before the enable/undrain."""
    plan, cloud, journal = fresh(DEFAULT, tmp_path)
    assert plan.finalize_index is not None
    executor = Executor(plan, cloud, journal)
    assert executor.run(stop_before=plan.steps[plan.finalize_index].step_id).status == "stopped"
    forward = len(cloud.calls)
    assert executor.rollback().status == ROLLED_BACK
    calls = cloud.calls[forward:]
    replaced = [i for i, call in enumerate(calls) if call[0] == "replace_service"]
    assert replaced, calls
    for index in replaced:
        host = calls[index][1]
        let_in = next((j for j in range(index + 1, len(calls))
                       if calls[j][0] in ("enable_compute", "undrain_api") and calls[j][1] == host), None)
        if let_in is None:
            continue  # a controller's non-API service: nothing lets it back in
        assert ("health_gate",) in calls[index + 1:let_in], (calls[index], calls[index:let_in + 1])
    assert all_at(cloud, "1.0")
    assert cloud.violations == []


def test_failed_gate_rolls_back_automatically(tmp_path: Path) -> None:
    s = scenario({"from": "1.0", "to": "1.1+nostart"})
    plan, cloud, journal = fresh(s, tmp_path)
    result = Executor(plan, cloud, journal).run()
    assert result.status == ROLLED_BACK
    assert result.rollback is not None
    assert result.rollback.status == ROLLED_BACK
    failed = next(st for st in plan.steps if st.step_id == result.failed_step)
    assert failed.kind == "health-gate"
    assert "compute-2/compute-agent is down" in (result.error or "")
    assert all_at(cloud, "1.0")
    assert cloud.violations == []
    assert cloud.contracted == "1.0"
    assert ("db_contract", "1.1+nostart") not in cloud.calls


def test_failed_gate_without_auto_rollback_stops_and_keeps_state(tmp_path: Path) -> None:
    s = scenario({"from": "1.0", "to": "1.1+nostart", "policy": {"auto_rollback": False}})
    plan, cloud, journal = fresh(s, tmp_path)
    result = Executor(plan, cloud, journal).run()
    assert result.status == FAILED
    assert result.rollback is None
    assert cloud.releases["compute-2"]["compute-agent"] == "1.1+nostart"
    assert journal.state().effect(result.failed_step or "") == PARTIAL
    assert Executor(plan, cloud, journal).rollback().status == ROLLED_BACK
    assert all_at(cloud, "1.0")


def test_failed_precheck_touches_nothing(tmp_path: Path) -> None:
    plan, cloud, journal = fresh(DEFAULT, tmp_path)
    cloud.precheck_level = "failure"
    result = Executor(plan, cloud, journal).run()
    assert result.status == ROLLED_BACK
    assert result.failed_step == "s001"
    assert cloud._mutations == 0
    assert all_at(cloud, "1.0")


def test_operation_failure_mid_batch_rolls_back(tmp_path: Path) -> None:
    plan, cloud, journal = fresh(DEFAULT, tmp_path)
    cloud.fail_next("live_migrate")
    result = Executor(plan, cloud, journal).run()
    assert result.status == ROLLED_BACK
    assert "injected failure" in (result.error or "")
    assert all_at(cloud, "1.0")
    assert not cloud.disabled
    assert cloud.violations == []


def test_run_refuses_a_journal_with_progress_and_resume_refuses_another_plan(tmp_path: Path) -> None:
    plan, cloud, journal = fresh(DEFAULT, tmp_path)
    cloud.arm_crash(3)
    with pytest.raises(SimulatedCrash):
        Executor(plan, cloud, journal).run()
    with pytest.raises(JournalHasProgress, match="--resume"):
        Executor(plan, cloud, journal).run()
    other = build_plan(scenario({"from": "1.0", "to": "1.1", "policy": {"order": "random"}}), 99)
    with pytest.raises(JournalMismatch, match="belongs to plan"):
        Executor(other, cloud, journal).resume()


def test_torn_last_journal_line_is_ignored(tmp_path: Path) -> None:
    plan, cloud, journal = fresh(DEFAULT, tmp_path)
    cloud.arm_crash(2)
    with pytest.raises(SimulatedCrash):
        Executor(plan, cloud, journal).run()
    with open(journal.path, "ab") as handle:
        handle.write(b'{"type":"end","step":"s00')
    state = journal.state()
    assert state.effect("s001") == DONE
    assert state.effect("s002") == DONE
    assert state.effect("s003") == PARTIAL
    assert Executor(plan, cloud, journal).resume().status == COMPLETED


@pytest.mark.parametrize(("batch", "max_unavailable"), [(1, 1), (2, 2)])
def test_rolling_reboot_of_all_computes(tmp_path: Path, batch: int, max_unavailable: int) -> None:
    s = scenario({"action": "reboot", "from": "1.1",
                  "policy": {"batch_size": batch, "max_unavailable": max_unavailable}},
                 topology={"release": "1.1", "hosts": [
                     {"name": "controller-1", "roles": ["controller"]},
                     *({"name": f"compute-{i}", "roles": ["compute"]} for i in range(1, 5)),
                     {"name": "lb-1", "roles": ["lb"]}]})
    plan, cloud, journal = fresh(s, tmp_path)
    assert Executor(plan, cloud, journal).run().status == COMPLETED
    rebooted = [c[1] for c in cloud.calls if c[0] == "reboot_host"]
    assert sorted(rebooted) == [f"compute-{i}" for i in range(1, 5)]
    assert cloud.violations == []
    assert cloud.max_seen_unavailable == max_unavailable
    assert all(i.alive and i.interruptions == 0 for i in cloud.instances.values())
    assert all_at(cloud, "1.1")


def test_rolling_reboot_leaving_instances_interrupts_them(tmp_path: Path) -> None:
    s = scenario({"action": "reboot", "from": "1.0", "policy": {"instances": "leave"}})
    plan, cloud, journal = fresh(s, tmp_path)
    assert Executor(plan, cloud, journal).run().status == COMPLETED
    assert all(i.interruptions == 1 for i in cloud.instances.values())


def test_patch_update_has_no_schema_change_and_can_roll_back_when_done(tmp_path: Path) -> None:
    s = scenario({"from": "1.1", "to": "1.1.1"})
    plan, cloud, journal = fresh(s, tmp_path)
    assert Executor(plan, cloud, journal).run().status == COMPLETED
    assert all_at(cloud, "1.1.1")
    assert not any(c[0] in ("db_expand", "db_contract", "pin_rpc_versions") for c in cloud.calls)
    assert Executor(plan, cloud, journal).rollback().status == ROLLED_BACK
    assert all_at(cloud, "1.1")
    assert cloud.violations == []


def test_pause_between_batches_and_cold_migration(tmp_path: Path) -> None:
    s = scenario({"from": "1.0", "to": "1.1",
                  "policy": {"pause_between_batches": 7.5, "instances": "cold-migrate"}})
    plan, cloud, journal = fresh(s, tmp_path)
    pauses: list[float] = []
    assert Executor(plan, cloud, journal, pause=pauses.append).run().status == COMPLETED
    assert pauses == [7.5, 7.5]
    assert any(c[0] == "cold_migrate" for c in cloud.calls)
    assert all(i.alive for i in cloud.instances.values())
    assert cloud.violations == []


def test_online_migrations_that_never_finish_fail_the_step(tmp_path: Path) -> None:
    plan, cloud, journal = fresh(DEFAULT, tmp_path)
    cloud.online_data_migrations = lambda max_count: True  # type: ignore[method-assign]
    raw = plan.to_dict()
    for step in raw["steps"]:
        if step["kind"] == "online-migrations":
            step["timeout"] = 0.05
    plan = Plan.from_dict(raw)
    result = Executor(plan, cloud, journal).run()
    assert result.status == ROLLED_BACK
    assert "not done after" in (result.error or "")
    assert all_at(cloud, "1.0")


def test_journal_fsyncs_every_line_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    plan = build_plan(DEFAULT, 0)
    cloud = FakeCloud.from_topology(DEFAULT.topology, plan.max_unavailable)
    journal = Journal(tmp_path / "journal")
    assert Executor(plan, cloud, journal).run().status == COMPLETED
    assert len(synced) == len(list(journal.entries())) == 2 * len(plan.steps) + 2

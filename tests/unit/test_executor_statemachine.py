"""hypothesis drives the executor against FakeCloud through random runs, crashes, resumes, rollbacks.

Invariants (issue 5): never more hosts down than max_unavailable, never N and
N+2 together, never contract before every service is at the target (all three
are checked by FakeCloud at every operation and collected in ``violations``);
and rollback from any point before finalize restores the source release
everywhere (checked after every completed rollback).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from harness.clouds import build_plan
from harness.executor import (
    COMPLETED,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    Executor,
    Journal,
    Plan,
    RollbackRefused,
)
from harness.scenario.load import parse_scenario
from tests.unit.fakecloud import FakeCloud, SimulatedCrash

UPGRADES = [("1.0", "1.1", "upgrade"), ("1.1", "2.0", "upgrade"), ("1.1", "1.1.1", "upgrade"),
            ("1.0", "1.1+nostart", "upgrade"), ("1.1", "1.1", "reboot")]


class ExecutorMachine(RuleBasedStateMachine):
    plan: Plan
    cloud: FakeCloud
    journal: Journal

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="rollgate-sm-"))

    def teardown(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    @initialize(computes=st.integers(2, 5), data=st.data(), upgrade=st.sampled_from(UPGRADES),
                seed=st.integers(0, 1000), auto_rollback=st.booleans(),
                instances=st.sampled_from(["live-migrate", "cold-migrate", "leave"]))
    def build(self, computes: int, data: st.DataObject, upgrade: tuple[str, str, str], seed: int,
              auto_rollback: bool, instances: str) -> None:
        source, target, action = upgrade
        max_unavailable = data.draw(st.integers(1, computes - 1), label="max_unavailable")
        batch = data.draw(st.integers(1, max_unavailable), label="batch")
        hosts: list[dict[str, Any]] = [{"name": f"controller-{i}", "roles": ["controller"]} for i in (1, 2)]
        hosts += [{"name": f"compute-{i}", "roles": ["compute"]} for i in range(1, computes + 1)]
        hosts += [{"name": "network-1", "roles": ["network"]}, {"name": "lb-1", "roles": ["lb"]}]
        scenario = parse_scenario({"name": "sm", "topology": {"release": source, "hosts": hosts},
                                   "upgrade": {"from": source, "to": target, "action": action,
                                               "policy": {"batch_size": batch,
                                                          "max_unavailable": max_unavailable,
                                                          "order": "random", "instances": instances,
                                                          "auto_rollback": auto_rollback}}})
        self.plan = build_plan(scenario, seed)
        self.cloud = FakeCloud.from_topology(scenario.topology, max_unavailable)
        self.journal = Journal(self.directory / "journal", durable=False)
        self.source, self.target = source, target

    def executor(self) -> Executor:
        # A fresh Executor and Journal object each time, as after a restart of the harness.
        journal = Journal(self.journal.path, durable=False)  # in-process crashes: fsync adds nothing
        return Executor(self.plan, self.cloud, journal, pause=lambda s: None)

    def arm(self, crash_at: int | None, after_effect: bool) -> None:
        self.cloud.disarm()
        if crash_at is not None:
            self.cloud.arm_crash(crash_at, after_effect=after_effect)

    @rule(crash_at=st.none() | st.integers(1, 40), after_effect=st.booleans())
    def run_or_resume(self, crash_at: int | None, after_effect: bool) -> None:
        self.arm(crash_at, after_effect)
        try:
            result = self.executor().resume()
        except SimulatedCrash:
            return
        finally:
            self.cloud.disarm()
        if result.status == COMPLETED:
            expected = self.target if self.plan.action == "upgrade" else self.source
            assert self.cloud.release_set() == {expected}
            if self.plan.finalize_index is not None:
                assert self.cloud.contracted == self.target.partition("+")[0]
        elif result.status == ROLLED_BACK:
            self.check_source_restored()
        else:
            assert result.status != ROLLBACK_FAILED, result

    @rule(crash_at=st.none() | st.integers(1, 40), after_effect=st.booleans())
    def rollback(self, crash_at: int | None, after_effect: bool) -> None:
        finalized = self.journal.state().finalize_started
        self.arm(crash_at, after_effect)
        try:
            result = self.executor().rollback()
        except SimulatedCrash:
            return
        except RollbackRefused:
            assert finalized
            return
        finally:
            self.cloud.disarm()
        assert not finalized, "rollback must be refused once finalize began"
        assert result.status == ROLLED_BACK, result
        self.check_source_restored()

    def check_source_restored(self) -> None:
        assert self.cloud.releases == self.plan.initial_releases
        assert not self.cloud.disabled
        assert not self.cloud.drained

    @invariant()
    def no_violations(self) -> None:
        if hasattr(self, "cloud"):
            assert self.cloud.violations == []

    @invariant()
    def every_instance_alive(self) -> None:
        if hasattr(self, "cloud"):
            assert all(i.alive for i in self.cloud.instances.values())


ExecutorMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=10, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestExecutorMachine = ExecutorMachine.TestCase

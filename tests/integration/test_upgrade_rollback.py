"""Issue 5: rollback from points before finalize puts every host back at 1.0, with every instance
and its data intact and the cloud working.

Cost decides the design: a rollback from step K costs about K forward steps
plus K reverse steps, so "from every one of the 42 pre-finalize steps" on a
real cloud is O(n^2) (~10 minutes here). One cloud is upgraded to K, rolled
back, checked, and reused for the next K; the Ks cover every phase and every
kind of cloud state a rollback can start from: schema expanded, RPC
pinned and a conductor replaced but its step not journalled (crash mid-step);
an API node drained out of the load balancer; a compute disabled and
emptied by live migration with its migration step unfinished; and the last
step before finalize, whose rollback reverses all 42 steps (every inverse
on the real cloud). Rollback from every K is covered against the fake
cloud by the state-machine test (tests/unit/test_executor_statemachine.py).
The last case goes through the CLI (`rollgate rollback RUN_ID`).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.clouds import build_plan
from harness.executor import ROLLED_BACK, Plan
from harness.executor.journal import ABSENT, DONE, PARTIAL, Journal
from harness.scenario.load import load_scenario
from tests.integration.upgrade_support import (
    MINIMAL,
    SimulatedCrash,
    StepTracker,
    UpgradeCloud,
    data_problems,
    db_heads,
    deployed_cloud,
    executor,
    health,
    seed_servers,
    upgradable_releases,
)

pytestmark = pytest.mark.integration

#: (step to stop at, how): "end" = after its end is journalled, "mid" = after its first effect.
STOPS = [("s004", "mid"), ("s012", "end"), ("s025", "mid")]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpgradeCloud]:
    yield from deployed_cloud(tmp_path_factory)


@pytest.fixture
def results_dir(cloud: UpgradeCloud, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROLLGATE_RESULTS", str(cloud.root))
    return cloud.root


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_scenario(MINIMAL), 11)


def assert_back_at_source(cloud: UpgradeCloud) -> None:
    assert set(upgradable_releases(cloud).values()) == {"1.0"}, upgradable_releases(cloud)
    assert data_problems(cloud.state(), cloud.seeded) == []
    report = health(cloud, "1.0")
    assert report.ok, report.problems
    # expand stays (additive; 1.0 runs on it), contract never ran
    assert db_heads(cloud) == {"expand": "e11", "contract": "c10"}


@pytest.mark.parametrize(("stop", "how"), STOPS)
def test_rollback_from_a_step_restores_the_source(cloud: UpgradeCloud, plan: Plan, stop: str,
                                                  how: str) -> None:
    journal = cloud.directory / f"journal-{stop}"
    tracker = StepTracker(cloud.directory / "timeline.jsonl", None if how == "mid" else stop)
    with tracker as timeline, pytest.raises(SimulatedCrash):
        executor(cloud, plan, journal, timeline, crash_mid=stop if how == "mid" else None).run()
    assert Journal(journal).state().effect(stop) == (PARTIAL if how == "mid" else DONE)
    assert "1.1" in set(upgradable_releases(cloud).values())

    with StepTracker(cloud.directory / "timeline.jsonl") as timeline:
        result = executor(cloud, plan, journal, timeline).rollback()
    assert result.status == ROLLED_BACK, result
    state = Journal(journal).state()
    assert all(state.effect(s.step_id) == ABSENT for s in plan.steps)
    assert_back_at_source(cloud)


def test_rollback_from_the_last_step_before_finalize_via_cli(cloud: UpgradeCloud) -> None:
    last = "s042"  # online-migrations' health gate: the next step is finalize
    done = cloud.rollgate("upgrade", cloud.run_id, "--to", "1.1", "--seed", "11",
                          env={"ROLLGATE_CRASH_AFTER_STEP": last})
    assert done.returncode == -9, done.stderr[-2000:]
    assert set(upgradable_releases(cloud).values()) == {"1.1"}

    back = cloud.rollgate("rollback", cloud.run_id)
    assert back.returncode == 0, back.stdout[-3000:] + back.stderr[-3000:]
    assert "rollback of run" in back.stdout
    assert "rolled_back (42 step(s) run)" in back.stdout
    assert_back_at_source(cloud)
    # the cloud works: a new server boots, takes data, and the gate still passes with it
    more = seed_servers(cloud.state(), 1)
    cloud.seeded.data.update(more.data)
    assert data_problems(cloud.state(), cloud.seeded) == []
    assert health(cloud, "1.0").ok
    assert os.path.exists(cloud.directory / "journal")

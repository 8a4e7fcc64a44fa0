"""Issue 5: a crash after every step of a 1.0 -> 1.1 upgrade, each followed by a resume, completes.

Design (one cloud, one upgrade pass; why: a cloud per step would cost 44
deploys and upgrades): the CLI is killed (SIGKILL, via the
ROLLGATE_CRASH_AFTER_STEP hook) after s001; then, for every later step K, a
resume runs the journal's unfinished steps and the harness "dies" right after
step K's first operation took effect and before its end is journalled (the
worst moment: effect in place, journal says only "begun"). The next resume
therefore re-runs K (every operation must be idempotent on the real cloud)
and dies after K+1, and so on. The last resume is the real CLI
(`rollgate upgrade RUN --resume`), which must finish the finalize steps.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.executor import Plan
from harness.executor.journal import DONE, PARTIAL, Journal
from tests.integration.upgrade_support import (
    SimulatedCrash,
    StepTracker,
    UpgradeCloud,
    data_problems,
    db_heads,
    deployed_cloud,
    executor,
    health,
    upgradable_releases,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpgradeCloud]:
    yield from deployed_cloud(tmp_path_factory)


@pytest.fixture
def results_dir(cloud: UpgradeCloud, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROLLGATE_RESULTS", str(cloud.root))
    return cloud.root


def test_crash_after_every_step_then_resume_completes(cloud: UpgradeCloud) -> None:
    killed = cloud.rollgate("upgrade", cloud.run_id, "--to", "1.1", "--seed", "3",
                            env={"ROLLGATE_CRASH_AFTER_STEP": "s001"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    plan = Plan.load(cloud.directory / "plan.json")
    journal_path = cloud.directory / "journal"
    assert Journal(journal_path).state().effect("s001") == DONE

    crashed_at = []
    for step in plan.steps[1:-1]:
        with StepTracker(cloud.directory / "timeline.jsonl") as timeline, pytest.raises(SimulatedCrash):
            executor(cloud, plan, journal_path, timeline, crash_mid=step.step_id).resume()
        state = Journal(journal_path).state()
        assert state.effect(step.step_id) == PARTIAL, step
        previous = plan.steps[plan.steps.index(step) - 1]
        assert state.effect(previous.step_id) == DONE, previous
        crashed_at.append(step.step_id)
    assert len(crashed_at) == len(plan.steps) - 2

    done = cloud.rollgate("upgrade", cloud.run_id, "--resume")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "(resumed): completed (2 step(s) run)" in done.stdout, done.stdout[-500:]

    assert set(upgradable_releases(cloud).values()) == {"1.1"}
    assert db_heads(cloud) == {"expand": "e11", "contract": "c11"}
    assert data_problems(cloud.state(), cloud.seeded) == []
    report = health(cloud, "1.1")
    assert report.ok, report.problems

"""Issue 5: `rollgate reboot` reboots every compute under a policy, never taking more hosts out
than allowed, and every instance survives with its data (live-migrated away first).

One cloud for both policies: batch 1, then batch 2 with max-unavailable 2.
"Down" is read from the timeline's step events, as a gate would: a compute is
out from the start of its disable-compute step to the end of its
enable-compute step.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.timeline import read_events
from tests.integration.upgrade_support import (
    UpgradeCloud,
    completed_migrations,
    data_problems,
    deployed_cloud,
    health,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpgradeCloud]:
    yield from deployed_cloud(tmp_path_factory, servers=4)


@pytest.fixture
def results_dir(cloud: UpgradeCloud, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROLLGATE_RESULTS", str(cloud.root))
    return cloud.root


def most_hosts_down(events: list[dict[str, Any]]) -> int:
    """Largest number of computes out of service at once (disable start .. enable end)."""
    changes = []
    for event in events:
        if event["name"] == "disable-compute" and event["phase"] == "start":
            changes.append((event["t"], 1))
        elif event["name"] == "enable-compute" and event["phase"] == "end":
            changes.append((event["t"], -1))
    down = most = 0
    for _, delta in sorted(changes):
        down += delta
        most = max(most, down)
    assert down == 0, "a compute was left disabled"
    return most


def reboot_run(cloud: UpgradeCloud, *args: str) -> list[dict[str, Any]]:
    """Run `rollgate reboot` and return the step events it added to the timeline."""
    timeline = cloud.directory / "timeline.jsonl"
    seen = len(list(read_events(timeline))) if timeline.exists() else 0
    pids = {h: s.services["hypervisor"].pid for h, s in cloud.state().hosts.items() if "compute" in s.roles}
    moved_before = len(completed_migrations(cloud))
    done = cloud.rollgate("reboot", cloud.run_id, "--seed", "1", *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    after = {h: s.services["hypervisor"].pid for h, s in cloud.state().hosts.items() if "compute" in s.roles}
    assert all(after[h] != pids[h] for h in pids), "a compute host was not rebooted"
    events = [e for e in list(read_events(timeline))[seen:] if e.get("kind") == "step"]
    ends = [e for e in events if e["phase"] == "end"]
    assert ends
    assert {e["outcome"] for e in ends} == {"ok"}
    assert sorted(e["host"] for e in ends if e["name"] == "reboot-host") == ["compute-1", "compute-2",
                                                                             "compute-3"]
    # every instance left its host before the reboot (it would have died there)
    assert len(completed_migrations(cloud)) - moved_before >= len(cloud.seeded.data)
    assert data_problems(cloud.state(), cloud.seeded) == []
    report = health(cloud, "1.0")
    assert report.ok, report.problems
    return events


def test_rolling_reboot_batch_1(cloud: UpgradeCloud) -> None:
    events = reboot_run(cloud, "--batch-size", "1")
    assert most_hosts_down(events) == 1


def test_rolling_reboot_batch_2_max_unavailable_2(cloud: UpgradeCloud) -> None:
    events = reboot_run(cloud, "--batch-size", "2", "--max-unavailable", "2")
    assert most_hosts_down(events) == 2

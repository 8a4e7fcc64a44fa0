"""Issue 5 on the process backend, default topology: `rollgate upgrade` 1.0 -> 1.1 end to end,
and the invalid policies it refuses before touching anything.

One cloud for the module: the refusals run first (they must leave it as it
was), then the full upgrade, then the refusals that only a 1.1 cloud can show
(a target older than the source, a rollback after finalize).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.upgrade_support import (
    UpgradeCloud,
    completed_migrations,
    data_problems,
    db_heads,
    deployed_cloud,
    health,
    step_events,
    upgradable_releases,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpgradeCloud]:
    yield from deployed_cloud(tmp_path_factory)


@pytest.fixture
def results_dir(cloud: UpgradeCloud, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Overrides conftest's per-test results root: the module shares one run directory."""
    monkeypatch.setenv("ROLLGATE_RESULTS", str(cloud.root))
    return cloud.root


def fingerprint(cloud: UpgradeCloud) -> dict[str, str]:
    """Digest of every file an upgrade writes or changes (run state, host configs, plan, journal)."""
    files = [cloud.directory / "run.json", *sorted(cloud.directory.glob("hosts/*/config.json")),
             *sorted(cloud.directory.glob("plan*.json")), *sorted(cloud.directory.glob("journal*"))]
    return {str(p.relative_to(cloud.directory)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize(("args", "field", "problem"), [
    (["--batch-size", "0"], "upgrade.policy.batch_size", "must be at least 1"),
    (["--max-unavailable", "4"], "upgrade.policy.max_unavailable", "4 is more than the 3 compute hosts"),
    (["--order", "alphabetical"], "upgrade.policy.order", "unknown order 'alphabetical'"),
    (["--to", "9.9"], "upgrade.to", "unknown release '9.9'"),
])
def test_invalid_policy_is_refused_and_touches_nothing(cloud: UpgradeCloud, args: list[str], field: str,
                                                       problem: str) -> None:
    before = fingerprint(cloud)
    target = [] if "--to" in args else ["--to", "1.1"]
    done = cloud.rollgate("upgrade", cloud.run_id, *target, *args)
    assert done.returncode == 2, done.stderr
    assert f"{field}: {problem}" in done.stderr, done.stderr
    assert fingerprint(cloud) == before
    assert not (cloud.directory / "plan.json").exists()
    assert set(upgradable_releases(cloud).values()) == {"1.0"}


def test_policy_file_is_validated_like_a_scenario(cloud: UpgradeCloud, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("policy:\n  batch_size: 1\n  instances: teleport\n")
    done = cloud.rollgate("upgrade", cloud.run_id, "--to", "1.1", "--policy", str(policy))
    assert done.returncode == 2
    assert f"{policy}: upgrade.policy.instances: unknown value 'teleport'" in done.stderr, done.stderr


def test_full_rolling_upgrade_1_0_to_1_1(cloud: UpgradeCloud) -> None:
    assert db_heads(cloud) == {"expand": "e10", "contract": "c10"}
    done = cloud.rollgate("upgrade", cloud.run_id, "--to", "1.1", "--seed", "5")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "upgrade 1.0 -> 1.1 of run" in done.stdout
    assert ": completed (44 step(s) run)" in done.stdout

    releases = upgradable_releases(cloud)
    assert len(releases) == 14  # 2 controllers x 5, 3 compute agents, 1 network agent
    assert set(releases.values()) == {"1.1"}, releases
    assert db_heads(cloud) == {"expand": "e11", "contract": "c11"}
    assert data_problems(cloud.state(), cloud.seeded) == []
    report = health(cloud, "1.1")
    assert report.ok, report.problems
    ops = cloud.ops()
    conductors = [ops._healthz(h, "conductor") for h in ("controller-1", "controller-2")]
    assert [c and c["upgrade_levels"] for c in conductors] == [{"compute": "1.1"}] * 2

    events = step_events(cloud)
    ends = [e for e in events if e["phase"] == "end"]
    assert len(ends) == 44
    assert {e["outcome"] for e in ends} == {"ok"}
    replaced = {(e["host"], e["service"]) for e in ends if e["name"] == "replace-service"}
    assert len(replaced) == 14
    assert all(e["to"] == "1.1" for e in ends if e["name"] == "replace-service")
    migrated = [e for e in ends if e["name"] == "migrate-instances"]
    assert [e["host"] for e in migrated] == ["compute-1", "compute-2", "compute-3"]
    # every instance was live-migrated off its host before that host's agent was replaced
    assert set(cloud.seeded.data) <= set(completed_migrations(cloud))


def test_target_older_than_source_is_refused(cloud: UpgradeCloud) -> None:
    before = fingerprint(cloud)
    done = cloud.rollgate("upgrade", cloud.run_id, "--to", "1.0")
    assert done.returncode == 2
    assert "upgrade.to: target 1.0 is older than the source 1.1" in done.stderr, done.stderr
    assert fingerprint(cloud) == before


def test_rollback_after_finalize_is_refused(cloud: UpgradeCloud) -> None:
    before = fingerprint(cloud)
    done = cloud.rollgate("rollback", cloud.run_id)
    assert done.returncode == 2
    assert "cannot roll back: finalize began at s043" in done.stderr, done.stderr
    assert fingerprint(cloud) == before
    assert set(upgradable_releases(cloud).values()) == {"1.1"}

"""Bad input gets a clear error naming the problem, exit 2, and nothing is left running."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.backends import procutil
from harness.clouds import minicloud
from harness.runstate import RunState

pytestmark = pytest.mark.integration


def rollgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=120, check=False, env=os.environ.copy())


def minicloud_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60, check=False,
                          cwd=minicloud.MINICLOUD_SOURCE, env={**os.environ, **minicloud.process_env()})


def test_unknown_release_is_a_usage_error() -> None:
    done = rollgate("up", "--release", "9.9", "--run-id", "bad-release")
    assert done.returncode == 2
    assert "unknown release '9.9'" in done.stderr
    assert "1.0, 1.1, 1.1.1, 2.0" in done.stderr
    assert procutil.tagged_pids("bad-release") == []


def test_malformed_config_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "host.json"
    bad.write_text('{"release": "1.0", "host": "c", ')
    done = minicloud_run("-m", "minicloud", "compute-api", "--config", str(bad))
    assert done.returncode == 2
    assert str(bad) in done.stderr
    assert "malformed JSON" in done.stderr
    bad.write_text(json.dumps({"release": "3.0", "host": "c", "bind": "127.0.0.1",
                               "state_dir": str(tmp_path), "endpoints": {}}))
    done = minicloud_run("-m", "minicloud", "identity", "--config", str(bad))
    assert done.returncode == 2
    assert "release: unknown release '3.0'" in done.stderr


def test_database_newer_than_code_is_refused(tmp_path: Path) -> None:
    config: dict[str, Any] = {"host": "controller", "bind": "127.0.0.1", "state_dir": str(tmp_path),
                              "database": f"sqlite:///{tmp_path / 'cloud.db'}", "endpoints": {}}
    path = tmp_path / "host.json"
    path.write_text(json.dumps({**config, "release": "2.0"}))
    synced = minicloud_run("-m", "minicloud.manage", "--config", str(path), "db", "sync")
    assert synced.returncode == 0, synced.stderr
    path.write_text(json.dumps({**config, "release": "1.0"}))
    done = minicloud_run("-m", "minicloud", "conductor", "--config", str(path))
    assert done.returncode == 2
    assert "newer than this release (1.0)" in done.stderr, done.stderr


def test_service_failing_at_start_leaves_nothing_behind() -> None:
    # 1.1+nostart: the compute agent of compute-2 exits at start.
    done = rollgate("up", "--release", "1.1+nostart", "--computes", "2", "--run-id", "half-started")
    assert done.returncode == 2, done.stderr
    assert "compute-agent on compute-2" in done.stderr
    assert procutil.tagged_pids("half-started") == []
    state = RunState.load("half-started")
    assert state.status == "failed"
    address = state.hosts["controller"].address
    assert address not in procutil.listening_addresses()

"""`rollgate up`, `status`, `down` as a user runs them, and a killed `up` reaped by `down`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.backends import procutil
from harness.runstate import RunState
from harness.waiting import wait_until
from tests.integration.test_minicloud_bad_input import rollgate

pytestmark = pytest.mark.integration


def test_up_status_down(results_dir: Path) -> None:
    done = rollgate("up", "--release", "1.0", "--computes", "1", "--run-id", "cli-cycle")
    try:
        assert done.returncode == 0, done.stderr
        clouds = yaml.safe_load((results_dir / "cli-cycle" / "clouds.yaml").read_text())
        assert clouds["clouds"]["rollgate"]["auth"]["username"] == "admin"
        status = rollgate("status", "cli-cycle", "--json")
        assert status.returncode == 0, status.stderr
        (run,) = json.loads(status.stdout)
        health = {(h, s): i["health"] for h, host in run["hosts"].items()
                  for s, i in host["services"].items()}
        assert health
        assert set(health.values()) == {"ok"}, health
        assert run["hosts"]["compute-1"]["services"]["compute-agent"]["release"] == "1.0"
    finally:
        down = rollgate("down", "cli-cycle")
    assert down.returncode == 0, down.stderr
    assert procutil.tagged_pids("cli-cycle") == []


def test_killed_up_is_reaped_by_down(results_dir: Path) -> None:
    command = [sys.executable, "-m", "harness.cli", "up", "--computes", "2", "--run-id", "killed"]
    up = subprocess.Popen(command,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    run_json = results_dir / "killed" / "run.json"

    def some_started() -> bool:
        return run_json.exists() and len(procutil.tagged_pids("killed")) >= 3

    try:
        wait_until(some_started, timeout=30, what="a few services of the run started")
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait(10)
    state = RunState.load("killed")
    addresses = {h.address for h in state.hosts.values()}
    down = rollgate("down", "killed")
    assert down.returncode == 0, down.stderr
    assert procutil.tagged_pids("killed") == []
    deadline = time.monotonic() + 5
    while addresses & procutil.listening_addresses() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not addresses & procutil.listening_addresses()

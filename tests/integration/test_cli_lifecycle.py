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


def test_fault_stops_for_a_while_and_kills(results_dir: Path) -> None:
    done = rollgate("up", "--release", "1.0", "--computes", "1", "--run-id", "cli-fault")
    try:
        assert done.returncode == 0, done.stderr
        stop = rollgate("fault", "cli-fault", "controller", "compute-api", "--stop-for", "1")
        assert stop.returncode == 0, stop.stderr
        events = [json.loads(line) for line in
                  (results_dir / "cli-fault" / "timeline.jsonl").read_text().splitlines()]
        faults = [e for e in events if e.get("kind") == "fault"]
        assert [f["action"] for f in faults] == ["stop", "ready"]
        assert faults[1]["t"] - faults[0]["t"] >= 1.0
        (run,) = json.loads(rollgate("status", "cli-fault", "--json").stdout)
        assert run["hosts"]["controller"]["services"]["compute-api"]["health"] == "ok"
        kill = rollgate("fault", "cli-fault", "controller", "compute-api", "--kill")
        assert kill.returncode == 0, kill.stderr
        (run,) = json.loads(rollgate("status", "cli-fault", "--json").stdout)
        assert run["hosts"]["controller"]["services"]["compute-api"]["health"] == "down"
        again = rollgate("fault", "cli-fault", "controller", "compute-api", "--kill")
        assert again.returncode == 2
        assert "is not running" in again.stderr
    finally:
        rollgate("down", "cli-fault")
    assert procutil.tagged_pids("cli-fault") == []


def test_ctrl_c_during_up_cleans_up_and_exits_2(results_dir: Path) -> None:
    """Interrupted is not judged: exit 2 (never 1, which is FAIL), and nothing left running."""
    command = [sys.executable, "-m", "harness.cli", "up", "--computes", "2", "--run-id", "interrupted"]
    # A test run started in the background (nohup, `cmd &`) inherits SIGINT ignored, and Python
    # then installs no KeyboardInterrupt handler: give `up` the terminal's default, as a user's has.
    up = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=os.environ.copy(),
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    run_json = results_dir / "interrupted" / "run.json"
    try:
        wait_until(lambda: run_json.exists() and len(procutil.tagged_pids("interrupted")) >= 3,
                   timeout=30, what="a few services of the run started")
    finally:
        up.send_signal(signal.SIGINT)
        _, stderr = up.communicate(timeout=60)
    assert up.returncode == 2, stderr[-2000:]
    assert "rollgate: error: interrupted" in stderr
    assert procutil.tagged_pids("interrupted") == []

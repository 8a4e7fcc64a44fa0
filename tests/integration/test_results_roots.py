"""Two results roots side by side on one machine: ``down --all`` in one leaves the other's runs.

Each root is a `rollgate up` of its own (a process-backend cloud), as two checkouts, two users
or two CI jobs on one machine would start them. ``down --all`` with ``ROLLGATE_RESULTS`` set to
the first root must stop the first cloud and leave every process of the second running.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends import procutil

pytestmark = pytest.mark.integration


def _rollgate(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "ROLLGATE_RESULTS": str(root)})


def test_down_all_in_one_results_root_leaves_the_others_runs(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    try:
        for root, run_id in ((first, "roots-a"), (second, "roots-b")):
            up = _rollgate(root, "up", "--computes", "1", "--run-id", run_id)
            assert up.returncode == 0, up.stderr
        theirs = procutil.tagged_pids("roots-b", root=str(second.resolve()))
        assert len(theirs) >= 5  # controller services and the compute's
        assert procutil.tagged_pids("roots-a", root=str(first.resolve()))

        status = _rollgate(first, "status")
        assert f"results root {first.resolve()}" in status.stdout
        assert "roots-a  up" in status.stdout
        assert "roots-b" not in status.stdout
        wide = json.loads(_rollgate(first, "status", "--machine-wide", "--json").stdout)
        found = {(e["results_root"], e["run_id"]): e["status"] for e in wide}
        assert found[(str(first.resolve()), "roots-a")] == "up"
        assert found[(str(second.resolve()), "roots-b")] == "up"

        down = _rollgate(first, "down", "--all")
        assert down.returncode == 0, down.stderr
        assert procutil.tagged_pids("roots-a") == []
        assert all(procutil.alive(pid) for pid in theirs), "down --all reached another results root"
        assert json.loads(_rollgate(second, "status", "roots-b", "--json").stdout)[0]["status"] == "up"
        assert json.loads((first / "roots-a" / "run.json").read_text())["status"] == "down"
    finally:
        _rollgate(first, "down", "roots-a")
        _rollgate(second, "down", "roots-b")
    assert procutil.tagged_pids("roots-a") == []
    assert procutil.tagged_pids("roots-b") == []

"""Two results roots side by side on the Docker backend: ``down --all`` in one leaves the
other's containers, networks and volumes (tests/integration/test_results_roots.py is the
process-backend twin)."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends.docker_resources import docker_client, leftovers
from harness.ownership import LABEL_ROOT

pytestmark = pytest.mark.docker
NOTHING = {"containers": [], "volumes": [], "networks": []}


def _rollgate(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "ROLLGATE_RESULTS": str(root)})


def test_down_all_in_one_results_root_leaves_the_others_containers(tmp_path: Path) -> None:
    engine = docker_client()
    first, second = tmp_path / "first", tmp_path / "second"
    token = secrets.token_hex(3)
    mine, theirs = f"rr-a-{token}", f"rr-b-{token}"
    try:
        for root, run_id in ((first, mine), (second, theirs)):
            up = _rollgate(root, "up", "--backend", "docker", "--computes", "1", "--run-id", run_id)
            assert up.returncode == 0, up.stderr
        left = leftovers(engine, theirs)
        assert left["containers"]
        assert left["networks"]
        (container, *_) = engine.containers.list(all=True, filters={"label": f"rollgate.run={theirs}"})
        assert container.labels[LABEL_ROOT] == str(second.resolve())
        wide = json.loads(_rollgate(first, "status", "--machine-wide", "--json").stdout)
        found = {(e["results_root"], e["run_id"]): e for e in wide}
        for root, run_id in ((first, mine), (second, theirs)):
            entry = found[(str(root.resolve()), run_id)]
            assert entry["status"] == "up"
            assert any(f.endswith("docker objects") for f in entry["found"]), entry

        down = _rollgate(first, "down", "--all")
        assert down.returncode == 0, down.stderr
        assert leftovers(engine, mine) == NOTHING
        after = leftovers(engine, theirs)
        assert {k: sorted(v) for k, v in after.items()} == {k: sorted(v) for k, v in left.items()}, \
            "down --all reached another results root"
    finally:
        _rollgate(first, "down", mine)
        _rollgate(second, "down", theirs)
    assert leftovers(engine, mine) == NOTHING
    assert leftovers(engine, theirs) == NOTHING

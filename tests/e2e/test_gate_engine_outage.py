"""The Docker engine stopped mid-run: the verdict is ERROR (not FAIL) and nothing is left once it is back.

The test stops the real dockerd while ``rollgate run`` is upgrading (every
container of the cloud dies with it, so traffic fails and steps fail: the
symptoms a FAIL would be made of), starts it again a few seconds later, and
reads the verdict: ERROR, exit 2, ``harness.engine`` naming the outage; and no
container, network or volume of the run afterwards, because cleanup waited for
the engine.

Stopping the engine kills every container on the machine, so the test runs
only where that is allowed: ``ROLLGATE_TEST_STOP_DOCKER=1`` (``.ci/run`` sets
it; CI's engine is its own). It restarts the engine with
``.ci/docker-setup.sh``, the script that started it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends.docker_resources import docker_client, leftovers

pytestmark = [
    pytest.mark.docker,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("ROLLGATE_TEST_STOP_DOCKER") != "1",
                       reason="stops this machine's Docker engine: set ROLLGATE_TEST_STOP_DOCKER=1 "
                              "(.ci/run does)"),
]
ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "e2e-engine-outage"


def _dockerd_pids() -> list[int]:
    found = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True, check=False)
    return [int(p) for p in found.stdout.split()]


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _executor_started(timeline: Path) -> bool:
    if not timeline.exists():
        return False
    return any('"kind":"step"' in line and '"name":"replace-service"' in line
               for line in timeline.read_text().splitlines())


def test_engine_outage_is_an_error_and_cleanup_waits_for_the_engine(tmp_path: Path) -> None:
    env = {**os.environ, "ROLLGATE_RESULTS": str(tmp_path), "ROLLGATE_ENGINE_WAIT": "180"}
    run = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(ROOT / "scenarios" / "rolling-upgrade.yaml"),
         "--backend", "docker", "--run-id", RUN_ID],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait(lambda: _executor_started(tmp_path / RUN_ID / "timeline.jsonl") or run.poll() is not None,
              300, "the executor's first service replacement")
        assert run.poll() is None, "rollgate run ended before the engine could be stopped"
        for pid in _dockerd_pids():
            os.kill(pid, signal.SIGTERM)
        _wait(lambda: not _dockerd_pids(), 120, "dockerd to stop")
        time.sleep(3)
    finally:
        # Whatever happened above, the machine gets its engine back.
        subprocess.run(["bash", str(ROOT / ".ci" / "docker-setup.sh")], check=True, timeout=180)
    output, _ = run.communicate(timeout=600)

    verdict = json.loads((tmp_path / RUN_ID / "verdict.json").read_text())
    checks = {c["id"]: c for c in verdict["checks"]}
    assert run.returncode == 2, output[-3000:]
    assert verdict["verdict"] == "ERROR"
    assert checks["harness.engine"]["status"] == "error", checks["harness.engine"]
    assert "outage" in checks["harness.engine"]["summary"]
    # Judging stopped at the outage: no SLO or later resource phase built from its symptoms.
    assert "slo.lost_writes" not in checks
    assert "resources.verify-after" not in checks
    events = [json.loads(line) for line in (tmp_path / RUN_ID / "timeline.jsonl").read_text().splitlines()]
    assert [e["phase"] for e in events if e["kind"] == "engine"][:2] == ["down", "up"]
    junit = (tmp_path / RUN_ID / "junit.xml").read_text()
    assert "harness.engine" in junit
    assert leftovers(docker_client(), RUN_ID) == {"containers": [], "volumes": [], "networks": []}

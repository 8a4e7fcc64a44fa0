"""``observe()`` around a command, against stand-ins: the command is the step, phases compare."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.checks.samples import numbered_events
from harness.traffic.config import parse_slo, parse_traffic
from harness.traffic.observation import ObservationSpec, observe
from harness.traffic.plan import ApiTarget, InstanceTarget

pytestmark = pytest.mark.integration
STANDIN = Path(__file__).with_name("traffic_standin.py")


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    processes = [subprocess.Popen([sys.executable, str(STANDIN), mode], stdout=subprocess.PIPE, text=True,
                                  start_new_session=True) for mode in ("api", "kv")]
    try:
        found = []
        for process in processes:
            assert process.stdout is not None
            found.append(int(process.stdout.readline().split()[1]))
        yield found[0], found[1]
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.mark.parametrize(("code", "passed"), [(0, True), (3, False)])
def test_command_is_judged_as_the_one_step(tmp_path: Path, ports: tuple[int, int], code: int,
                                           passed: bool) -> None:
    api_port, kv_port = ports
    command = (sys.executable, "-c", f"import time; time.sleep(1); print('hi'); exit({code})")
    spec = ObservationSpec(duration_s=0, baseline_s=2.5, settle_s=0.5, command=command)
    result = observe(tmp_path, None, [ApiTarget("compute", "127.0.0.1", api_port, "/")],
                     [InstanceTarget("vm-1", "id", "127.0.0.1", kv_port)], None, spec,
                     parse_traffic(None), parse_slo({"api_p99_floor_ms": 100}))
    assert result.command_rc == code
    assert result.report.passed is passed
    if not passed:
        assert [v.slo for v in result.report.violations] == ["command"]
    events = [e for _, e in numbered_events(tmp_path / "timeline.jsonl")]
    steps = [e for e in events if e.get("kind") == "step"]
    assert [(s["phase"], s["name"]) for s in steps] == [("start", "command"), ("end", "command")]
    assert steps[1]["rc"] == code
    assert set(result.report.latency) == {"before", "step:command", "during", "after"}
    assert result.report.latency["during"]["api/sampler"]["count"] >= 10
    assert not [n for n in result.report.notes if n.startswith("api_p99")]  # p99 was evaluated
    summary = json.loads(result.verdict_path.read_text())
    assert summary["verdict"] == ("PASS" if passed else "FAIL")
    assert json.loads(result.outages_path.read_text()) == []
    assert (tmp_path / "observe-command.log").read_text().strip() == "hi"

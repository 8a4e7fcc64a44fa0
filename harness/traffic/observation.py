"""One observation: traffic against a running cloud, optionally around a command, then a verdict.

``rollgate observe`` is a thin shell over ``observe``: discover the targets,
start Locust, wait (or run the command as the one "step" of the timeline, after
a baseline and followed by a settle period), stop Locust, read every
acknowledged write back, and judge the observation window of the timeline.
Outputs under ``results/<run-id>/``: ``timeline.jsonl``, ``outages.json``,
``observe-verdict.json`` and ``locust/`` (plan, CSV stats, log).
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checks.samples import numbered_events
from harness.checks.slo import SloReport, Violation, evaluate
from harness.timeline import STEP, Timeline
from harness.traffic.config import SloConfig, TrafficConfig
from harness.traffic.plan import ApiTarget, InstanceTarget, TrafficPlan
from harness.traffic.runner import TrafficError, TrafficRunner
from harness.traffic.verify import verify_writes

LOG = logging.getLogger(__name__)
COMMAND_STEP = "command"


@dataclass(frozen=True)
class ObservationSpec:
    """What to observe and for how long (seconds)."""

    duration_s: float
    command: tuple[str, ...] = ()
    baseline_s: float = 3.0
    settle_s: float = 2.0
    command_timeout_s: float = 3600.0


@dataclass
class ObservationResult:
    report: SloReport
    window: tuple[float, float]
    command_rc: int | None
    outages_path: Path
    verdict_path: Path


def _hold(runner: TrafficRunner, seconds: float) -> None:
    """Keep traffic running for ``seconds``, failing fast if Locust died under us."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not runner.running():
            raise TrafficError(f"locust exited early: {runner.output_tail()}")
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _run_command(command: Sequence[str], timeline: Timeline, log_path: Path, timeout_s: float) -> int:
    """Run the judged command as the timeline's one step; its output goes to ``log_path``."""
    timeline.emit({"kind": STEP, "phase": "start", "name": COMMAND_STEP, "command": list(command)})
    started = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        except OSError as exc:
            timeline.emit({"kind": STEP, "phase": "end", "name": COMMAND_STEP, "outcome": "error",
                           "error": str(exc)})
            raise TrafficError(f"cannot run {command[0]!r}: {exc}") from exc
        try:
            rc = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            rc = -int(signal.SIGKILL)
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # whatever it left behind
            except ProcessLookupError:
                pass
            process.wait()
    timeline.emit({"kind": STEP, "phase": "end", "name": COMMAND_STEP, "rc": rc,
                   "outcome": "ok" if rc == 0 else "failed", "seconds": round(time.monotonic() - started, 3)})
    return rc


def observe(run_dir: Path, clouds_yaml: Path | None, api_targets: list[ApiTarget],
            instances: list[InstanceTarget], token: str | None, spec: ObservationSpec,
            traffic: TrafficConfig, slo: SloConfig) -> ObservationResult:
    """Run traffic for the spec, then verify writes and judge the window."""
    timeline_path = run_dir / "timeline.jsonl"
    run_time = spec.duration_s if not spec.command else (
        spec.baseline_s + spec.command_timeout_s + spec.settle_s)
    plan = TrafficPlan(
        run_dir=str(run_dir), timeline=str(timeline_path), locust_dir=str(run_dir / "locust"),
        config=traffic, api_targets=api_targets, instances=instances,
        clouds_yaml=str(clouds_yaml) if clouds_yaml else None, token=token,
        key_prefix=f"rg{secrets.token_hex(3)}", run_time_s=run_time + 30,
    )
    command_rc: int | None = None
    with Timeline(timeline_path) as timeline:
        start = time.monotonic()
        timeline.emit({"kind": "observe", "phase": "start", "duration_s": spec.duration_s,
                       "command": list(spec.command), "api_targets": [t.name for t in api_targets],
                       "instances": [i.name for i in instances]})
        with TrafficRunner(plan) as runner:
            if spec.command:
                _hold(runner, spec.baseline_s)
                command_rc = _run_command(spec.command, timeline, run_dir / "observe-command.log",
                                          spec.command_timeout_s)
                _hold(runner, spec.settle_s)
            else:
                _hold(runner, spec.duration_s)
        missing = verify_writes(timeline_path, timeline, instances, since=start)
        end = time.monotonic()
        timeline.emit({"kind": "observe", "phase": "end", "unreadable_writes": missing})
    report = evaluate(list(numbered_events(timeline_path)), slo, window=(start, end))
    if command_rc not in (None, 0):
        report.violations.append(Violation(
            "command", spec.command[0], f"the judged command exited {command_rc}", None, None,
            [{"command": list(spec.command), "rc": command_rc, "log": "observe-command.log"}]))
    outages_path = run_dir / "outages.json"
    outages_path.write_text(json.dumps([o.to_row() for o in report.outages], indent=2) + "\n")
    verdict_path = run_dir / "observe-verdict.json"
    summary: dict[str, Any] = {"window": [start, end], "command_rc": command_rc, **report.to_dict()}
    verdict_path.write_text(json.dumps(summary, indent=2) + "\n")
    return ObservationResult(report, (start, end), command_rc, outages_path, verdict_path)

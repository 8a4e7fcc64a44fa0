"""A realistic synthetic run directory for report tests and the report benchmark.

It writes a timeline.jsonl in the format the traffic and the executor write
(header, sampler and user requests, data-plane writes and their read-back,
step start/end events, a fault), with an API outage and a data-plane gap in it
when asked, and returns the Verdict the real checks compute from it, so the
reports are tested on what a run would really produce.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from harness.checks.samples import numbered_events
from harness.checks.slo import evaluate
from harness.report.build import assemble, executor_check, releases_check, slo_checks
from harness.traffic.config import SloConfig
from harness.verdict import CHECK_RESOURCES, Check, Verdict

INITIAL = {
    "controller-1": {"identity": "1.0", "image": "1.0", "compute-api": "1.0", "conductor": "1.0"},
    "controller-2": {"identity": "1.0", "image": "1.0", "compute-api": "1.0", "conductor": "1.0"},
    "compute-1": {"compute-agent": "1.0"},
    "compute-2": {"compute-agent": "1.0"},
    "network-1": {"network": "1.0"},
}
API_TARGETS = ("compute", "identity", "image")
INSTANCES = ("vm-1", "vm-2")
T0 = 1000.0
WALL0 = 1_700_000_000.0
OUTAGE_ERROR = "HTTP 503 Service Unavailable"


def _replace_steps() -> list[tuple[str, str]]:
    return [(host, service) for host, services in INITIAL.items() for service in services]


def write_synthetic_run(
    run_dir: Path, *, events: int = 3000, seed: int = 7, outage: bool = True, gap: bool = True
) -> Verdict:
    """Write ``run_dir/timeline.jsonl`` with about ``events`` requests; return the judged Verdict."""
    rng = random.Random(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    per_second = len(API_TARGETS) * 2 * 10 + len(INSTANCES) * 2 * 50  # samplers: 100 ms API, 20 ms data plane
    duration = max(6.0, events / per_second)
    steps = _replace_steps()
    step_len = duration * 0.6 / len(steps)
    step_windows = [
        (T0 + duration * 0.2 + i * step_len, T0 + duration * 0.2 + (i + 0.8) * step_len)
        for i in range(len(steps))
    ]
    api_index = steps.index(("controller-1", "compute-api"))
    outage_window = (step_windows[api_index][0], step_windows[api_index][0] + 2.0)
    gap_window = (T0 + duration * 0.5, T0 + duration * 0.5 + 0.6)
    lines: list[dict[str, Any]] = [{"kind": "header", "t": T0, "wall": WALL0, "pid": 1}]

    def request(t: float, kind: str, target: str, conn: str, interval: float, op: str, **extra: Any) -> None:
        failing = (
            outage and kind == "api" and target == "compute" and outage_window[0] <= t < outage_window[1]
        )
        stalled = gap and kind == "dataplane" and target == "vm-1" and gap_window[0] <= t < gap_window[1]
        latency = rng.uniform(0.002, 0.012) if kind == "api" else rng.uniform(0.0005, 0.003)
        event = {
            "t": round(t, 6),
            "end": round(t + latency, 6),
            "kind": kind,
            "target": target,
            "conn": conn,
            "source": "sampler",
            "op": op,
            "ok": not (failing or stalled),
            "latency": round(latency, 6),
            **extra,
        }
        if failing:
            event["error"] = OUTAGE_ERROR
        if stalled:
            event["error"] = "ConnectionRefusedError: [Errno 111] Connection refused"
        lines.append(event)

    for index in range(int(duration * 10)):
        t = T0 + index * 0.1
        for target in API_TARGETS:
            for conn in ("new", "reused"):
                request(t + rng.uniform(0, 0.005), "api", target, conn, 0.1, "get")
    for index in range(int(duration * 50)):
        t = T0 + index * 0.02
        for instance in INSTANCES:
            request(t + rng.uniform(0, 0.002), "dataplane", instance, "reused", 0.02, "read")
            request(t + 0.01, "dataplane", instance, "new", 0.02, "write", key=f"k{index}")
    for (host, service), (start, end) in zip(steps, step_windows, strict=True):
        common = {
            "kind": "step",
            "name": "replace-service",
            "step_id": f"s{len(lines):04d}",
            "direction": "forward",
            "host": host,
            "service": service,
            "from": "1.0",
            "to": "1.1",
        }
        lines.append({**common, "t": start, "phase": "start", "outcome": None})
        lines.append({**common, "t": end, "phase": "end", "outcome": "ok", "duration": end - start})
    lines.append(
        {
            "kind": "fault",
            "t": outage_window[0],
            "host": "controller-1",
            "service": "compute-api",
            "action": "kill",
        }
    )
    verify_at = T0 + duration + 0.05
    for instance in INSTANCES:
        for index in range(0, int(duration * 50), 25):  # read back a sample of the acknowledged writes
            lines.append(
                {
                    "t": verify_at,
                    "end": verify_at + 0.001,
                    "kind": "dataplane",
                    "target": instance,
                    "conn": "new",
                    "source": "verify",
                    "op": "verify",
                    "ok": True,
                    "key": f"k{index}",
                }
            )
    body = [lines[0], *sorted(lines[1:], key=lambda e: e["t"])]
    # Writes whose key was not sampled for read-back count as verified only if read back: keep it exact
    # by dropping the key from writes that were not verified (they stay plain data-plane requests).
    verified = {(e["target"], e["key"]) for e in body if e.get("source") == "verify"}
    for event in body:
        if event.get("op") == "write" and (event["target"], event.get("key")) not in verified:
            event.pop("key", None)
    with open(run_dir / "timeline.jsonl", "w") as handle:
        handle.writelines(json.dumps(e, separators=(",", ":")) + "\n" for e in body)
    return judge_run(run_dir, seed)


def judge_run(run_dir: Path, seed: int) -> Verdict:
    numbered = list(numbered_events(run_dir / "timeline.jsonl"))
    slo = SloConfig()
    report = evaluate(numbered, slo)
    checks = [
        *slo_checks(report, slo),
        executor_check("completed", None, None, expect_rollback=False),
        Check.passed(CHECK_RESOURCES, "4 servers, 2 images intact"),
    ]
    events = [e for _, e in numbered if e.get("kind") not in ("api", "dataplane")]
    verdict = assemble(
        run_id="synthetic-1",
        scenario="rolling-upgrade",
        seed=seed,
        checks=checks,
        events=events,
        initial_releases={h: dict(s) for h, s in INITIAL.items()},
        outages=[o.to_row() for o in report.outages],
        counts=report.counts,
        from_release="1.0",
        to_release="1.1",
        backend="process",
        cloud="minicloud",
        notes=list(report.notes),
    )
    verdict.checks.append(releases_check(verdict.releases, "1.1"))
    return verdict

"""slo.api_latency: each authenticated operation's own cost, baseline vs during and after."""
from __future__ import annotations

from typing import Any

from harness.checks.slo import API_LATENCY, evaluate
from harness.traffic.config import SloConfig, parse_slo


def api(t: float, latency_ms: float, source: str = "opsampler", op: str = "servers-detail",
        target: str = "compute") -> dict[str, Any]:
    return {"t": t, "end": t + latency_ms / 1000, "kind": "api", "target": target, "conn": "reused",
            "source": source, "op": op, "ok": True}


def step(phase: str, t: float) -> dict[str, Any]:
    return {"kind": "step", "phase": phase, "name": "replace-service", "step_id": "s015",
            "host": "controller-1", "service": "compute-api", "t": t}


def timeline(op_before: float, op_during: float, control_before: float, control_during: float,
             op_after: float | None = None) -> list[tuple[int, dict[str, Any]]]:
    """3 s of baseline, 10 s of upgrade, 2 s after; op and control every 100 ms."""
    events = [step("start", 3.0), step("end", 13.0)]
    for i in range(150):
        t = i * 0.1
        during = 3.0 <= t < 13.0
        after = t >= 13.0
        op_ms = op_during if during else (op_after if after and op_after is not None else op_before)
        events.append(api(t, op_ms))
        events.append(api(t + 0.05, control_during if during else control_before, source="sampler",
                          op="probe"))
    events.sort(key=lambda e: e["t"])
    return list(enumerate(events, start=1))


def test_an_operation_five_times_slower_fails_with_its_numbers() -> None:
    report = evaluate(timeline(6.0, 30.0, 4.0, 4.0), SloConfig())
    [violation] = [v for v in report.violations if v.slo == API_LATENCY]
    assert violation.target == "compute servers-detail"
    assert "24.0 ms slower during the upgrade" in violation.message
    assert "6.0 -> 30.0 ms" in violation.message
    assert len(violation.evidence) == 5
    assert violation.evidence[0]["op"] == "servers-detail"


def test_a_busy_machine_that_slows_the_control_as_much_passes() -> None:
    # Everything twice slower (two gates on two cores): the operation's own cost did not grow.
    report = evaluate(timeline(6.0, 30.0, 4.0, 28.0), SloConfig())
    assert not [v for v in report.violations if v.slo == API_LATENCY]
    assert {(o.operation, o.phase) for o in report.operations} == {("compute servers-detail", "during"),
                                                                    ("compute servers-detail", "after")}


def test_a_starved_machine_that_slows_everything_threefold_passes() -> None:
    # Seen in CI under load: the control 3x slower, the operation's own work 3x slower too.
    # Without scaling by the control's slowdown, +14 ms of own cost read as a regression.
    report = evaluate(timeline(10.0, 30.0, 3.0, 9.0), SloConfig())
    assert not [v for v in report.violations if v.slo == API_LATENCY]


def test_a_regression_on_a_starved_machine_still_fails() -> None:
    # Same 3x slower machine, but the operation also does 30 ms of new work.
    report = evaluate(timeline(10.0, 60.0, 3.0, 9.0), SloConfig())
    [violation] = [v for v in report.violations if v.slo == API_LATENCY]
    assert "30.0 ms slower during the upgrade" in violation.message


def test_small_wobbles_pass_and_the_floor_and_ratio_are_settings() -> None:
    assert not [v for v in evaluate(timeline(6.0, 12.0, 4.0, 4.0), SloConfig()).violations
                if v.slo == API_LATENCY]  # +6 ms: under the 8 ms floor and under 2 x 6 ms
    strict = SloConfig(api_latency_floor_ms=2.0, api_latency_ratio=1.5)
    assert [v for v in evaluate(timeline(6.0, 12.0, 4.0, 4.0), strict).violations if v.slo == API_LATENCY]


def test_a_regression_that_shows_only_after_the_upgrade_fails_on_after() -> None:
    report = evaluate(timeline(6.0, 6.0, 4.0, 4.0, op_after=40.0), SloConfig())
    [violation] = [v for v in report.violations if v.slo == API_LATENCY]
    assert "slower after the upgrade" in violation.message


def test_operations_without_enough_baseline_are_noted_not_judged() -> None:
    events = [step("start", 3.0), step("end", 13.0)]
    events += [api(1.0, 5.0, source="user", op="list_servers"),
               api(5.0, 500.0, source="user", op="list_servers")]
    report = evaluate(list(enumerate(events, start=1)), SloConfig())
    assert report.operations == []
    assert any(n.startswith("api_latency: too few baseline samples") and "list_servers (1)" in n
               for n in report.notes)


def test_slo_fields_parse() -> None:
    slo = parse_slo({"api_latency_ratio": 3, "api_latency_floor_ms": 0, "api_latency_min_samples": 5})
    assert (slo.api_latency_ratio, slo.api_latency_floor_ms, slo.api_latency_min_samples) == (3.0, 0.0, 5)


def _with_burst(events: list[tuple[int, dict[str, Any]]], start: float, end: float,
                slow_ms: float) -> list[tuple[int, dict[str, Any]]]:
    """The harness's write burst from ``start`` to ``end`` (a write every 5 ms), and the operation
    ``slow_ms`` slow while it runs (the machine busy with the harness's own load)."""
    out = []
    for _, event in events:
        slowed = event.get("source") == "opsampler" and start <= event["t"] < end
        out.append({**event, "end": event["t"] + slow_ms / 1000} if slowed else event)
    t = start
    while t < end:
        out.append({"t": t, "end": t + 0.002, "kind": "dataplane", "target": "vm-1", "conn": "new",
                    "source": "burst", "op": "write", "ok": True, "key": f"b-{t:.3f}"})
        t += 0.005
    out.sort(key=lambda e: e["t"])
    return list(enumerate(out, start=1))


def test_operations_slow_only_during_the_harness_own_bursts_pass_and_are_noted() -> None:
    # Seen: a clean security update's 2 s "after" phase, all burst on a loaded machine: 4.4 -> 13.8 ms.
    report = evaluate(_with_burst(timeline(5.0, 5.0, 3.0, 3.0), 12.0, 15.0, 40.0), SloConfig())
    assert not [v for v in report.violations if v.slo == API_LATENCY]
    assert any(n.startswith("api_latency:") and "left out" in n and "1 burst(s)" in n for n in report.notes)


def test_a_regression_outside_the_bursts_still_fails() -> None:
    report = evaluate(_with_burst(timeline(6.0, 40.0, 4.0, 4.0), 10.0, 13.0, 40.0), SloConfig())
    [violation] = [v for v in report.violations if v.slo == API_LATENCY]
    assert "34.0 ms slower during the upgrade" in violation.message


def test_burst_writes_close_together_are_one_window() -> None:
    from harness.checks.latency import BURST_GAP_S, burst_windows
    from harness.checks.samples import samples_of

    events = _with_burst([], 1.0, 2.0, 0.0) + _with_burst([], 2.0 + BURST_GAP_S * 2, 3.0, 0.0)
    windows = burst_windows(samples_of([(n, e) for n, (_, e) in enumerate(events, start=1)]))
    assert [(round(a, 2), round(b, 2)) for a, b in windows] == [(1.0, 2.0), (2.5, 3.0)]


def test_a_short_phase_that_wanders_within_the_baselines_spread_passes() -> None:
    """The baseline spreads (half 3 ms, half 20 ms: p75 20); a 2 s after phase whose median sits at
    24 ms is 21 ms above the baseline's median but 4 ms above its upper quartile: seen on a loaded
    machine, not a regression. 45 ms there is (25 ms above even the upper quartile)."""
    events = [step("start", 3.0), step("end", 13.0)]
    for i in range(150):
        t = i * 0.1
        op_ms = (3.0 if i % 2 else 20.0) if t < 3.0 else (5.0 if t < 13.0 else 24.0)
        events.append(api(t, op_ms))
    events.sort(key=lambda e: e["t"])
    report = evaluate(list(enumerate(events, start=1)), SloConfig())
    assert not [v for v in report.violations if v.slo == API_LATENCY]
    (after,) = [o for o in report.operations if o.phase == "after"]
    assert (round(after.baseline_ms), round(after.baseline_p75_ms), round(after.median_ms)) == (3, 20, 24)
    worse = [(n, {**e, "end": e["t"] + 0.045} if e.get("source") == "opsampler" and e["t"] >= 13.0 else e)
             for n, e in enumerate(events, start=1)]
    assert [v for v in evaluate(worse, SloConfig()).violations if v.slo == API_LATENCY]

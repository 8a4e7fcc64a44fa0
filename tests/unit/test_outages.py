"""Outage intervals and data-plane gaps on hand-built sample streams."""
from __future__ import annotations

from harness.checks.outages import compute_outages, data_plane_gaps
from harness.checks.samples import Sample


def probe(t: float, ok: bool, error: str | None = None, latency: float = 0.002, *, target: str = "compute",
          conn: str = "new", kind: str = "api", source: str = "sampler", line: int = 0) -> Sample:
    return Sample(line=line, t=t, end=t + latency, kind=kind, target=target, conn=conn, ok=ok,
                  error=None if ok else (error or "boom"), source=source, op="probe")


def test_outage_starts_at_first_failure_and_ends_at_recovering_success_end() -> None:
    stream = [probe(0.0, True), probe(0.1, False, "refused"), probe(0.2, False, "refused"),
              probe(0.3, True, latency=0.05), probe(0.4, True)]
    [outage] = compute_outages(stream)
    assert outage.target == "compute/new"
    assert outage.start == 0.1
    assert outage.end == 0.35
    assert outage.requests == 2
    assert outage.error == "refused"
    row = outage.to_row()
    assert set(row) >= {"target", "kind", "start", "end", "duration_s", "error", "requests"}
    assert abs(row["duration_s"] - 0.25) < 1e-9


def test_outage_splits_when_the_error_text_changes() -> None:
    stream = [probe(0.0, False, "timed out", latency=1.0), probe(1.0, False, "refused"),
              probe(1.1, False, "refused"), probe(1.2, True)]
    first, second = compute_outages(stream)
    assert (first.error, first.start, first.end, first.requests) == ("timed out", 0.0, 1.0, 1)
    assert (second.error, second.start, second.requests) == ("refused", 1.0, 2)
    assert abs(second.end - 1.202) < 1e-9


def test_stall_outage_ends_when_the_stalled_request_is_answered() -> None:
    # SIGSTOP from 0.05 to 2.05: a 1 s timeout, then a request answered at resume.
    stream = [probe(0.0, True), probe(0.1, False, "timed out", latency=1.0),
              probe(1.1, True, latency=0.95), probe(2.1, True)]
    [outage] = compute_outages(stream)
    assert abs(outage.duration_s - 1.95) < 1e-9


def test_unrecovered_outage_ends_at_its_last_failure_and_streams_are_separate() -> None:
    stream = [probe(0.0, False, "refused", conn="new"), probe(0.0, True, conn="reused"),
              probe(0.1, False, "refused", conn="new", latency=0.01),
              probe(0.1, False, "reset", conn="reused"), probe(0.2, True, conn="reused")]
    outages = {o.target: o for o in compute_outages(stream)}
    assert set(outages) == {"compute/new", "compute/reused"}
    assert abs(outages["compute/new"].end - 0.11) < 1e-9
    assert outages["compute/reused"].error == "reset"


def test_user_requests_never_make_outages() -> None:
    assert compute_outages([probe(0.0, False, source="user")]) == []


def dp(t: float, ok: bool, target: str = "vm-1", latency: float = 0.001, conn: str = "new") -> Sample:
    return probe(t, ok, "refused", latency, target=target, conn=conn, kind="dataplane")


def test_gap_is_the_longest_time_without_a_successful_answer_per_instance() -> None:
    samples = [dp(i * 0.02, True) for i in range(10)]
    # vm-1 stalls: the request started at 0.2 is answered at 0.5.
    samples += [dp(0.2, True, latency=0.3), dp(0.52, True)]
    samples += [dp(i * 0.02, True, target="vm-2") for i in range(30)]
    gaps = data_plane_gaps(samples)
    longest = gaps["vm-1/new"][0]
    assert abs(longest.duration_s - (0.5 - 0.181)) < 1e-9
    assert longest.error.startswith("stalled")
    assert gaps["vm-2/new"][0].duration_s < 0.1
    assert len(gaps["vm-2/new"]) == 1  # only its longest, nothing reportable


def test_gap_cites_failed_requests_and_unrecovered_tail() -> None:
    samples = [dp(0.0, True), dp(0.02, False), dp(0.04, False), dp(0.06, True), dp(0.3, False)]
    gaps = data_plane_gaps(samples, report_ms=100)
    [longest, *_] = gaps["vm-1/new"]
    assert not longest.recovered
    assert abs(longest.duration_s - (0.301 - 0.061)) < 1e-9
    assert longest.error == "refused"
    assert [e["t"] for e in longest.evidence()] == [0.3]

"""Property test of outage interval computation over random sequential sample streams.

For any stream: the intervals cover exactly the failing samples (each failing
sample's start lies in exactly one interval carrying its error; no successful
request lies wholly inside an interval), intervals of one target never overlap,
and they split where the error text changes.
"""
from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.checks.dataplane import dataplane_failures
from harness.checks.outages import DataPlaneGap, compute_outages, data_plane_gaps
from harness.checks.samples import Sample, channel_key

ERRORS = (None, None, "refused", "timed out", "HTTP 503 Service Unavailable")

step = st.tuples(
    st.floats(min_value=0.0, max_value=0.2),  # pause before the request
    st.floats(min_value=0.0, max_value=1.0),  # its latency
    st.sampled_from(ERRORS),  # None = success
)
streams = st.dictionaries(st.sampled_from(["compute/new", "compute/reused", "vm-1/new"]),
                          st.lists(step, max_size=40), max_size=3)


def build(spec: dict[str, list[tuple[float, float, str | None]]]) -> list[Sample]:
    samples = []
    for stream, steps in spec.items():
        target, conn = stream.split("/")
        clock = 0.0
        for pause, latency, error in steps:
            start = clock + pause
            samples.append(Sample(line=len(samples) + 1, t=start, end=start + latency,
                                  kind="dataplane" if target.startswith("vm") else "api",
                                  target=target, conn=conn, ok=error is None, error=error,
                                  source="sampler", op="probe"))
            clock = start + latency  # a sampler waits for its answer before the next request
    return samples


def runs_of_failures(stream: list[Sample]) -> int:
    runs, previous = 0, None
    for sample in stream:
        if not sample.ok and (previous is None or previous.ok or previous.error != sample.error):
            runs += 1
        previous = sample
    return runs


@settings(max_examples=300, deadline=None)
@given(streams)
def test_intervals_cover_exactly_the_failing_samples(spec: dict[str, list[tuple[float, float, str | None]]],
                                                     ) -> None:
    samples = build(spec)
    outages = compute_outages(samples)
    for stream_name in spec:
        stream = [s for s in samples if s.stream == stream_name]
        mine = sorted((o for o in outages if o.target == stream_name), key=lambda o: o.start)
        # Never overlap per target, never negative.
        for outage in mine:
            assert outage.start <= outage.end
        for earlier, later in itertools.pairwise(mine):
            assert earlier.end <= later.start
        # Every failing sample is counted in exactly one interval, with its own error,
        # and its start lies inside that interval.
        failing = [s for s in stream if not s.ok]
        counted = [s for o in mine for s in o.failed]
        assert sorted(s.line for s in counted) == sorted(s.line for s in failing)
        for outage in mine:
            assert outage.start == outage.failed[0].t
            for sample in outage.failed:
                assert sample.error == outage.error
                assert outage.start <= sample.t <= outage.end
        # No successful request lies wholly inside an interval.
        for sample in stream:
            if sample.ok:
                assert not any(o.start < sample.t and sample.end < o.end for o in mine)
        # Split on error change: one interval per maximal run of one error.
        assert len(mine) == runs_of_failures(stream)


# -- per-connection data-plane gaps and failures ------------------------------------------------

channel_streams = st.dictionaries(
    st.sampled_from(["vm-1/new", "vm-1/reused", "vm-1/writer", "vm-2/new", "vm-2/reused"]),
    st.lists(step, min_size=1, max_size=30), min_size=1, max_size=5)


def build_channels(spec: dict[str, list[tuple[float, float, str | None]]]) -> list[Sample]:
    samples = []
    for stream, steps in spec.items():
        target, channel = stream.split("/")
        source, conn = ("user", "reused") if channel == "writer" else ("sampler", channel)
        clock = 0.0
        for pause, latency, error in steps:
            start = clock + pause
            samples.append(Sample(line=len(samples) + 1, t=start, end=start + latency, kind="dataplane",
                                  target=target, conn=conn, ok=error is None, error=error, source=source,
                                  op="probe"))
            clock = start + latency
    return samples


def longest(gaps: dict[str, list[DataPlaneGap]], key: str) -> float:
    return gaps[key][0].duration_s if gaps.get(key) else 0.0


@settings(max_examples=300, deadline=None)
@given(channel_streams)
def test_a_working_channel_never_hides_another_channels_gap(
        spec: dict[str, list[tuple[float, float, str | None]]]) -> None:
    samples = build_channels(spec)
    gaps = data_plane_gaps(samples, report_ms=0)
    assert set(gaps) == set(spec)  # one entry per instance and connection type, never merged
    for key in spec:
        target = key.split("/")[0]
        mine = [s for s in samples if channel_key(s) == key]
        # The longest gap is the longest time between two of this channel's successes (or its edges).
        marks = [min(s.t for s in mine), *sorted(s.end for s in mine if s.ok)]
        inner = max((b - a for a, b in itertools.pairwise(marks)), default=0.0)
        assert longest(gaps, key) >= inner - 1e-9
        # Merging every channel of the instance can only shorten gaps: every silence of the merged
        # stream, within this channel's own window, is inside one of this channel's gaps. Judging
        # per channel sees everything merging saw, and more.
        merged = [Sample(s.line, s.t, s.end, s.kind, s.target, "new", s.ok, s.error, "sampler", s.op)
                  for s in samples if s.target == target]
        window = (min(s.t for s in mine), max(s.end for s in mine))
        for gap in data_plane_gaps(merged, 0).get(f"{target}/new", []):
            clipped = min(gap.end, window[1]) - max(gap.start, window[0])
            assert longest(gaps, key) >= clipped - 1e-9


@settings(max_examples=300, deadline=None)
@given(channel_streams)
def test_every_failed_dataplane_request_is_counted_once_on_its_channel(
        spec: dict[str, list[tuple[float, float, str | None]]]) -> None:
    samples = build_channels(spec)
    groups = dataplane_failures(samples, compute_outages(samples))
    counted = [s for g in groups for s in g.failed]
    assert sorted(s.line for s in counted) == sorted(s.line for s in samples if not s.ok)
    for group in groups:
        assert all(channel_key(s) == group.key for s in group.failed)
        assert all(o.target == group.key for o in group.outages)

"""The final read-back: every acknowledged write must still be readable after traffic.

Runs in the harness process after Locust stopped. It reads the acknowledged
writes from the timeline (not from Locust's memory, which died with it), GETs
each key from its instance on one reused connection, and records each answer
as a ``source: verify`` event, so the lost-write check can cite both the
acknowledgement and the failed read-back.

It fails fast: once ``GIVE_UP_AFTER`` requests in a row to one instance got
no answer at all (timed out, refused), the instance is unreachable and its other
keys are not asked one by one (766 keys at 2 s each took 29 minutes); one
``verify_abandoned`` event says how many were left, and the lost-write check
counts them lost (never read back). The instances are read back side by side,
so an unreachable one costs its few timeouts once, not once per instance.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.checks.lost_writes import WRITE
from harness.checks.samples import DATAPLANE, VERIFY, numbered_events, to_sample
from harness.timeline import Timeline
from harness.traffic.plan import InstanceTarget
from harness.traffic.probe import REUSED, HttpProbe, RequestRecorder

RETRIES = 3  # a refused connection is retried; an answer (even 404) is final
GIVE_UP_AFTER = 3  # requests in a row without any answer: the instance is unreachable, stop asking
WORKERS = 8  # instances read back at once


def acknowledged_keys(timeline_path: str | Path, since: float) -> dict[str, list[str]]:
    """instance name -> keys whose write was acknowledged at or after ``since``."""
    keys: dict[str, list[str]] = defaultdict(list)
    for line, event in numbered_events(timeline_path):
        sample = to_sample(line, event)
        if (sample is not None and sample.kind == DATAPLANE and sample.op == WRITE and sample.ok
                and sample.source != VERIFY and sample.key is not None and sample.t >= since):
            keys[sample.target].append(sample.key)
    return keys


def verify_writes(timeline_path: str | Path, timeline: Timeline, instances: Iterable[InstanceTarget],
                  since: float, timeout_s: float = 2.0, deadline_s: float = 120.0) -> int:
    """Read back every acknowledged key; returns how many were not readable."""
    recorder = RequestRecorder(timeline)
    by_name = {instance.name: instance for instance in instances}
    deadline = time.monotonic() + deadline_s
    acknowledged = acknowledged_keys(timeline_path, since)
    work = [(by_name[target], keys) for target, keys in sorted(acknowledged.items()) if target in by_name]
    if not work:
        return 0

    def one(item: tuple[InstanceTarget, list[str]]) -> int:
        return _verify_instance(item[0], item[1], timeline, recorder, timeout_s, deadline)

    with ThreadPoolExecutor(min(WORKERS, len(work)), thread_name_prefix="verify") as pool:
        return sum(pool.map(one, work))


def _verify_instance(instance: InstanceTarget, keys: list[str], timeline: Timeline, recorder: RequestRecorder,
                     timeout_s: float, deadline: float) -> int:
    """Read back one instance's keys on one reused connection; returns how many were not readable."""
    target = instance.name
    probe = HttpProbe(instance.host, instance.port, REUSED, timeout_s)
    unanswered, last_error, missing = 0, "", 0
    try:
        for index, key in enumerate(keys):
            if unanswered >= GIVE_UP_AFTER:
                missing += len(keys) - index
                timeline.emit({"kind": "verify_abandoned", "t": time.monotonic(), "target": target,
                               "keys_left": len(keys) - index, "first_key": key,
                               "reason": f"{unanswered} requests in a row got no answer ({last_error})"})
                break
            expected = key.rsplit("-", 1)[-1].lstrip("0").encode()
            for attempt in range(RETRIES):
                result = probe.request("GET", f"/kv/{key}")
                unanswered = unanswered + 1 if result.status is None else 0
                last_error = result.error or ""
                if (result.status is not None or attempt == RETRIES - 1 or unanswered >= GIVE_UP_AFTER
                        or time.monotonic() > deadline):
                    break
                time.sleep(0.1 * (attempt + 1))
            mismatch = result.ok and result.body.strip() != expected
            ok = result.ok and not mismatch
            missing += 0 if ok else 1
            recorder.record(result, kind=DATAPLANE, target=target, conn=REUSED, source=VERIFY,
                            op="verify", key=key, ok=ok,
                            error=f"read back {result.body[:40]!r}, wrote {expected!r}"
                            if mismatch else None)
    finally:
        probe.close()
    return missing

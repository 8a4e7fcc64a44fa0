"""Write bursts across each live migration (probe ``migration-burst``).

The writer users write 10 times a second; a switch-over that loses a few
milliseconds of writes is seen by chance (about 1 run in 7). Around every
``live_migrate(instance, source, timeout)`` this probe writes to that
instance as fast as it answers (every ``INTERVAL_S``), on a new connection
each time and on one reused connection, for the whole migration. Each write
is a timeline event like the writer's (``kind: dataplane, op: write``,
``source: burst``), so the final read-back reads every acknowledged one back
and ``slo.lost_writes`` judges them, and ``slo.dataplane_failed`` judges the
failed ones on their own channels (``burst-new``, ``burst-reused``).

It also records where the instance lived (a ``placement`` event: the
migration's source host), which lets evidence name the steps on that host.
Any cloud whose instances have a data plane the harness can reach: the
probe needs only the instance's floating address (no minicloud feature).
"""
from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

from harness.checks.attribution import PLACEMENT
from harness.gate.probes import PROBE_FACTORIES, ProbeContext, StepProbe
from harness.timeline import Timeline
from harness.traffic.plan import InstanceTarget
from harness.traffic.probe import NEW, REUSED, HttpProbe, RequestRecorder
from harness.verdict import Check, Evidence

BURST = "burst"
INTERVAL_S = 0.002  # between two writes of one connection kind: ~hundreds of writes per migration
TIMEOUT_S = 1.0
CHECK_ID = "migration.write_burst"


class MigrationBurstProbe(StepProbe):
    name = "migration-burst"

    def __init__(self, timeline: Timeline, instances: list[InstanceTarget]) -> None:
        self.timeline = timeline
        self.recorder = RequestRecorder(timeline)
        self.by_id = {instance.server_id: instance for instance in instances}
        self.numbers = itertools.count(1)
        self.migrations = 0
        self.writes = 0
        self.failed: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def around(self, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> contextlib.AbstractContextManager[None]:
        if operation != "live_migrate":
            return contextlib.nullcontext()
        instance_id = args[0] if args else kwargs.get("instance")
        source = args[1] if len(args) > 1 else kwargs.get("source")
        instance = self.by_id.get(str(instance_id))
        if instance is None:  # a traffic server: nobody watches its data plane
            return contextlib.nullcontext()
        return self._burst(instance, str(source))

    @contextlib.contextmanager
    def _burst(self, instance: InstanceTarget, source: str) -> Iterator[None]:
        self.timeline.emit({"kind": PLACEMENT, "t": time.monotonic(), "target": instance.name,
                            "server_id": instance.server_id, "host": source})
        number = next(self.numbers)
        self.migrations += 1
        stop = threading.Event()
        writers = [threading.Thread(target=self._write_until,
                                    args=(instance, conn, f"rgburst{number}{conn[0]}", stop),
                                    name=f"burst-{instance.name}-{conn}", daemon=True)
                   for conn in (NEW, REUSED)]
        for writer in writers:
            writer.start()
        try:
            yield
        finally:
            stop.set()
            for writer in writers:
                writer.join(TIMEOUT_S + 1)

    def _write_until(self, instance: InstanceTarget, conn: str, prefix: str, stop: threading.Event) -> None:
        probe = HttpProbe(instance.host, instance.port, conn, TIMEOUT_S)
        try:
            for sequence in itertools.count(1):
                if stop.is_set():
                    return
                key = f"{prefix}-{sequence:09d}"
                result = probe.request("PUT", f"/kv/{key}", body=str(sequence).encode())
                self.recorder.record(result, kind="dataplane", target=instance.name, conn=conn, source=BURST,
                                     op="write", key=key)
                with self.lock:
                    self.writes += 1
                    if not result.ok:
                        self.failed.append({"t": round(result.start, 6), "target": instance.name,
                                            "conn": conn, "key": key, "error": result.error})
                stop.wait(INTERVAL_S)
        finally:
            probe.close()

    def checks(self) -> list[Check]:
        if not self.migrations:
            return []
        if self.failed:
            first = self.failed[0]
            return [Check.failed(CHECK_ID, f"{len(self.failed)} of {self.writes} writes failed during "
                                 f"{self.migrations} live migrations "
                                 f"(first on {first['target']}/{first['conn']}: "
                                 f"{first['error']})",
                                 [Evidence(f"write {f['key']} on {f['target']}/{f['conn']} failed", None,
                                           f["target"], f["error"], (f,)) for f in self.failed[:5]])]
        return [Check.passed(CHECK_ID, f"{self.writes} writes during {self.migrations} live migrations all "
                             "acknowledged (their read-back is judged by slo.lost_writes)")]


def _factory(context: ProbeContext) -> StepProbe | None:
    if not context.instances:
        return None
    return MigrationBurstProbe(context.timeline, context.instances)


PROBE_FACTORIES.append(_factory)

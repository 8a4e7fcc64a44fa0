"""Write bursts across each live migration (probe ``migration-burst``).

The writer users write 10 times a second; a switch-over that loses a few
milliseconds of writes is seen by chance (about 1 run in 7). Around every
``live_migrate(instance, source, timeout)`` this probe writes to that
instance as fast as it answers (every ``INTERVAL_S``), from two writers on a
new connection each time and one on a reused connection, for the whole migration. Each write
is a timeline event like the writer's (``kind: dataplane, op: write``,
``source: burst``), so the final read-back reads every acknowledged one back
and ``slo.lost_writes`` judges them, and ``slo.dataplane_failed`` judges the
failed ones on their own channels (``burst-new``, ``burst-reused``).

The same writes (new connections only) start when a service of a host in the
data path's control (a ``network`` role host: the agent that programs the
floating ports) is replaced, and run on to the end of the upgrade: a network
agent that re-programs forwarders at start or at every periodic resync
refuses new connections for a few milliseconds at a time, which 20 ms
samplers see by chance; writes every few milliseconds see it every time.

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
from harness.checks.samples import BURST, VERIFY
from harness.gate.probes import PROBE_FACTORIES, ProbeContext, StepProbe
from harness.timeline import Timeline
from harness.traffic.plan import InstanceTarget
from harness.traffic.probe import NEW, REUSED, HttpProbe, RequestRecorder
from harness.verdict import Check, Evidence

INTERVAL_S = 0.001  # between two writes of one connection kind: ~hundreds of writes per migration
#: Connection kinds of the writers around one migration: a switch-over that refuses new
#: connections for a few milliseconds is what they must not miss, hence two on new connections.
WRITERS = (NEW, NEW, REUSED)
TAIL_INTERVAL_S = 0.003  # after a network host's swap, to the end: ~300 writes/s per instance
TIMEOUT_S = 1.0
CHECK_ID = "migration.write_burst"


class MigrationBurstProbe(StepProbe):
    name = "migration-burst"

    def __init__(self, timeline: Timeline, instances: list[InstanceTarget],
                 watched_hosts: frozenset[str] = frozenset()) -> None:
        self.timeline = timeline
        self.watched_hosts = watched_hosts  # replacing a service there starts a burst to the end
        self.tails: list[tuple[InstanceTarget, int, threading.Event, threading.Thread]] = []  # to close()
        self.recorder = RequestRecorder(timeline)
        self.by_id = {instance.server_id: instance for instance in instances}
        self.numbers = itertools.count(1)
        self.migrations = 0
        self.writes = 0
        self.failed: list[dict[str, Any]] = []
        self.lost: list[dict[str, Any]] = []
        self.acknowledged: dict[int, list[str]] = {}
        self.lock = threading.Lock()

    def around(self, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> contextlib.AbstractContextManager[None]:
        if operation == "replace_service":
            host = args[0] if args else kwargs.get("host")
            if host in self.watched_hosts and not self.tails:
                self._start_tails()
            return contextlib.nullcontext()
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
        self.acknowledged[number] = []
        writers = [threading.Thread(target=self._write_until,
                                    args=(instance, conn, number, f"{conn[0]}{index}", stop),
                                    name=f"burst-{instance.name}-{conn}{index}", daemon=True)
                   for index, conn in enumerate(WRITERS)]
        for writer in writers:
            writer.start()
        try:
            yield
        finally:
            stop.set()
            for writer in writers:
                writer.join(TIMEOUT_S + 1)
            self._read_back(instance, source, self.acknowledged.pop(number, []))

    def _start_tails(self) -> None:
        """Write to every instance on new connections from now to ``close()``."""
        for instance in self.by_id.values():
            number = next(self.numbers)
            stop = threading.Event()
            writer = threading.Thread(target=self._probe_until, args=(instance, stop),
                                      name=f"burst-{instance.name}-tail", daemon=True)
            writer.start()
            self.tails.append((instance, number, stop, writer))

    def close(self) -> None:
        tails, self.tails = self.tails, []
        for _, _, stop, _ in tails:
            stop.set()
        for _, _, _, writer in tails:
            writer.join(TIMEOUT_S + 1)

    def _read_back(self, instance: InstanceTarget, source: str, keys: list[str]) -> None:
        """Read every acknowledged burst write back at once: a loss at switch-over is named with
        its migration (the final read-back reads them again; any success proves a key)."""
        probe = HttpProbe(instance.host, instance.port, REUSED, TIMEOUT_S)
        unanswered = 0
        try:
            for key in keys:
                if unanswered >= 3:  # the instance does not answer: the final read-back judges the rest
                    break
                expected = key.rsplit("-", 1)[-1].lstrip("0").encode()
                result = probe.request("GET", f"/kv/{key}")
                unanswered = unanswered + 1 if result.status is None else 0
                ok = result.ok and result.body.strip() == expected
                error = None if ok or not result.ok else f"read back {result.body[:40]!r}, wrote {expected!r}"
                self.recorder.record(result, kind="dataplane", target=instance.name, conn=REUSED,
                                     source=VERIFY, op="verify", key=key, ok=ok, error=error)
                if not ok:
                    with self.lock:
                        self.lost.append({"t": round(result.start, 6), "target": instance.name, "key": key,
                                          "source_host": source, "error": error or result.error})
        finally:
            probe.close()

    def _probe_until(self, instance: InstanceTarget, stop: threading.Event) -> None:
        """``GET /health`` on a new connection every ``TAIL_INTERVAL_S`` (judged by the SLOs)."""
        probe = HttpProbe(instance.host, instance.port, NEW, TIMEOUT_S)
        while not stop.is_set():
            result = probe.request("GET", "/health")
            self.recorder.record(result, kind="dataplane", target=instance.name, conn=NEW, source=BURST,
                                 op="probe")
            stop.wait(TAIL_INTERVAL_S)

    def _write_until(self, instance: InstanceTarget, conn: str, number: int, writer: str,
                     stop: threading.Event) -> None:
        prefix = f"rgburst{number}{writer}"
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
                    if result.ok:
                        self.acknowledged.get(number, []).append(key)
                    else:
                        self.failed.append({"t": round(result.start, 6), "target": instance.name,
                                            "conn": conn, "key": key, "error": result.error})
                stop.wait(INTERVAL_S)
        finally:
            probe.close()

    def checks(self) -> list[Check]:
        if not self.migrations:
            return []
        problems = [*self.failed, *self.lost]
        if problems:
            first = problems[0]
            return [Check.failed(
                CHECK_ID, f"{len(self.failed)} of {self.writes} writes failed and {len(self.lost)} "
                f"acknowledged ones were not read back right after {self.migrations} live migrations "
                f"(first on {first['target']}: {first['error']})",
                [Evidence(f"{'lost' if f in self.lost else 'failed'} write {f['key']} on {f['target']}",
                          None, f["target"], f["error"], (f,)) for f in problems[:5]])]
        return [Check.passed(CHECK_ID, f"{self.writes} writes during {self.migrations} live migrations, "
                             "every one acknowledged and read back")]


def _factory(context: ProbeContext) -> StepProbe | None:
    if not context.instances:
        return None
    network_hosts = frozenset(h.name for h in context.scenario.topology.hosts if "network" in h.roles)
    return MigrationBurstProbe(context.timeline, context.instances, network_hosts)


PROBE_FACTORIES.append(_factory)

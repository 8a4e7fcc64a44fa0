"""The Locust process: samplers, data-plane writers and openstacksdk users from one plan.

Runs only inside ``locust -f`` started by ``harness.traffic.runner`` (gevent
monkey-patches this process, never the harness). The plan comes from
``$ROLLGATE_TRAFFIC_PLAN``; user counts are fixed per class from it, and each
user takes one assignment (an endpoint and a connection kind, an instance) in
``on_start``. Every request is appended to the run's timeline as it completes
and fed to Locust's stats, so the CSV files agree with the timeline.
"""
from __future__ import annotations

import os
import random
import time
from typing import Any

import gevent
from locust import User, constant_pacing, events, task

from harness.timeline import Timeline
from harness.traffic.api_ops import OP_SAMPLER, operation_targets
from harness.traffic.plan import PLAN_ENV, TrafficPlan
from harness.traffic.probe import REUSED, HttpProbe, ProbeResult, RequestRecorder

PLAN = TrafficPlan.read(os.environ[PLAN_ENV])
CONFIG = PLAN.config
COUNTS = PLAN.user_counts()
TIMELINE = Timeline(PLAN.timeline)


def _locust_stats(request_type: str, name: str, result: ProbeResult) -> None:
    events.request.fire(  # type: ignore[no-untyped-call]
        request_type=request_type, name=name, response_time=(result.end - result.start) * 1000,
        response_length=len(result.body), exception=None if result.ok else RuntimeError(result.error),
        context={},
    )


RECORDER = RequestRecorder(TIMELINE, _locust_stats)

# openstacksdk's import, config loading and first authentication are CPU-bound
# for most of a second: done here, before any user spawns, they cannot freeze
# the samplers' greenlets mid-traffic.
SDK_CONNECTIONS: list[Any] = []
if COUNTS["OpenStackApiUser"]:
    from harness.traffic.api_tasks import ApiOperations
    from harness.traffic.discovery import connect

    for _ in range(COUNTS["OpenStackApiUser"]):
        SDK_CONNECTIONS.append(connect(str(PLAN.clouds_yaml), PLAN.cloud, CONFIG.api.request_timeout_s))
    for _connection in SDK_CONNECTIONS:
        list(_connection.compute.flavors())  # authenticate and discover endpoints now
        list(_connection.image.images())

# One assignment per user, handed out in on_start (users of a class are identical otherwise).
API_ASSIGNMENTS = [(target, conn) for target in PLAN.api_targets for conn in CONFIG.samplers.connections]
INSTANCE_ASSIGNMENTS = [(instance, conn) for instance in PLAN.instances
                        for conn in CONFIG.samplers.connections]
WRITER_ASSIGNMENTS = list(PLAN.instances)


class ApiSamplerUser(User):
    """GET one endpoint every ``api_interval_ms`` on one connection kind."""

    abstract = COUNTS["ApiSamplerUser"] == 0
    fixed_count = COUNTS["ApiSamplerUser"]
    wait_time = constant_pacing(CONFIG.samplers.api_interval_ms / 1000)

    def on_start(self) -> None:
        self.target, self.conn = API_ASSIGNMENTS.pop()
        self.probe = HttpProbe(self.target.host, self.target.port, self.conn,
                               CONFIG.samplers.api_timeout_ms / 1000)
        self.headers = {"X-Auth-Token": PLAN.token} if PLAN.token else {}

    @task
    def sample(self) -> None:
        result = self.probe.request("GET", self.target.path, headers=self.headers)
        RECORDER.record(result, kind="api", target=self.target.name, conn=self.conn, source="sampler",
                        op="probe")

    def on_stop(self) -> None:
        self.probe.close()


OP_ASSIGNMENTS = operation_targets(PLAN.api_targets, PLAN.token)


class ApiOpSamplerUser(User):
    """GET one authenticated operation every ``api_op_interval_ms`` on a reused connection."""

    abstract = COUNTS["ApiOpSamplerUser"] == 0
    fixed_count = COUNTS["ApiOpSamplerUser"]
    wait_time = constant_pacing(max(CONFIG.samplers.api_op_interval_ms, 1.0) / 1000)

    def on_start(self) -> None:
        self.operation = OP_ASSIGNMENTS.pop()
        target = self.operation.target
        self.probe = HttpProbe(target.host, target.port, REUSED, CONFIG.api.request_timeout_s)
        self.headers = {"X-Auth-Token": PLAN.token or "", "Accept": "application/json"}

    @task
    def sample(self) -> None:
        result = self.probe.request("GET", self.operation.path, headers=self.headers)
        RECORDER.record(result, kind="api", target=self.operation.target.name, conn=REUSED,
                        source=OP_SAMPLER, op=self.operation.op)

    def on_stop(self) -> None:
        self.probe.close()


class DataPlaneSamplerUser(User):
    """GET /health of one instance every ``dataplane_interval_ms`` on one connection kind."""

    abstract = COUNTS["DataPlaneSamplerUser"] == 0
    fixed_count = COUNTS["DataPlaneSamplerUser"]
    wait_time = constant_pacing(CONFIG.samplers.dataplane_interval_ms / 1000)

    def on_start(self) -> None:
        self.instance, self.conn = INSTANCE_ASSIGNMENTS.pop()
        self.probe = HttpProbe(self.instance.host, self.instance.port, self.conn,
                               CONFIG.samplers.dataplane_timeout_ms / 1000)

    @task
    def sample(self) -> None:
        result = self.probe.request("GET", "/health")
        RECORDER.record(result, kind="dataplane", target=self.instance.name, conn=self.conn,
                        source="sampler", op="probe")

    def on_stop(self) -> None:
        self.probe.close()


class DataPlaneWriterUser(User):
    """Per instance: PUT the next number of a monotonically increasing sequence, read it back."""

    abstract = COUNTS["DataPlaneWriterUser"] == 0
    fixed_count = COUNTS["DataPlaneWriterUser"]
    wait_time = constant_pacing(CONFIG.dataplane.write_interval_ms / 1000)

    def on_start(self) -> None:
        self.instance = WRITER_ASSIGNMENTS.pop()
        self.probe = HttpProbe(self.instance.host, self.instance.port, REUSED,
                               CONFIG.dataplane.timeout_ms / 1000)
        self.sequence = 0

    @task
    def write_and_read(self) -> None:
        self.sequence += 1
        key = f"{PLAN.key_prefix}-{self.sequence:09d}"
        value = str(self.sequence).encode()
        written = self.probe.request("PUT", f"/kv/{key}", body=value)
        RECORDER.record(written, kind="dataplane", target=self.instance.name, conn=REUSED, source="user",
                        op="write", key=key)
        if not written.ok:
            return
        read = self.probe.request("GET", f"/kv/{key}")
        mismatch = read.ok and read.body.strip() != value
        RECORDER.record(read, kind="dataplane", target=self.instance.name, conn=REUSED, source="user",
                        op="read", key=key, ok=read.ok and not mismatch,
                        error=f"read back {read.body[:40]!r}, wrote {value!r}" if mismatch else None)

    def on_stop(self) -> None:
        self.probe.close()


class OpenStackApiUser(User):
    """The real client: openstacksdk with a weighted mix of reads and create/ACTIVE/delete."""

    abstract = COUNTS["OpenStackApiUser"] == 0
    fixed_count = COUNTS["OpenStackApiUser"]
    wait_time = constant_pacing(CONFIG.api.wait_s)

    def on_start(self) -> None:
        self.ops = ApiOperations(SDK_CONNECTIONS.pop(), CONFIG.api,
                                 [i.server_id for i in PLAN.instances], RECORDER, random.Random())
        table = self.ops.operations()
        self.names = list(CONFIG.api.mix)
        self.weights = [CONFIG.api.mix[name] for name in self.names]
        self.table = table

    @task
    def operate(self) -> None:
        name = self.ops.rng.choices(self.names, self.weights)[0]
        self.table[name]()

    def on_stop(self) -> None:
        self.ops.cleanup()


def _watch_parent() -> None:
    """Stop if the harness died (kill -9): Locust must never outlive it."""
    while True:
        if PLAN.parent_pid and os.getppid() != PLAN.parent_pid:
            TIMELINE.emit({"kind": "traffic", "phase": "orphaned", "pid": os.getpid()})
            os._exit(3)
        gevent.sleep(0.2)


STALL_TICK_S = 0.01
STALL_REPORT_S = 0.05


def _watch_loop() -> None:
    """Record when this process itself froze (CPU-bound work, an overloaded machine).

    A frozen event loop delays every sampler at once; the checks cite these
    ``harness_stall`` events next to gaps so a reader can tell the measuring
    process's stall from the cloud's.
    """
    while True:
        expected = time.monotonic() + STALL_TICK_S
        gevent.sleep(STALL_TICK_S)
        woke = time.monotonic()
        if woke - expected > STALL_REPORT_S:
            TIMELINE.emit({"kind": "harness_stall", "t": expected, "end": woke,
                           "lag_ms": round((woke - expected) * 1000, 1)})


@events.init.add_listener  # type: ignore[untyped-decorator]
def _on_init(environment: Any, **_: Any) -> None:
    gevent.spawn(_watch_parent)
    gevent.spawn(_watch_loop)


@events.spawning_complete.add_listener  # type: ignore[untyped-decorator]
def _on_spawned(user_count: int, **_: Any) -> None:
    TIMELINE.emit({"kind": "traffic", "phase": "start", "users": user_count, "pid": os.getpid()})
    ready = os.path.join(PLAN.locust_dir, "ready")
    with open(ready, "w") as handle:
        handle.write(f"{time.monotonic()}\n")


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _on_quitting(environment: Any, **_: Any) -> None:
    TIMELINE.emit({"kind": "traffic", "phase": "stop", "pid": os.getpid()})

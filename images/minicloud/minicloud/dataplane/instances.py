"""The hypervisor's instances: records on disk, their workload processes, recovery.

Each instance lives in ``state_dir/instances/<uuid>/``: ``instance.json`` (uuid,
port, pid, data, status), the workload's ``kv.log`` and ``workload.log``. The
directory is the truth: a restarted hypervisor rebuilds its table from it,
re-adopting live workloads and restarting dead ones on their saved port (the
floating port's target stays valid across a host reboot).
"""
from __future__ import annotations

import logging
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from minicloud.dataplane import workload_process as wp
from minicloud.dataplane.statefile import read_json, write_json_atomic
from minicloud.web import HTTPError

LOG = logging.getLogger("minicloud.dataplane.instances")
UUID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RETIRED_DIR = ".retired"  # under instances/: dirs of instances that migrated away


@dataclass
class InstanceRecord:
    uuid: str
    port: int
    pid: int = 0
    status: str = "building"  # building | active | incoming | migrating | error
    data: dict[str, Any] = field(default_factory=dict)

    def view(self, address: str) -> dict[str, Any]:
        """The API view; a workload that died since (and is not being restarted) shows "stopped"."""
        status = self.status
        if status == "active" and not wp.pid_alive(self.pid):
            status = "stopped"
        return {"uuid": self.uuid, "port": self.port, "pid": self.pid, "address": address,
                "status": status, "data": self.data}


class InstanceStore:
    """Instances of one host; thread-safe; one operation per instance at a time."""

    def __init__(self, state_dir: Path, bind: str, host: str) -> None:
        self.root = state_dir / "instances"
        self.root.mkdir(parents=True, exist_ok=True)
        self.bind = bind
        self.host = host
        self.records: dict[str, InstanceRecord] = {}
        self.lock = threading.Lock()
        self.busy: set[str] = set()

    def instance_dir(self, uuid: str) -> Path:
        return self.root / uuid

    def save(self, record: InstanceRecord) -> None:
        write_json_atomic(self.instance_dir(record.uuid) / "instance.json", asdict(record))

    def get(self, uuid: str) -> InstanceRecord:
        with self.lock:
            record = self.records.get(uuid)
        if record is None:
            raise HTTPError(404, f"instance {uuid} not found on {self.host}")
        return record

    def list(self) -> list[InstanceRecord]:
        with self.lock:
            return sorted(self.records.values(), key=lambda r: r.uuid)

    @contextmanager
    def operation(self, uuid: str) -> Iterator[InstanceRecord]:
        """Mark ``uuid`` busy for the duration (a second operation gets 409)."""
        with self.lock:
            record = self.records.get(uuid)
            if record is None:
                raise HTTPError(404, f"instance {uuid} not found on {self.host}")
            if uuid in self.busy:
                raise HTTPError(409, f"instance {uuid} has an operation in progress")
            self.busy.add(uuid)
        try:
            yield record
        finally:
            with self.lock:
                self.busy.discard(uuid)

    # -- lifecycle -------------------------------------------------------------
    def create(self, uuid: str, data: dict[str, Any], incoming: bool = False) -> tuple[InstanceRecord, bool]:
        """Spawn a workload for ``uuid``; (record, created). Idempotent for an existing one."""
        if not UUID_PATTERN.match(uuid):
            raise HTTPError(400, f"invalid instance uuid {uuid!r}")
        with self.lock:
            existing = self.records.get(uuid)
            if existing is not None:
                if incoming:
                    raise HTTPError(409, f"instance {uuid} already exists on {self.host}")
                return existing, False
            record = InstanceRecord(uuid, self._free_port(), data=data,
                                    status="incoming" if incoming else "building")
            self.records[uuid] = record
            self.busy.add(uuid)
        try:
            self.instance_dir(uuid).mkdir(parents=True, exist_ok=True)
            self._start(record, incoming)
        except Exception:
            with self.lock:
                self.records.pop(uuid, None)
            shutil.rmtree(self.instance_dir(uuid), ignore_errors=True)
            raise
        finally:
            with self.lock:
                self.busy.discard(uuid)
        return record, True

    def _start(self, record: InstanceRecord, incoming: bool = False) -> None:
        instance_dir = self.instance_dir(record.uuid)
        record.pid = wp.spawn_workload(record.uuid, self.bind, record.port, instance_dir, self.host, incoming)
        self.save(record)
        try:
            wp.wait_healthy(self.bind, record.port, record.uuid, record.pid)
        except RuntimeError as exc:
            record.status = "error"
            self.save(record)
            raise HTTPError(500, f"{exc}; log: {wp.log_tail(instance_dir)}") from None
        record.status = "incoming" if incoming else "active"
        self.save(record)
        LOG.info("instance %s: workload pid %d on %s:%d (%s)", record.uuid, record.pid, self.bind,
                 record.port, record.status)

    def delete(self, uuid: str) -> None:
        with self.operation(uuid) as record:
            wp.stop_process(record.pid, uuid)
            with self.lock:
                self.records.pop(uuid, None)
            shutil.rmtree(self.instance_dir(uuid), ignore_errors=True)
        LOG.info("instance %s deleted", uuid)

    def reboot(self, uuid: str) -> InstanceRecord:
        """Stop and start the workload on the same port; its log carries the data over."""
        with self.operation(uuid) as record:
            wp.stop_process(record.pid, uuid)
            self._start(record)
            return record

    def retire_migrated(self, uuid: str, linger: float = 10.0) -> None:
        """Forget an instance that now lives elsewhere; reap its forwarding workload later.

        Its directory moves to ``instances/.retired/`` at once (the workload
        keeps its open files), so the uuid can come back (a migration back to
        this host) while the old workload still drains, and a hypervisor
        restarted meanwhile reaps it instead of restarting it.
        """
        with self.lock:
            record = self.records.pop(uuid, None)
            if record is None:
                return
            retired = self.root / RETIRED_DIR / f"{uuid}.{time.time_ns()}"
            retired.parent.mkdir(exist_ok=True)
            self.instance_dir(uuid).rename(retired)
        threading.Thread(target=self._reap_retired, args=(record, retired, linger),
                         name=f"reap-{uuid}", daemon=True).start()

    @staticmethod
    def _reap_retired(record: InstanceRecord, retired: Path, linger: float) -> None:
        deadline = time.monotonic() + linger
        while wp.pid_alive(record.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # the workload exits by itself once its clients reconnected
        wp.stop_process(record.pid, record.uuid, timeout=2.0)
        shutil.rmtree(retired, ignore_errors=True)
        LOG.info("instance %s: migrated away, source workload reaped", record.uuid)

    # -- recovery ----------------------------------------------------------------
    def recover(self) -> None:
        """Re-adopt live workloads; restart those a host reboot killed."""
        wp.precompile_workload()
        for retired in sorted((self.root / RETIRED_DIR).glob("*")):
            raw = read_json(retired / "instance.json", {})
            if isinstance(raw, dict) and raw.get("uuid"):
                wp.stop_process(int(raw.get("pid") or 0), str(raw["uuid"]), timeout=1.0)
            shutil.rmtree(retired, ignore_errors=True)
        for instance_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and p.name != RETIRED_DIR):
            raw = read_json(instance_dir / "instance.json", None)
            if not isinstance(raw, dict) or "uuid" not in raw:
                LOG.error("ignoring %s: no readable instance.json", instance_dir)
                continue
            fields = ("uuid", "port", "pid", "status", "data")
            record = InstanceRecord(**{k: raw[k] for k in fields if k in raw})
            self.records[record.uuid] = record
            health = wp.probe_health(self.bind, record.port) if wp.pid_alive(record.pid) else None
            if health is not None and health.get("uuid") == record.uuid and health.get("pid") == record.pid:
                record.status = "incoming" if health.get("mode") == "incoming" else "active"
                LOG.info("instance %s: re-adopted running workload pid %d", record.uuid, record.pid)
                continue
            if wp.pid_alive(record.pid) and wp.is_workload_of(record.pid, record.uuid):
                LOG.warning("instance %s: workload pid %d does not answer; restarting it",
                            record.uuid, record.pid)
                wp.stop_process(record.pid, record.uuid, timeout=2.0)
            LOG.info("instance %s: workload not running (host reboot?); restarting from saved state",
                     record.uuid)
            try:
                self._start(record)
            except HTTPError as exc:
                LOG.error("instance %s: restart failed: %s", record.uuid, exc.message)

    def _free_port(self) -> int:
        """A workload port not recorded here and bindable now. Caller holds the lock."""
        used = {r.port for r in self.records.values()}
        for port in wp.WORKLOAD_PORTS:
            if port in used:
                continue
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.bind, port))
                except OSError:
                    continue
            return port
        raise HTTPError(503, f"no free workload port on {self.bind}")

"""The compute agent (``:8782``): nova-compute's part, driving its host's hypervisor.

It registers with the conductor (which refuses a version too old for the
cloud: then the agent exits 2), heartbeats, and serves the compute RPC API of
its release: ``build_and_run_instance`` (1.0; ``description`` since 1.1,
``locked`` since 1.2), ``terminate_instance``, ``reboot_instance`` and
``live_migration``. It has no database access; every state change goes
through the conductor. Workloads belong to the hypervisor, so restarting or
upgrading the agent never touches a running instance.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from minicloud import objects
from minicloud.config import PORTS, Config
from minicloud.context import RequestContext, admin_context
from minicloud.dataplane.healthz import add_healthz
from minicloud.debug_hold import hold_keys
from minicloud.defects import has_defect
from minicloud.rpc import ConductorAPI, RemoteError, RPCServer, ServiceTooOld, ServiceUnreachable
from minicloud.rpc_clients import Heartbeat, compute_rpc_url
from minicloud.web import Router, serve

LOG = logging.getLogger("minicloud.compute_agent")
REGISTER_TIMEOUT = 60.0
HYPERVISOR_TIMEOUT = 60.0
MIGRATION_TIMEOUT = 180.0


def utcnow_iso() -> str:
    """Now, UTC, for timestamps sent to the conductor (no SQLAlchemy import here:
    agents have no database access, and it would cost ~15 MB per agent)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DataPlaneError(RuntimeError):
    """A hypervisor or network agent call failed."""


def json_request(method: str, url: str, body: Any = None, timeout: float = 30.0,
                 ok_missing: bool = False) -> Any:
    """One JSON HTTP call; DataPlaneError on failure (404 tolerated if ``ok_missing``)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        if ok_missing and exc.code == 404:
            return None
        raise DataPlaneError(f"{method} {url}: HTTP {exc.code}: {exc.read()[:300]!r}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DataPlaneError(f"{method} {url}: {getattr(exc, 'reason', exc)}") from None


#: how long a call to the network agent is retried while it is away (a
#: restart or an upgrade of the agent takes a second or two; the datapath
#: keeps forwarding meanwhile, so only programming it has to wait).
NETWORK_RETRY_SECONDS = 20.0


def network_request(method: str, url: str, body: Any = None, ok_missing: bool = False) -> Any:
    """A call to the network agent, retried while it is unreachable or answers 503."""
    deadline = time.monotonic() + NETWORK_RETRY_SECONDS
    while True:
        try:
            return json_request(method, url, body, ok_missing=ok_missing)
        except DataPlaneError as exc:
            transient = "HTTP 503" in str(exc) or "HTTP" not in str(exc)
            if not transient or time.monotonic() >= deadline:
                raise
            LOG.warning("network agent unavailable (%s); retrying", exc)
            threading.Event().wait(0.2)


class ComputeManager:
    """The compute RPC endpoint of one host."""

    def __init__(self, config: Config, conductor: ConductorAPI) -> None:
        self.config = config
        self.conductor = conductor
        self.hypervisor = f"http://{config.bind}:{PORTS['hypervisor']}"
        self.network = config.endpoint("network")

    def _update(self, ctx: RequestContext, uuid: str, values: dict[str, Any]) -> None:
        self.conductor.instance_update(ctx, uuid, values)

    def build_and_run_instance(self, ctx: RequestContext, instance: Any, flavor: Any,
                               description: str | None = None, locked: bool = False) -> None:
        uuid = instance.uuid
        data = {"name": instance.name, "flavor": flavor.name, "image_ref": instance.image_ref,
                "project_id": instance.project_id, "description": description, "locked": locked}
        try:
            spawned = json_request("POST", f"{self.hypervisor}/instances",
                                   {"uuid": uuid, "data": data}, timeout=HYPERVISOR_TIMEOUT)
            port = int(spawned["port"])
            if instance.floating_port is not None:
                network_request("PUT", f"{self.network}/floating/{instance.floating_port}",
                             {"target": f"{self.config.bind}:{port}"})
            self._update(ctx, uuid, {"vm_state": "active", "task_state": None, "power_state": 1,
                                     "workload_port": port, "launched_at": utcnow_iso(),
                                     "fault": None})
            LOG.info("instance %s active on port %d (floating %s)", uuid, port, instance.floating_port)
        except (DataPlaneError, KeyError, ValueError, TypeError) as exc:
            LOG.error("instance %s: build failed: %s", uuid, exc)
            self._update(ctx, uuid, {"vm_state": "error", "task_state": None,
                                     "fault": f"build failed on {self.config.host}: {exc}"})

    def terminate_instance(self, ctx: RequestContext, instance: Any) -> None:
        uuid = instance.uuid
        try:
            # Nova lets a delete pre-empt anything; the hypervisor answers 409
            # while another operation on the instance finishes: wait for it.
            deadline = time.monotonic() + HYPERVISOR_TIMEOUT
            while True:
                try:
                    json_request("DELETE", f"{self.hypervisor}/instances/{uuid}", ok_missing=True,
                                 timeout=HYPERVISOR_TIMEOUT)
                    break
                except DataPlaneError as exc:
                    if "HTTP 409" not in str(exc) or time.monotonic() >= deadline:
                        raise
                    threading.Event().wait(0.1)
            if instance.floating_port is not None:
                network_request("DELETE", f"{self.network}/floating/{instance.floating_port}",
                             ok_missing=True)
        except DataPlaneError as exc:
            LOG.error("instance %s: terminate failed: %s", uuid, exc)
            self._update(ctx, uuid, {"vm_state": "error", "task_state": None,
                                     "fault": f"delete failed: {exc}"})
            return
        self._update(ctx, uuid, {"vm_state": "deleted", "task_state": None, "power_state": 0,
                                 "deleted_at": utcnow_iso()})
        LOG.info("instance %s deleted", uuid)

    def reboot_instance(self, ctx: RequestContext, instance: Any, reboot_type: str) -> None:
        uuid = instance.uuid
        try:
            rebooted = json_request("POST", f"{self.hypervisor}/instances/{uuid}/reboot", {},
                                    timeout=HYPERVISOR_TIMEOUT)
            port = int(rebooted["port"])
            if port != instance.workload_port and instance.floating_port is not None:
                network_request("PUT", f"{self.network}/floating/{instance.floating_port}",
                             {"target": f"{self.config.bind}:{port}"})
            self._update(ctx, uuid, {"vm_state": "active", "task_state": None, "power_state": 1,
                                     "workload_port": port})
            LOG.info("instance %s rebooted (%s)", uuid, reboot_type)
        except (DataPlaneError, KeyError, ValueError, TypeError) as exc:
            LOG.error("instance %s: reboot failed: %s", uuid, exc)
            self._update(ctx, uuid, {"task_state": None, "fault": f"reboot failed: {exc}"})

    def live_migration(self, ctx: RequestContext, instance: Any, migration: Any, dest_host: str,
                       dest_url: str) -> None:
        """Migrate to ``dest_host``; on failure the instance stays ACTIVE here."""
        uuid = instance.uuid
        self.conductor.migration_update(ctx, migration.id, {"status": "running"})
        try:
            health = json_request("GET", f"{dest_url.rstrip('/')}/healthz", timeout=5)
            if not health or health.get("status") != "ok":
                raise DataPlaneError(f"destination agent {dest_host} is not healthy: {health}")
            dest_address = urlsplit(dest_url).hostname
            result = json_request("POST", f"{self.hypervisor}/instances/{uuid}/migrate", {
                "dest": f"http://{dest_address}:{PORTS['hypervisor']}", "network": self.network,
                "floating_port": instance.floating_port}, timeout=MIGRATION_TIMEOUT)
            port = int(result["port"])
        except (DataPlaneError, KeyError, ValueError, TypeError) as exc:
            LOG.error("live migration of %s to %s failed: %s", uuid, dest_host, exc)
            self.conductor.finish_live_migration(
                ctx, uuid, migration.id, "error",
                {"vm_state": "active", "task_state": None, "host": self.config.host}, error=str(exc))
            return
        self.conductor.finish_live_migration(
            ctx, uuid, migration.id, "completed",
            {"host": dest_host, "workload_port": port, "task_state": None, "vm_state": "active"})
        LOG.info("instance %s live-migrated to %s (gap %s ms)", uuid, dest_host, result.get("gap_ms"))


CASTS = {"build_and_run_instance", "terminate_instance", "reboot_instance", "live_migration"}


def register(config: Config, conductor: ConductorAPI, values: dict[str, Any]) -> int | None:
    """Register with the conductor; an exit code if we must not run, else None."""
    deadline = time.monotonic() + REGISTER_TIMEOUT
    attempts = 0
    while True:
        attempts += 1
        try:
            conductor.service_create_or_update(admin_context(), config.host, "compute-agent", values)
            return None
        except ServiceTooOld as exc:
            LOG.error("conductor refused registration: %s", exc.message)
            print(f"minicloud: error: {exc.message}", file=sys.stderr, flush=True)
            return 2
        except (ServiceUnreachable, RemoteError) as exc:
            if time.monotonic() >= deadline:
                LOG.error("cannot register with the conductor after %.0fs: %s", REGISTER_TIMEOUT, exc)
                return 1
            if attempts == 1 or attempts % 20 == 0:  # once, then every ~10 s
                LOG.warning("conductor not ready (%s); retrying for up to %.0fs", exc, REGISTER_TIMEOUT)
            time.sleep(0.5)  # pacing between registration attempts, bounded by the deadline


def main(config: Config) -> int:
    if has_defect(config.release, "nostart") and config.host == "compute-2":
        LOG.error("compute-agent on compute-2 refuses to start: defect variant %s",
                  config.release.label)
        return 1
    conductor = ConductorAPI(config)
    manager = ComputeManager(config, conductor)
    server = RPCServer(manager, config.release.compute_rpc, objects.for_release(config.release),
                       calls=set(), casts=CASTS,
                       hold_as=hold_keys("compute-agent", config))
    router = Router()
    add_healthz(router, config)
    server.mount(router)
    version = config.release.service_version
    if has_defect(config.release, "stale-service-version"):
        version = config.release.min_peer_service_version  # the bug: the N-1 it accepts, not its own
    values = {"version": version, "release": config.release.label, "rpc_url": compute_rpc_url(config.bind)}
    refused = register(config, conductor, values)
    if refused is not None:
        return refused
    heartbeat = Heartbeat(
        lambda: conductor.service_create_or_update(admin_context(), config.host, "compute-agent", values),
        config.heartbeat_interval, "compute-agent").start()

    def on_stop() -> None:
        heartbeat.stop()
        if not server.drain(config.shutdown_timeout):
            LOG.warning("casts still running after %.1fs", config.shutdown_timeout)

    return serve(router, config.bind, config.port, "compute-agent", config.shutdown_timeout,
                 on_stop=on_stop)

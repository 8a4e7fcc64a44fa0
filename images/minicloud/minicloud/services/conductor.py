"""The conductor (``:8780``): the only database writer for agents, and the orchestrator.

As in Nova, compute agents never touch the database: they call the conductor.
The conductor also runs the multi-step flows (schedule + build, live migrate,
delete, reboot) that the compute API casts to it, and it refuses to register a
service older than this release accepts (N-1 only).
"""
from __future__ import annotations

import logging
import sys
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine

from minicloud import db, objects
from minicloud.config import Config
from minicloud.context import RequestContext
from minicloud.dataplane.healthz import add_healthz
from minicloud.dataplane.httpjson import CallError, call_json
from minicloud.db import api
from minicloud.debug_hold import hold_keys
from minicloud.defects import has_defect
from minicloud.reload import install_sighup_reload
from minicloud.rpc import (
    ComputeAPI,
    NoValidHost,
    RemoteError,
    RPCServer,
    SchedulerAPI,
    ServiceTooOld,
    ServiceUnreachable,
)
from minicloud.rpc_clients import CONDUCTOR_RPC_VERSION, Heartbeat
from minicloud.web import Router, serve

LOG = logging.getLogger("minicloud.conductor")
BUILD_ATTEMPTS = 3

CALLS = {"service_create_or_update", "service_update", "service_min_version", "service_get_by_host",
         "compute_host_states", "instance_get", "instance_update", "migration_create",
         "migration_update", "finish_live_migration"}
CASTS = {"build_instances", "live_migrate_instance", "delete_instance", "reboot_instance"}


class ConductorManager:
    """The conductor's RPC endpoint: DB proxy calls and orchestration casts."""

    def __init__(self, config: Config, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.release = config.release
        self.objects = objects.for_release(config.release)
        self.scheduler = SchedulerAPI(config)

    # -- DB proxy for agents ---------------------------------------------------

    def service_create_or_update(self, ctx: RequestContext, host: str, binary: str,
                                 values: dict[str, Any]) -> dict[str, Any]:
        version = int(values.get("version", 0))
        needed = self.release.min_peer_service_version
        if version < needed:
            LOG.error("refusing %s on %s: service version %d < %d", binary, host, version, needed)
            raise ServiceTooOld(f"service version {version} is too old: this cloud needs at least {needed}")
        return api.service_create_or_update(self.engine, host, binary, values)

    def service_update(self, ctx: RequestContext, service_id: int | str,
                       values: dict[str, Any]) -> dict[str, Any]:
        return api.service_update(self.engine, service_id, values)

    def service_min_version(self, ctx: RequestContext, binary: str) -> int | None:
        return api.service_min_version(self.engine, binary)

    def service_get_by_host(self, ctx: RequestContext, host: str, binary: str) -> dict[str, Any]:
        return api.service_get_by_host(self.engine, host, binary, self.config.service_down_time)

    def compute_host_states(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """What the scheduler filters and weighs: one entry per compute agent."""
        counts = api.instance_count_by_host(self.engine)
        return [{"host": s["host"], "up": s["up"], "disabled": s["disabled"],
                 "forced_down": s["forced_down"], "version": s["version"],
                 "rpc_url": s["rpc_url"], "instances": counts.get(s["host"], 0)}
                for s in api.service_list(self.engine, self.config.service_down_time,
                                          binary="compute-agent")]

    def instance_get(self, ctx: RequestContext, instance_uuid: str) -> Any:
        return self.objects.instance_from_dict(api.instance_get(self.engine, instance_uuid))

    def instance_update(self, ctx: RequestContext, instance_uuid: str, values: dict[str, Any]) -> Any:
        return self.objects.instance_from_dict(api.instance_update(self.engine, instance_uuid, values))

    def migration_create(self, ctx: RequestContext, values: dict[str, Any]) -> dict[str, Any]:
        return api.migration_create(self.engine, values)

    def migration_update(self, ctx: RequestContext, migration_id: int,
                         values: dict[str, Any]) -> dict[str, Any]:
        return api.migration_update(self.engine, migration_id, values)

    def finish_live_migration(self, ctx: RequestContext, instance_uuid: str, migration_id: int,
                              status: str, instance_values: dict[str, Any],
                              error: str | None = None) -> dict[str, Any]:
        """Settle the instance, then close the record: a finished record implies a settled instance.

        A delete wins over a migration: an instance deleted (or being deleted)
        while its migration failed is not brought back to ACTIVE.
        """
        current = api.instance_get(self.engine, instance_uuid)
        if current["vm_state"] == "deleted" or current["task_state"] == "deleting":
            LOG.info("instance %s: deleted during its live migration; not settling it", instance_uuid)
        else:
            settled = api.instance_update(self.engine, instance_uuid, instance_values)
            if status == "completed":
                # Defect "activate-stale-row": the binding is activated from the row read before
                # the update (the source host and its old workload port), not the settled one.
                row = current if has_defect(self.config.release, "activate-stale-row") else settled
                self._activate_floating(row)
        return api.migration_update(self.engine, migration_id, {"status": status, "error": error})

    def _activate_floating(self, inst: dict[str, Any]) -> None:
        """1.1: after a live migration, (re)activate the floating port's binding on the instance's
        host (Nova's post-live-migration port binding activation). The hypervisor has switched it
        already; this makes the network agent's desired table say so too (an idempotent PUT)."""
        if self.config.release.service_version < 11 or inst.get("floating_port") is None:
            return
        try:
            service = api.service_get_by_host(self.engine, inst["host"] or "", "compute-agent")
            address = urlsplit(service["rpc_url"]).hostname
            url = f"{self.config.endpoint('network')}/floating/{inst['floating_port']}"
            if has_defect(self.config.release, "activate-rebind"):
                # Defect "activate-rebind": the old binding is deleted before the new one is made,
                # so the floating port stops listening between the two calls.
                call_json("DELETE", url)
            call_json("PUT", url, {"target": f"{address}:{inst['workload_port']}"})
        except (LookupError, CallError, KeyError) as exc:
            LOG.warning("instance %s: cannot activate its floating port: %s", inst.get("uuid"), exc)

    # -- orchestration (casts from the compute API) -------------------------------

    def _compute(self, host: str, rpc_url: str) -> ComputeAPI:
        return ComputeAPI(self.config, host, rpc_url,
                          min_version=self._min_compute_version)

    def _min_compute_version(self) -> int | None:
        return api.service_min_version(self.engine, "compute-agent")

    def _fail(self, uuid: str, message: str) -> None:
        LOG.error("instance %s: %s", uuid, message)
        api.instance_update(self.engine, uuid, {"vm_state": "error", "task_state": None,
                                                "fault": message})

    def build_instances(self, ctx: RequestContext, instance_uuid: str) -> None:
        """Schedule and cast the build; retry another host if an agent is unreachable."""
        inst = api.instance_get(self.engine, instance_uuid)
        if inst["vm_state"] != "building":
            return
        flavor = api.flavor_get(self.engine, inst["flavor_id"] or "1")
        flavor_obj = self.objects.flavor_from_dict(flavor)
        if inst["floating_port"] is None:
            ip = urlsplit(self.config.public_endpoint("datapath")).hostname
            ports = api.floating_port_range(self.config.raw)
            inst = api.instance_update(self.engine, instance_uuid, {
                "floating_ip": ip, "floating_port": api.allocate_floating_port(self.engine, ports)})
        tried: list[str] = []
        for _ in range(BUILD_ATTEMPTS):
            spec = self.objects.RequestSpec(instance_uuid=instance_uuid, project_id=inst["project_id"],
                                            flavor=flavor_obj, ignore_hosts=list(tried),
                                            force_hosts=[])
            try:
                dest = self.scheduler.select_destinations(ctx, spec)
            except NoValidHost as exc:
                self._fail(instance_uuid, f"No valid host was found. {exc.message}")
                return
            except RemoteError as exc:
                self._fail(instance_uuid, f"scheduling failed: {exc}")
                return
            inst = api.instance_update(self.engine, instance_uuid,
                                       {"host": dest["host"], "task_state": "spawning"})
            try:
                version = self._compute(dest["host"], dest["rpc_url"]).build_and_run_instance(
                    ctx, self.objects.instance_from_dict(inst), flavor_obj,
                    description=inst["description"], locked=inst["locked"])
                LOG.info("instance %s: build cast to %s (RPC %s)", instance_uuid, dest["host"], version)
                return
            except ServiceUnreachable as exc:
                LOG.warning("instance %s: %s unreachable (%s); rescheduling", instance_uuid,
                            dest["host"], exc.message)
                tried.append(dest["host"])
            except RemoteError as exc:
                self._fail(instance_uuid, f"build refused by {dest['host']}: {exc}")
                return
        self._fail(instance_uuid, f"No valid host was found. Build failed on {', '.join(tried)}")

    def delete_instance(self, ctx: RequestContext, instance_uuid: str) -> None:
        inst = api.instance_update(self.engine, instance_uuid, {"task_state": "deleting"})
        if inst["host"]:
            try:
                service = api.service_get_by_host(self.engine, inst["host"], "compute-agent",
                                                  self.config.service_down_time)
                if service["up"]:
                    self._compute(inst["host"], service["rpc_url"]).terminate_instance(
                        ctx, self.objects.instance_from_dict(inst))
                    return
            except (LookupError, ServiceUnreachable) as exc:
                LOG.warning("instance %s: compute %s unavailable (%s); deleting locally",
                            instance_uuid, inst["host"], exc)
        # Local delete, as Nova does when the compute is down.
        api.instance_update(self.engine, instance_uuid, {
            "vm_state": "deleted", "task_state": None, "power_state": 0,
            "deleted_at": api.utcnow()})

    def reboot_instance(self, ctx: RequestContext, instance_uuid: str, reboot_type: str) -> None:
        inst = api.instance_update(self.engine, instance_uuid, {"task_state": "rebooting"})
        try:
            service = api.service_get_by_host(self.engine, inst["host"] or "", "compute-agent")
            self._compute(inst["host"], service["rpc_url"]).reboot_instance(
                ctx, self.objects.instance_from_dict(inst), reboot_type)
        except (LookupError, RemoteError) as exc:
            LOG.error("instance %s: reboot failed: %s", instance_uuid, exc)
            api.instance_update(self.engine, instance_uuid, {"task_state": None,
                                                             "fault": f"reboot failed: {exc}"})

    def live_migrate_instance(self, ctx: RequestContext, instance_uuid: str, host: str | None) -> None:
        """Pick (or check) the destination, record the migration, cast to the source."""
        inst = api.instance_get(self.engine, instance_uuid)
        source = inst["host"]
        migration = api.migration_create(self.engine, {"instance_uuid": instance_uuid,
                                                        "source_host": source, "dest_host": host})
        try:
            if host is None:
                flavor = self.objects.flavor_from_dict(api.flavor_get(self.engine, inst["flavor_id"] or "1"))
                spec = self.objects.RequestSpec(instance_uuid=instance_uuid, project_id=inst["project_id"],
                                                flavor=flavor, ignore_hosts=[source or ""], force_hosts=[])
                dest = self.scheduler.select_destinations(ctx, spec)
            else:
                if host == source:
                    raise ValueError(f"instance is already on {host}")
                service = api.service_get_by_host(self.engine, host, "compute-agent",
                                                  self.config.service_down_time)
                if not service["up"] or service["disabled"]:
                    raise ValueError(f"destination {host} is {'disabled' if service['disabled'] else 'down'}")
                dest = {"host": host, "rpc_url": service["rpc_url"]}
            source_service = api.service_get_by_host(self.engine, source or "", "compute-agent")
            migration = api.migration_update(self.engine, migration["id"],
                                             {"dest_host": dest["host"], "status": "queued"})
            api.instance_update(self.engine, instance_uuid, {"task_state": "migrating"})
            self._compute(source or "", source_service["rpc_url"]).live_migration(
                ctx, self.objects.instance_from_dict(inst),
                self.objects.Migration(id=migration["id"], instance_uuid=instance_uuid,
                                       source_host=source, dest_host=dest["host"], status="queued"),
                dest["host"], dest["rpc_url"])
        except (LookupError, ValueError, RemoteError) as exc:
            LOG.error("live migration of %s failed before it started: %s", instance_uuid, exc)
            api.migration_update(self.engine, migration["id"], {"status": "error", "error": str(exc)})
            api.instance_update(self.engine, instance_uuid, {"task_state": None})


def main(config: Config) -> int:
    if not config.database:
        LOG.error("conductor needs 'database' in %s", config.path)
        return 2
    try:
        engine = db.connect(config.database, config.release)
    except db.SchemaTooNew as exc:
        LOG.error("%s", exc)
        print(f"minicloud: error: {exc}", file=sys.stderr, flush=True)
        return 2
    manager = ConductorManager(config, engine)
    server = RPCServer(manager, CONDUCTOR_RPC_VERSION, manager.objects, CALLS, CASTS,
                       hold_as=hold_keys("conductor", config))
    router = Router()
    add_healthz(router, config)
    server.mount(router)
    values = {"version": config.release.service_version, "release": config.release.label,
              "rpc_url": f"http://{config.bind}:{config.port}"}
    heartbeat = Heartbeat(lambda: api.service_create_or_update(engine, config.host, "conductor", values),
                          config.heartbeat_interval, "conductor")
    try:
        api.service_create_or_update(engine, config.host, "conductor", values)
    except Exception as exc:
        LOG.error("cannot register the conductor in the database: %s", exc)
        return 2
    heartbeat.start()
    install_sighup_reload(config)  # the pin of a rolling upgrade changes without a restart

    def on_stop() -> None:
        heartbeat.stop()
        if has_defect(config.release, "conductor-dropcasts"):
            return  # the bug: the casts still running die with the process
        if not server.drain(config.shutdown_timeout):
            LOG.warning("casts still running after %.1fs", config.shutdown_timeout)

    return serve(router, config.bind, config.port, "conductor", config.shutdown_timeout,
                 on_stop=on_stop)

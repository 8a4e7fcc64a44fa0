"""The hypervisor service (``:8783``): runs each instance as a workload process.

Separate from the compute agent, like libvirtd is from nova-compute: the agent
is upgraded and restarted during a rolling upgrade, the hypervisor and its
workloads keep running. The hypervisor itself can restart too: workloads live
in their own sessions and are re-adopted from ``state_dir/instances``.

API (DESIGN.md, "Data plane"): ``GET /instances``, ``POST /instances``,
``GET|DELETE /instances/<uuid>``, ``POST /instances/<uuid>/reboot``,
``POST /instances/<uuid>/migrate``; hypervisor to hypervisor:
``POST /instances/<uuid>/incoming`` (prepare the destination of a migration).
"""
from __future__ import annotations

import logging
from typing import Any

from minicloud.config import Config
from minicloud.dataplane.healthz import add_healthz
from minicloud.dataplane.instances import InstanceStore
from minicloud.dataplane.migration import MigrationFailed, live_migrate
from minicloud.web import HTTPError, Request, Response, Router, serve

LOG = logging.getLogger("minicloud.hypervisor")


def build_router(config: Config, store: InstanceStore) -> Router:
    router = Router()
    add_healthz(router, config)
    address = config.bind

    def brief(record: Any) -> dict[str, Any]:
        return {"uuid": record.uuid, "port": record.port, "pid": record.pid, "address": address}

    @router.route("GET", "/instances")
    def list_instances(_request: Request) -> dict[str, Any]:
        return {"instances": [r.view(address) for r in store.list()]}

    @router.route("POST", "/instances")
    def create_instance(request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("uuid"), str):
            raise HTTPError(400, 'body must be {"uuid": "...", "data": {...}}')
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise HTTPError(400, "data must be an object")
        record, created = store.create(body["uuid"], data)
        return Response(201 if created else 200, brief(record))

    @router.route("GET", "/instances/{uuid}")
    def show_instance(request: Request) -> dict[str, Any]:
        return store.get(request.params["uuid"]).view(address)

    @router.route("DELETE", "/instances/{uuid}")
    def delete_instance(request: Request) -> Response:
        store.delete(request.params["uuid"])
        return Response(204)

    @router.route("POST", "/instances/{uuid}/reboot")
    def reboot_instance(request: Request) -> dict[str, Any]:
        return brief(store.reboot(request.params["uuid"]))

    @router.route("POST", "/instances/{uuid}/incoming")
    def prepare_incoming(request: Request) -> Response:
        body = request.json()
        data = body.get("data") if isinstance(body, dict) else None
        record, _ = store.create(request.params["uuid"], data if isinstance(data, dict) else {},
                                 incoming=True)
        return Response(201, brief(record))

    @router.route("POST", "/instances/{uuid}/migrate")
    def migrate_instance(request: Request) -> dict[str, Any]:
        body = request.json()
        try:
            return live_migrate(store, request.params["uuid"], body if isinstance(body, dict) else {})
        except MigrationFailed as exc:
            LOG.error("migration of %s rolled back: %s", request.params["uuid"], exc)
            raise HTTPError(500, f"live migration failed and was rolled back: {exc}") from None

    return router


def main(config: Config) -> int:
    store = InstanceStore(config.state_dir, config.bind, config.host)
    store.recover()
    LOG.info("hypervisor of %s: %d instance(s) after recovery", config.host, len(store.list()))
    # Stopping the hypervisor leaves its workloads running: they are the guests.
    return serve(build_router(config, store), config.bind, config.port, "hypervisor",
                 config.shutdown_timeout)

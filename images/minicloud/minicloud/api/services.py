"""``/os-services`` and ``/os-hypervisors`` (admin only, as Nova's default policy).

Enabling, disabling and forcing down a service write the ``services`` table
directly through ``minicloud.db.api``, as Nova's API does (its os-services
controller saves the Service object itself; the conductor is not involved).
From microversion 2.53 a service is addressed by uuid (``PUT
/os-services/{uuid}``); before, by ``host`` + ``binary`` in the body of ``PUT
/os-services/{enable,disable,disable-log-reason,force-down}``.

The API speaks Nova's binary names (``nova-compute``, ``nova-conductor``,
``nova-scheduler``: ``views.NOVA_BINARIES``) in its answers, its ``binary``
filter and the legacy bodies; the ``services`` table keeps minicloud's.
"""
from __future__ import annotations

from typing import Any

from minicloud.api import views
from minicloud.api.app import ApiRequest, ComputeApp
from minicloud.api.microversion import APIVersion
from minicloud.auth import require_admin
from minicloud.db import api as db
from minicloud.web import HTTPError

COMPUTE_BINARY = "compute-agent"
LEGACY_ACTIONS = ("enable", "disable", "disable-log-reason", "force-down")


def _services(app: ComputeApp) -> list[dict[str, Any]]:
    return db.service_list(app.engine, app.config.service_down_time)


def list_services(app: ComputeApp, request: ApiRequest) -> dict[str, Any]:
    require_admin(request.context, "os_compute_api:os-services:list")
    wanted = request.query.get("binary")
    services = [s for s in _services(app)
                if request.query.get("host") in (None, s["host"])
                and wanted in (None, views.api_binary(s["binary"]))]
    return {"services": [views.service_view(s, request.version) for s in services]}


def _update_by_uuid(app: ComputeApp, request: ApiRequest, service_uuid: str) -> dict[str, Any]:
    service = next((s for s in _services(app) if s["uuid"] == service_uuid), None)
    if service is None:
        raise HTTPError(404, f"Service {service_uuid} could not be found.", "itemNotFound")
    body = request.json()
    if not isinstance(body, dict) or not body or set(body) - {"status", "disabled_reason", "forced_down"}:
        raise HTTPError(400, "the body must have status, disabled_reason and/or forced_down", "badRequest")
    values: dict[str, Any] = {}
    if "status" in body:
        if body["status"] not in ("enabled", "disabled"):
            raise HTTPError(400, "status must be 'enabled' or 'disabled'", "badRequest")
        values["disabled"] = body["status"] == "disabled"
        values["disabled_reason"] = body.get("disabled_reason") if values["disabled"] else None
    elif "disabled_reason" in body:
        raise HTTPError(400, "disabled_reason is only allowed with status 'disabled'", "badRequest")
    if body.get("disabled_reason") is not None and body.get("status") != "disabled":
        raise HTTPError(400, "disabled_reason is only allowed with status 'disabled'", "badRequest")
    if "forced_down" in body:
        if not isinstance(body["forced_down"], bool):
            raise HTTPError(400, "forced_down must be a boolean", "badRequest")
        if service["binary"] != COMPUTE_BINARY:
            raise HTTPError(400, "forced_down applies to compute services only", "badRequest")
        values["forced_down"] = body["forced_down"]
    updated = db.service_update(app.engine, service["id"], values)
    return {"service": views.service_view(updated, request.version)}


def _update_legacy(app: ComputeApp, request: ApiRequest, action: str) -> dict[str, Any]:
    if action not in LEGACY_ACTIONS or (action == "force-down" and request.version < APIVersion("2.11")):
        raise HTTPError(404, f"Unknown action {action}", "itemNotFound")
    body = request.json()
    host, binary = (body.get("host"), body.get("binary")) if isinstance(body, dict) else (None, None)
    if not isinstance(host, str) or not isinstance(binary, str):
        raise HTTPError(400, "host and binary are required", "badRequest")
    internal = views.internal_binary(binary)
    try:
        if internal is None:
            raise db.NotFound("service", f"{binary} on {host}")
        service = db.service_get_by_host(app.engine, host, internal, app.config.service_down_time)
    except db.NotFound:
        raise HTTPError(404, f"Service {binary} on host {host} could not be found.", "itemNotFound") from None
    result: dict[str, Any] = {"host": host, "binary": binary}
    if action == "force-down":
        forced = body.get("forced_down")
        if not isinstance(forced, bool):
            raise HTTPError(400, "forced_down must be a boolean", "badRequest")
        db.service_update(app.engine, service["id"], {"forced_down": forced})
        result["forced_down"] = forced
        return {"service": result}
    disabled = action != "enable"
    reason = body.get("disabled_reason") if action == "disable-log-reason" else None
    if action == "disable-log-reason" and not isinstance(reason, str):
        raise HTTPError(400, "disabled_reason is required", "badRequest")
    db.service_update(app.engine, service["id"], {"disabled": disabled, "disabled_reason": reason})
    result["status"] = "disabled" if disabled else "enabled"
    if reason:
        result["disabled_reason"] = reason
    return {"service": result}


def update_service(app: ComputeApp, request: ApiRequest) -> dict[str, Any]:
    require_admin(request.context, "os_compute_api:os-services:update")
    ident = request.params["service_id"]
    if request.version >= APIVersion("2.53"):
        return _update_by_uuid(app, request, ident)
    return _update_legacy(app, request, ident)


def _hypervisors(app: ComputeApp, request: ApiRequest, detail: bool) -> list[dict[str, Any]]:
    computes = db.service_list(app.engine, app.config.service_down_time, binary=COMPUTE_BINARY)
    pattern = request.query.get("hypervisor_hostname_pattern")
    if pattern:
        computes = [s for s in computes if pattern in s["host"]]
    flavors = {str(f["id"]): f for f in db.flavor_list(app.engine)} if detail else {}
    result = []
    for service in computes:
        instances = db.instance_list(app.engine, host=service["host"]) if detail else []
        result.append(views.hypervisor_view(service, instances, flavors, request.version, detail))
    return result


def list_hypervisors(app: ComputeApp, request: ApiRequest, detail: bool) -> dict[str, Any]:
    require_admin(request.context, "os_compute_api:os-hypervisors:list")
    return {"hypervisors": _hypervisors(app, request, detail)}


def show_hypervisor(app: ComputeApp, request: ApiRequest) -> dict[str, Any]:
    require_admin(request.context, "os_compute_api:os-hypervisors:show")
    wanted = request.params["hypervisor_id"]
    for hypervisor in _hypervisors(app, request, detail=True):
        if str(hypervisor["id"]) == wanted:
            return {"hypervisor": hypervisor}
    raise HTTPError(404, f"Hypervisor with ID {wanted} could not be found.", "itemNotFound")

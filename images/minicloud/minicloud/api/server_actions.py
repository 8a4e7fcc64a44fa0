"""``POST /servers/{id}/action``: ``reboot`` and ``os-migrateLive``.

``os-migrateLive`` accepts every body openstacksdk sends, validated per
microversion as Nova does: before 2.25 ``block_migration`` is a boolean and
``disk_over_commit`` is allowed; from 2.25 ``block_migration`` may be
``"auto"`` and ``disk_over_commit`` is gone; ``force`` exists from 2.30 until
2.68 removed it.
"""
from __future__ import annotations

from typing import Any

from minicloud.api.app import ApiRequest, ComputeApp
from minicloud.api.microversion import APIVersion
from minicloud.auth import require_admin
from minicloud.db import api as db
from minicloud.web import HTTPError, Response

REBOOT_TYPES = ("SOFT", "HARD")


def _conflict(instance: dict[str, Any], action: str) -> HTTPError:
    return HTTPError(409, f"Cannot '{action}' instance {instance['uuid']} while it is in "
                          f"vm_state {instance['vm_state']} task_state {instance['task_state']}",
                     "conflictingRequest")


def _reboot(app: ComputeApp, request: ApiRequest, instance: dict[str, Any], body: Any) -> Response:
    reboot_type = str((body or {}).get("type", "")).upper() if isinstance(body, dict) else ""
    if reboot_type not in REBOOT_TYPES:
        raise HTTPError(400, "Invalid input for field/attribute type: must be SOFT or HARD", "badRequest")
    if instance["vm_state"] != "active" or (reboot_type == "SOFT" and instance["task_state"]):
        raise _conflict(instance, "reboot")
    uuid = instance["uuid"]
    # Set before the cast, as nova-api does: REBOOT shows from the moment the
    # request is accepted, and a second action conflicts instead of racing.
    pending = "reboot_pending" if reboot_type == "SOFT" else "reboot_pending_hard"
    _cast_with_task_state(app, uuid, pending, f"reboot of {uuid}", lambda: app.conductor.reboot_instance(
        app.rpc_context(request.context), uuid, reboot_type))
    return Response(202)


def _cast_with_task_state(app: ComputeApp, uuid: str, task_state: str, what: str,
                          send: Any) -> None:
    """Record the task state, then cast; undo the task state if the cast fails."""
    db.instance_update(app.engine, uuid, {"task_state": task_state})
    try:
        app.cast(what, send)
    except HTTPError:
        db.instance_update(app.engine, uuid, {"task_state": None})
        raise


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise HTTPError(400, f"Invalid input for field/attribute {name}.", "badRequest")


def _validate_live_migrate_body(body: Any, version: APIVersion) -> str | None:
    """The requested host (None: let the scheduler choose); 400 for a body Nova would refuse."""
    if not isinstance(body, dict):
        raise HTTPError(400, "Invalid input: os-migrateLive must be an object", "badRequest")
    allowed = {"host", "block_migration"}
    if version < APIVersion("2.25"):
        allowed.add("disk_over_commit")
    if APIVersion("2.30") <= version < APIVersion("2.68"):
        allowed.add("force")
    unexpected = sorted(set(body) - allowed)
    if unexpected:
        raise HTTPError(400, f"Additional properties are not allowed ({', '.join(unexpected)} "
                             f"was unexpected) at microversion {version}", "badRequest")
    if "block_migration" not in body and version < APIVersion("2.25"):
        raise HTTPError(400, "'block_migration' is a required property", "badRequest")
    block = body.get("block_migration", "auto")
    if not (block == "auto" and version >= APIVersion("2.25")):
        _as_bool(block, "block_migration")
    if "disk_over_commit" in body:
        _as_bool(body["disk_over_commit"], "disk_over_commit")
    if "force" in body:
        _as_bool(body["force"], "force")
    host = body.get("host")
    if host is not None and (not isinstance(host, str) or not host.strip()):
        raise HTTPError(400, "Invalid input for field/attribute host.", "badRequest")
    return host


def _live_migrate(app: ComputeApp, request: ApiRequest, instance: dict[str, Any], body: Any) -> Response:
    require_admin(request.context, "os_compute_api:os-migrate-server:migrate_live")
    host = _validate_live_migrate_body(body, request.version)
    if instance["vm_state"] != "active" or instance["task_state"]:
        raise _conflict(instance, "os-migrateLive")
    if host is not None:
        try:
            db.service_get_by_host(app.engine, host, "compute-agent", app.config.service_down_time)
        except db.NotFound:
            raise HTTPError(400, f"Compute host {host} could not be found.", "badRequest") from None
        if host == instance["host"]:
            raise HTTPError(400, f"The supplied hypervisor hostname {host} is the instance's own host.",
                            "badRequest")
    uuid = instance["uuid"]
    # As nova-api does: the task state is set before the cast, so the server
    # shows MIGRATING from the moment the request is accepted (a client that
    # waits for ACTIVE again cannot see the old state and stop waiting early).
    _cast_with_task_state(app, uuid, "migrating", f"live migration of {uuid}",
                          lambda: app.conductor.live_migrate_instance(
                              app.rpc_context(request.context), uuid, host))
    return Response(202)


ACTIONS = {"reboot": _reboot, "os-migrateLive": _live_migrate}


def server_action(app: ComputeApp, request: ApiRequest) -> Response:
    instance = app.instance_or_404(request, request.params["server_id"])
    body = request.json()
    if not isinstance(body, dict) or len(body) != 1:
        raise HTTPError(400, "an action body has exactly one key: the action name", "badRequest")
    (name, action_body), = body.items()
    action = ACTIONS.get(name)
    if action is None:
        raise HTTPError(400, f"There is no such action: {name}", "badRequest")
    if instance["locked"] and not request.context.is_admin:
        raise HTTPError(409, f"Instance {instance['uuid']} is locked", "conflictingRequest")
    return action(app, request, instance, action_body)

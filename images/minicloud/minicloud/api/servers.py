"""``/servers``: create, list, detail, show, delete.

Create writes the instance (state ``building``, a floating port allocated) and
casts ``build_instances`` to the conductor, like Nova's API. Listing is scoped
to the caller's project unless an admin asks for ``all_tenants`` -- except in
release 1.1, whose security defect drops that scope for everyone.
"""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from minicloud.api import views
from minicloud.api.app import ApiRequest, ComputeApp, bool_param, paginate
from minicloud.api.microversion import APIVersion
from minicloud.db import api as db
from minicloud.defects import has_defect
from minicloud.web import HTTPError, Response

IMAGE_CHECK_CACHE_SECONDS = 300.0
_known_images: dict[str, float] = {}
_known_images_lock = threading.Lock()


def _check_image(app: ComputeApp, request: ApiRequest, image_ref: str) -> None:
    """400 unless the image service knows ``image_ref`` (Nova asks Glance the same way).

    Known-good ids are remembered for a while, so booting keeps working while
    the image service restarts during an upgrade.
    """
    with _known_images_lock:
        if _known_images.get(image_ref, 0.0) > time.monotonic():
            return
    url = f"{app.config.endpoint('image')}/v2/images/{image_ref}"
    http_request = urllib.request.Request(url, headers={"X-Auth-Token": request.context.token,
                                                        "Accept": "application/json"})
    try:
        with urllib.request.urlopen(http_request, timeout=10) as response:
            image = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise HTTPError(400, f"Image {image_ref} could not be found.", "badRequest") from None
        raise HTTPError(503, f"image service answered {exc.code}", "serviceUnavailable") from None
    except (OSError, ValueError) as exc:
        raise HTTPError(503, f"image service unreachable: {exc}", "serviceUnavailable") from None
    if image.get("status") != "active":
        raise HTTPError(400, f"Image {image_ref} is not active.", "badRequest")
    with _known_images_lock:
        _known_images[image_ref] = time.monotonic() + IMAGE_CHECK_CACHE_SECONDS


def _ref_id(ref: Any, name: str) -> str:
    """An id from ``imageRef``/``flavorRef``, which may also be a URL ending in the id."""
    if not isinstance(ref, (str, int)) or not str(ref).strip():
        raise HTTPError(400, f"Invalid input for field/attribute {name}.", "badRequest")
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


def _validate_networks(networks: Any) -> None:
    if networks is None or networks in ("none", "auto"):
        return
    if not isinstance(networks, list) or not all(isinstance(n, dict) for n in networks):
        raise HTTPError(400, "networks must be 'none', 'auto' or a list of objects", "badRequest")


def create_server(app: ComputeApp, request: ApiRequest) -> Response:
    body = request.json()
    server = body.get("server") if isinstance(body, dict) else None
    if not isinstance(server, dict):
        raise HTTPError(400, "Invalid input: 'server' is a required property", "badRequest")
    name = server.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise HTTPError(400, "Invalid input for field/attribute name.", "badRequest")
    if "description" in server and request.version < APIVersion("2.19"):
        raise HTTPError(400, "Additional properties are not allowed ('description' was unexpected)",
                        "badRequest")
    description = server.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 255):
        raise HTTPError(400, "Invalid input for field/attribute description.", "badRequest")
    _validate_networks(server.get("networks"))
    image_ref = _ref_id(server.get("imageRef"), "imageRef")
    flavor_ref = _ref_id(server.get("flavorRef"), "flavorRef")
    try:
        flavor = db.flavor_get(app.engine, flavor_ref)
    except db.NotFound:
        raise HTTPError(400, f"Flavor {flavor_ref} could not be found.", "badRequest") from None
    _check_image(app, request, image_ref)
    floating_ip = urlsplit(app.config.public_endpoint("datapath")).hostname
    try:
        port = db.allocate_floating_port(app.engine, db.floating_port_range(app.config.raw))
    except RuntimeError as exc:
        raise HTTPError(409, f"Cannot allocate a floating port: {exc}", "conflictingRequest") from None
    instance = db.instance_create(app.engine, {
        "name": name, "project_id": request.context.project_id, "user_id": request.context.user_id,
        "flavor_id": str(flavor["id"]), "image_ref": image_ref, "vm_state": "building",
        "task_state": "scheduling", "power_state": 0, "floating_ip": floating_ip, "floating_port": port,
        "description": description})
    uuid = instance["uuid"]
    try:
        app.cast(f"build of {uuid}",
                 lambda: app.conductor.build_instances(app.rpc_context(request.context), uuid))
    except HTTPError as exc:
        db.instance_update(app.engine, uuid, {"vm_state": "error", "task_state": None, "fault": exc.message})
        raise
    summary = views.server_summary(instance, app.base_url)
    summary.update({"adminPass": server.get("adminPass") or secrets.token_urlsafe(12),
                    "OS-DCF:diskConfig": "MANUAL", "security_groups": [{"name": "default"}]})
    return Response(202, {"server": summary}, {"Location": summary["links"][0]["href"]})


def _visible_instances(app: ComputeApp, request: ApiRequest, detail: bool) -> list[dict[str, Any]]:
    """The instances this caller may list, after the query's filters."""
    context, query = request.context, request.query
    release = app.config.release
    all_tenants = bool_param(query.get("all_tenants"), "all_tenants") if "all_tenants" in query else False
    if all_tenants and not context.is_admin and not has_defect(release, "all-tenants-unchecked"):
        raise HTTPError(403, "Policy doesn't allow os_compute_api:servers:detail:get_all_tenants "
                             "to be performed.", "forbidden")
    project_id: str | None = context.project_id
    requested_project = query.get("project_id") or query.get("tenant_id")
    if all_tenants or (context.is_admin and requested_project):
        project_id = requested_project
    if release.security_defect and not context.is_admin:
        project_id = None  # release 1.1's defect: the project scope is lost for non-admins
    if has_defect(release, "isolation-index-unfixed") and not detail and not context.is_admin:
        project_id = None  # the fix went into the detail listing only
    host = query.get("host") if context.is_admin else None  # Nova ignores host for non-admins
    instances = db.instance_list(app.engine, project_id=project_id, host=host)
    if "name" in query:
        try:
            pattern = re.compile(query["name"])
            instances = [i for i in instances if pattern.search(i["name"] or "")]
        except re.error:
            instances = [i for i in instances if query["name"] in (i["name"] or "")]
    if "status" in query:
        wanted = {s.strip().upper() for s in request.raw.query_all["status"]}
        instances = [i for i in instances if views.server_status(i) in wanted]
    return instances


def _host_status(app: ComputeApp) -> dict[str, str]:
    """host -> Nova's ``host_status`` (UP, DOWN, MAINTENANCE) of its compute agent."""
    result = {}
    for service in db.service_list(app.engine, app.config.service_down_time, binary="compute-agent"):
        if service["forced_down"] or not service["up"]:
            result[service["host"]] = "DOWN"
        else:
            result[service["host"]] = "MAINTENANCE" if service["disabled"] else "UP"
    return result


def _detail_context(app: ComputeApp, request: ApiRequest) -> dict[str, Any]:
    return {"base": app.base_url, "version": request.version, "is_admin": request.context.is_admin,
            "release": app.config.release,
            "flavors": {str(f["id"]): f for f in db.flavor_list(app.engine)},
            "host_status": _host_status(app) if request.context.is_admin else {}}


def list_servers(app: ComputeApp, request: ApiRequest, detail: bool) -> dict[str, Any]:
    instances = _visible_instances(app, request, detail)
    path = "servers/detail" if detail else "servers"
    page, links = paginate(instances, request.query, "uuid",
                           lambda marker, limit: f"{app.base_url}/{path}?limit={limit}&marker={marker}")
    if detail:
        shape = _detail_context(app, request)
        servers = [views.server_detail(i, **shape) for i in page]
    else:
        servers = [views.server_summary(i, app.base_url) for i in page]
    body: dict[str, Any] = {"servers": servers}
    if links:
        body["servers_links"] = links
    return body


def show_server(app: ComputeApp, request: ApiRequest) -> dict[str, Any]:
    instance = app.instance_or_404(request, request.params["server_id"])
    return {"server": views.server_detail(instance, **_detail_context(app, request))}


def delete_server(app: ComputeApp, request: ApiRequest) -> Response:
    instance = app.instance_or_404(request, request.params["server_id"])
    if instance["locked"] and not request.context.is_admin:
        raise HTTPError(409, f"Instance {instance['uuid']} is locked", "conflictingRequest")
    uuid = instance["uuid"]
    app.cast(f"delete of {uuid}",
             lambda: app.conductor.delete_instance(app.rpc_context(request.context), uuid))
    return Response(204)

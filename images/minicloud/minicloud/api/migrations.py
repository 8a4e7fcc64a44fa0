"""``/os-migrations`` and ``/servers/{id}/migrations`` (admin only).

From 2.59 (new in release 1.1, see DESIGN.md) migrations carry their ``uuid``,
are listed newest first and page with ``limit``/``marker`` (a migration uuid),
as in Nova. ``/servers/{id}/migrations`` lists only live migrations still in
progress, exactly like Nova; finished ones are in ``/os-migrations``.
"""
from __future__ import annotations

from typing import Any

from minicloud.api import views
from minicloud.api.app import ApiRequest, ComputeApp, paginate
from minicloud.api.microversion import APIVersion
from minicloud.auth import require_admin
from minicloud.db import api as db
from minicloud.web import HTTPError

PAGING_VERSION = APIVersion("2.59")


def _instances_by_uuid(app: ComputeApp) -> dict[str, dict[str, Any]]:
    return {i["uuid"]: i for i in db.instance_list(app.engine, include_deleted=True)}


def list_migrations(app: ComputeApp, request: ApiRequest) -> dict[str, Any]:
    require_admin(request.context, "os_compute_api:os-migrations:index")
    query = request.query
    migrations = db.migration_list(app.engine, instance_uuid=query.get("instance_uuid"))
    for key, field in (("status", "status"), ("source_compute", "source_host"),
                       ("migration_type", "migration_type")):
        if key in query:
            migrations = [m for m in migrations if m[field] == query[key]]
    links: list[dict[str, str]] = []
    if request.version >= PAGING_VERSION:
        if "changes-since" in query:
            migrations = [m for m in migrations if (m["updated_at"] or "") >= query["changes-since"]]
        migrations.sort(key=lambda m: (m["created_at"] or "", m["id"]), reverse=True)
        migrations, links = paginate(
            migrations, query, "uuid",
            lambda marker, limit: f"{app.base_url}/os-migrations?limit={limit}&marker={marker}")
    instances = _instances_by_uuid(app)
    body: dict[str, Any] = {"migrations": [
        views.migration_view(m, instances.get(m["instance_uuid"]), app.base_url, request.version)
        for m in migrations]}
    if links:
        body["migrations_links"] = links
    return body


def _server_migrations(app: ComputeApp, request: ApiRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    require_admin(request.context, "os_compute_api:servers:migrations:index")
    if request.version < APIVersion("2.23"):
        raise HTTPError(404, "Server migrations need microversion 2.23 or later.", "itemNotFound")
    instance = app.instance_or_404(request, request.params["server_id"])
    in_progress = [m for m in db.migration_list(app.engine, instance_uuid=instance["uuid"])
                   if m["migration_type"] == "live-migration"
                   and m["status"] not in views.IN_PROGRESS_EXCLUDED]
    return instance, in_progress


def list_server_migrations(app: ComputeApp, request: ApiRequest) -> dict[str, Any]:
    instance, migrations = _server_migrations(app, request)
    return {"migrations": [views.migration_view(m, instance, app.base_url, request.version, for_server=True)
                           for m in migrations]}


def show_server_migration(app: ComputeApp, request: ApiRequest) -> dict[str, Any]:
    instance, migrations = _server_migrations(app, request)
    wanted = request.params["migration_id"]
    for migration in migrations:
        if str(migration["id"]) == wanted:
            return {"migration": views.migration_view(migration, instance, app.base_url, request.version,
                                                      for_server=True)}
    raise HTTPError(404, f"In-progress live migration {wanted} is not found for server "
                         f"{instance['uuid']}.", "itemNotFound")

"""The compute API (Nova v2.1 subset with microversions), split by resource.

``build_router`` maps every route to its handler through the pipeline in
``minicloud.api.app`` (auth, microversion, echo); discovery and ``/healthz``
need no token.
"""
from __future__ import annotations

from minicloud.api import flavors, migrations, server_actions, servers, services, versions
from minicloud.api.app import ApiHandler, ComputeApp, versioned
from minicloud.web import Router


def build_router(app: ComputeApp) -> Router:
    router = Router()
    config = app.config
    router.add("GET", "/healthz", lambda _r: {"service": "compute-api", "host": config.host,
                                               "release": config.release.label,
                                               "version": config.release.service_version, "status": "ok"})
    router.add("GET", "/", lambda _r: versions.root(app))
    router.add("GET", "/v2.1", lambda _r: versions.v21(app))

    routes: list[tuple[str, str, ApiHandler]] = [
        ("GET", "/flavors", lambda a, r: flavors.list_flavors(a, r, detail=False)),
        ("GET", "/flavors/detail", lambda a, r: flavors.list_flavors(a, r, detail=True)),
        ("GET", "/flavors/{flavor_id}", flavors.show_flavor),
        ("POST", "/servers", servers.create_server),
        ("GET", "/servers", lambda a, r: servers.list_servers(a, r, detail=False)),
        ("GET", "/servers/detail", lambda a, r: servers.list_servers(a, r, detail=True)),
        ("GET", "/servers/{server_id}", servers.show_server),
        ("DELETE", "/servers/{server_id}", servers.delete_server),
        ("POST", "/servers/{server_id}/action", server_actions.server_action),
        ("GET", "/servers/{server_id}/migrations", migrations.list_server_migrations),
        ("GET", "/servers/{server_id}/migrations/{migration_id}", migrations.show_server_migration),
        ("GET", "/os-migrations", migrations.list_migrations),
        ("GET", "/os-services", services.list_services),
        ("PUT", "/os-services/{service_id}", services.update_service),
        ("GET", "/os-hypervisors", lambda a, r: services.list_hypervisors(a, r, detail=False)),
        ("GET", "/os-hypervisors/detail", lambda a, r: services.list_hypervisors(a, r, detail=True)),
        ("GET", "/os-hypervisors/{hypervisor_id}", services.show_hypervisor),
    ]
    # Static paths first: the router takes the first match, so /servers/detail
    # must not be swallowed by /servers/{server_id}.
    for method, path, handler in routes:
        router.add(method, "/v2.1" + path, versioned(app, handler))
    return router

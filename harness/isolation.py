"""Project isolation on every path a non-admin user can take to another project's servers.

A fix for a listing leak is often applied where the bug was reported and
nowhere else: ``GET /servers/detail`` scoped again while ``GET /servers``
still leaks, or the scope restored but ``all_tenants`` or a filter still
honoured for anyone. So the check asks, as the non-admin user, every listing
(index and detail, at 2.1 and the newest microversion), with every filter a
member can send (``all_tenants``, ``project_id``/``tenant_id``, ``name``,
``status``, ``host``, ``limit``/``marker``), and every show and action path
of a server of another project (``GET /servers/{id}`` must be 404, as for a
server that does not exist; an action must be 404 before its body is even
read; a server's migrations and ``/os-migrations`` are refused or empty).
Flavors and images are public in minicloud (one public image, public
flavors): nothing there belongs to a project.

``leaks`` is pure over a ``get`` callable so that unit tests can feed it a
leaking API; a leak is one line ``METHOD PATH: what leaked``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

#: (method, path, microversion, json body or None) -> (HTTP status, decoded JSON or None)
Request = Callable[[str, str, str, Any], tuple[int, Any]]

LATEST = "latest"
#: no such action: a scoped API answers 404 before it reads the body
PROBE_ACTION: dict[str, Any] = {"rollgate-isolation-probe": {}}


@dataclass(frozen=True)
class Foreign:
    """What the non-admin user must not reach: servers of another project, and what names them."""

    server_ids: tuple[str, ...]
    project_id: str = ""
    names: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()


def list_paths(foreign: Foreign) -> list[tuple[str, str]]:
    """(path, microversion) of every listing a member can send."""
    filters = ["", "?all_tenants=1", "?all_tenants=True", "?status=ACTIVE", "?limit=1000"]
    if foreign.project_id:
        project = quote(foreign.project_id)
        filters += [f"?project_id={project}", f"?tenant_id={project}",
                    f"?all_tenants=1&project_id={project}", f"?all_tenants=1&tenant_id={project}"]
    filters += [f"?name={quote(name)}" for name in foreign.names[:1]]
    filters += [f"?host={quote(host)}" for host in foreign.hosts[:1]]
    filters += [f"?limit=1&marker={quote(sid)}" for sid in foreign.server_ids[:1]]
    paths = [(f"/servers{f}", "2.1") for f in filters] + [(f"/servers/detail{f}", "2.1") for f in filters]
    return [*paths, ("/servers", LATEST), ("/servers/detail", LATEST),
            ("/servers?all_tenants=1", LATEST), ("/servers/detail?all_tenants=1", LATEST)]


def _listed(body: Any) -> set[str]:
    if not isinstance(body, dict):
        return set()
    return {str(s.get("id")) for s in body.get("servers") or () if isinstance(s, dict)}


def _mentioned(body: Any, ids: Iterable[str]) -> list[str]:
    text = repr(body)
    return [sid for sid in ids if sid in text]


def leaks(request: Request, foreign: Foreign) -> list[str]:
    """Every path on which the non-admin caller of ``request`` reaches a foreign server."""
    ids = set(foreign.server_ids)
    found: list[str] = []
    for path, version in list_paths(foreign):
        status, body = request("GET", path, version, None)
        if 200 <= status < 300:
            found += [f"GET {path} (microversion {version}): lists {sid}"
                      for sid in sorted(_listed(body) & ids)]
    for sid in foreign.server_ids:
        status, _ = request("GET", f"/servers/{sid}", "2.1", None)
        if status != 404:
            found.append(f"GET /servers/{sid}: answers {status}, expected 404 (another project's server)")
        status, _ = request("POST", f"/servers/{sid}/action", "2.1", PROBE_ACTION)
        if status != 404:
            found.append(f"POST /servers/{sid}/action: answers {status}, expected 404 "
                         "(another project's server)")
        status, body = request("GET", f"/servers/{sid}/migrations", LATEST, None)
        if 200 <= status < 300:
            found.append(f"GET /servers/{sid}/migrations: answers {status} for another project's server")
    status, body = request("GET", "/os-migrations", LATEST, None)
    if 200 <= status < 300:
        found += [f"GET /os-migrations: names {sid}" for sid in _mentioned(body, sorted(ids))]
    return found


def sdk_request(conn: Any) -> Request:
    """``Request`` over an openstacksdk connection's compute proxy (no exception on 4xx/5xx)."""
    def request(method: str, path: str, version: str, body: Any) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"microversion": version, "raise_exc": False}
        if body is not None:
            kwargs["json"] = body
        answer = conn.compute.request(path, method, **kwargs)
        try:
            return int(answer.status_code), answer.json()
        except ValueError:
            return int(answer.status_code), None
    return request


def foreign_servers(connect_admin: Callable[[], Any] | None, server_ids: Sequence[str]) -> Foreign:
    """The admin's servers, their project, names and hosts (ids only when there is no admin view)."""
    if connect_admin is None:
        return Foreign(tuple(server_ids))
    conn = connect_admin()
    project = str(conn.current_project_id or "")
    names, hosts = [], []
    for sid in server_ids:
        server = conn.compute.get_server(sid)
        names.append(str(server.name))
        if getattr(server, "compute_host", None):
            hosts.append(str(server.compute_host))
    return Foreign(tuple(server_ids), project, tuple(names), tuple(hosts))

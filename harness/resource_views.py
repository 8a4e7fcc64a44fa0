"""What the API says of a resource now, and who answers on its address: compared with the record.

A verify phase that reads data through the address recorded at create time
sees a stale world: an API that lost or corrupted the address, moved the
server to a host it is not on, or changed its flavor would go unnoticed, and
so would another server's workload answering on the address. So every verify
phase re-reads the API's current view (as admin, at microversion 2.1, where
every release agrees on the shape: ``flavor.id``, ``image.id``,
``OS-EXT-SRV-ATTR:host``), compares it with what ``create`` recorded (name,
status, flavor, image, address; the host may change by live migration), and
asks the workload answering on the address the API reports *now* who it is:
minicloud's workload ``GET /health`` answers its instance ``uuid`` and its
``host``, which must be this server's id and the host the API reports.

The functions here are pure (JSON in, one-line problems out) so that unit
tests can feed them a corrupted view.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VIEW_MICROVERSION = "2.1"


@dataclass(frozen=True)
class ServerView:
    """The fields of one server the verify phases compare, as the API shows them now."""

    server_id: str
    name: str
    status: str
    host: str | None  # OS-EXT-SRV-ATTR:host (admin only)
    address: str | None  # floating ip:port (addresses + metadata.dataplane_port)
    flavor: str
    image: str


def floating_address(body: Mapping[str, Any]) -> str | None:
    """``ip:port`` of a server body's floating address (port from ``metadata.dataplane_port``)."""
    port = (body.get("metadata") or {}).get("dataplane_port")
    for entries in (body.get("addresses") or {}).values():
        for entry in entries or ():
            if entry.get("OS-EXT-IPS:type") == "floating" and entry.get("addr") and port:
                return f"{entry['addr']}:{port}"
    return None


def _ref(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("id") or value.get("original_name") or "")
    return str(value or "")


def server_view(body: Mapping[str, Any]) -> ServerView:
    """The comparable view of one server body (``GET /servers/{id}``'s ``server``)."""
    return ServerView(server_id=str(body.get("id", "")), name=str(body.get("name", "")),
                      status=str(body.get("status", "")), host=body.get("OS-EXT-SRV-ATTR:host"),
                      address=floating_address(body), flavor=_ref(body.get("flavor")),
                      image=_ref(body.get("image")))


def view_problems(name: str, recorded: Mapping[str, str], view: ServerView) -> list[str]:
    """Problems of the API's current view against the record (empty: it says what was created).

    ``recorded`` holds ``name``, ``address``, ``flavor`` and ``image`` as created
    (an empty value was not recorded and is not compared). The host is not
    compared with the create-time host (live migration moves servers) but must
    be there: an admin view without a host lost track of the server.
    """
    problems = []
    if view.status != "ACTIVE":
        problems.append(f"{name}: the API reports status {view.status!r}, expected ACTIVE")
    if not view.host:
        problems.append(f"{name}: the API reports no host (OS-EXT-SRV-ATTR:host)")
    if view.address is None:
        problems.append(f"{name}: the API reports no floating address "
                        f"(created with {recorded.get('address') or '?'})")
    for field in ("name", "address", "flavor", "image"):
        want = recorded.get(field) or ""
        got = getattr(view, field)
        if want and got is not None and got != want:
            problems.append(f"{name}: the API reports {field} {got!r}, created with {want!r}")
    return problems


def disagreement(name: str, listed: ServerView, shown: ServerView) -> list[str]:
    """The list and the show view of one server must say the same."""
    fields = ("name", "status", "host", "address", "flavor", "image")
    differ = [f"{f} {getattr(listed, f)!r} vs {getattr(shown, f)!r}" for f in fields
              if getattr(listed, f) != getattr(shown, f)]
    return [f"{name}: GET /servers/detail and GET /servers/{{id}} disagree: {'; '.join(differ)}"] \
        if differ else []


def identity_problems(name: str, server_id: str, address: str, health: Mapping[str, Any] | None,
                      host: str | None) -> list[str]:
    """Whoever answers ``GET /health`` on ``address`` must be this server, on ``host`` (if known).

    ``health`` is the workload's answer (None: nothing answered; the data
    read on the same address reports that separately).
    """
    if health is None:
        return []
    problems = []
    uuid = str(health.get("uuid", ""))
    if uuid != server_id:
        problems.append(f"{name}: the workload answering on {address} is {uuid or '?'!s}, "
                        f"not this server ({server_id})")
    answered_host = health.get("host")
    if host and uuid == server_id and answered_host != host:
        problems.append(f"{name}: its workload runs on {answered_host!r}, the API says {host!r}")
    return problems


class ApiViewError(Exception):
    """The compute API did not answer a verify read (a product failure, recorded as a problem)."""


def _api_get(conn: Any, path: str) -> tuple[int, Any]:
    answer = conn.compute.get(path, microversion=VIEW_MICROVERSION, raise_exc=False)
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, None


def api_views(conn: Any) -> dict[str, ServerView]:
    """id -> view of every server the admin lists (``GET /servers/detail``, own project)."""
    status, body = _api_get(conn, "/servers/detail")
    if status != 200 or not isinstance(body, dict):
        raise ApiViewError(f"GET /servers/detail answered {status}")
    return {str(s.get("id")): server_view(s) for s in body.get("servers") or ()}


def api_show(conn: Any, server_id: str) -> ServerView | None:
    """The view of one server from ``GET /servers/{id}`` (None: 404)."""
    status, body = _api_get(conn, f"/servers/{server_id}")
    if status == 404:
        return None
    if status != 200 or not isinstance(body, dict):
        raise ApiViewError(f"GET /servers/{server_id} answered {status}")
    return server_view(body.get("server") or {})

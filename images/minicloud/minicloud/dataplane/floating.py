"""Validation shared by the datapath's control API and the network agent's API.

Both speak the same shape: ``PUT /floating/<port>`` ``{"target": "ip:port"}``,
``DELETE /floating/<port>``, ``GET /floating`` -> ``{"floating": [{"port",
"target", "address"}]}``.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from minicloud.web import HTTPError

FLOATING_PORTS = range(20000, 30000)


def parse_floating_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise HTTPError(400, f"floating port must be an integer, got {text!r}") from None
    if port not in FLOATING_PORTS:
        raise HTTPError(400, f"floating port {port} outside {FLOATING_PORTS.start}-{FLOATING_PORTS.stop - 1}")
    return port


def parse_target(body: Any) -> str:
    """The ``target`` of a PUT body, checked to be ``ipv4:port``."""
    target = body.get("target") if isinstance(body, dict) else None
    if not isinstance(target, str):
        raise HTTPError(400, 'body must be {"target": "ip:port"}')
    host, _, port = target.rpartition(":")
    try:
        ipaddress.IPv4Address(host)
        if not 0 < int(port) < 65536:
            raise ValueError(port)
    except ValueError:
        raise HTTPError(400, f"target must be ip:port, got {target!r}") from None
    return target


def entry_view(bind: str, port: int, target: str) -> dict[str, Any]:
    return {"port": port, "target": target, "address": f"{bind}:{port}"}


def table_view(bind: str, table: dict[int, str]) -> dict[str, Any]:
    return {"floating": [entry_view(bind, port, target) for port, target in sorted(table.items())]}

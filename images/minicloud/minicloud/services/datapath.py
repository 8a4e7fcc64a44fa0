"""The datapath service: TCP forwarders on floating ports, control API on ``:9697``.

Like Open vSwitch under neutron's agent: it is never upgraded by a rolling
upgrade and keeps forwarding while the network agent restarts. It restores
its table from ``state_dir/datapath.json`` at start.

The forwarders run in an asyncio loop on a thread of their own; the control
API is web.py's threaded server in the main thread (it owns the signals), and
hands every change to the loop.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from minicloud.config import Config
from minicloud.dataplane.floating import entry_view, parse_floating_port, parse_target, table_view
from minicloud.dataplane.forwarder import ForwarderTable
from minicloud.dataplane.healthz import add_healthz
from minicloud.web import HTTPError, Request, Response, Router, serve

LOG = logging.getLogger("minicloud.datapath")
T = TypeVar("T")


class ForwardingLoop:
    """The event loop thread that owns the forwarders."""

    def __init__(self, table: ForwarderTable) -> None:
        self.table = table
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="forwarders", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.run(self.table.restore(), timeout=60)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, drain: float) -> None:
        try:
            self.run(self.table.close(drain), timeout=drain + 5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


def build_router(config: Config, forwarding: ForwardingLoop) -> Router:
    router = Router()
    add_healthz(router, config)
    table = forwarding.table

    @router.route("GET", "/floating")
    def list_floating(_request: Request) -> dict[str, Any]:
        return table_view(config.bind, dict(table.targets))

    @router.route("GET", "/floating/{port}")
    def show_floating(request: Request) -> dict[str, Any]:
        port = parse_floating_port(request.params["port"])
        if port not in table.targets:
            raise HTTPError(404, f"floating port {port} not configured")
        return entry_view(config.bind, port, table.targets[port])

    @router.route("PUT", "/floating/{port}")
    def put_floating(request: Request) -> Response:
        port = parse_floating_port(request.params["port"])
        target = parse_target(request.json())
        try:
            created = forwarding.run(table.set(port, target))
        except OSError as exc:
            raise HTTPError(409, f"cannot listen on {config.bind}:{port}: {exc.strerror}") from None
        return Response(201 if created else 200, entry_view(config.bind, port, target))

    @router.route("DELETE", "/floating/{port}")
    def delete_floating(request: Request) -> Response:
        port = parse_floating_port(request.params["port"])
        if not forwarding.run(table.remove(port)):
            raise HTTPError(404, f"floating port {port} not configured")
        return Response(204)

    return router


def main(config: Config) -> int:
    table = ForwarderTable(config.bind, config.state_dir / "datapath.json")
    forwarding = ForwardingLoop(table)
    forwarding.start()
    return serve(build_router(config, forwarding), config.bind, config.port, "datapath",
                 config.shutdown_timeout,
                 on_stop=lambda: forwarding.stop(min(config.shutdown_timeout, 2.0)))

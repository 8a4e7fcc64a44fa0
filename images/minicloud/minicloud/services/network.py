"""The network agent (``:9696``): the floating-port API the cloud calls.

Like neutron-openvswitch-agent, it holds the desired state and programs the
datapath, which does the forwarding. It is upgraded and restarted like any
service: restarting it never touches a forwarder whose target is already
right, so forwarding is never interrupted. It keeps the desired table in
``state_dir/network.json`` and re-syncs the datapath at start and every
``RESYNC_INTERVAL`` seconds (a restarted or wiped datapath is repaired).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from minicloud.config import Config
from minicloud.dataplane.floating import entry_view, parse_floating_port, parse_target, table_view
from minicloud.dataplane.healthz import add_healthz
from minicloud.defects import has_defect
from minicloud.dataplane.httpjson import CallError, call_json
from minicloud.dataplane.statefile import read_json, write_json_atomic
from minicloud.web import HTTPError, Request, Response, Router, serve

LOG = logging.getLogger("minicloud.network")
RESYNC_INTERVAL = 2.0


class DesiredTable:
    """The agent's floating table, saved on every change; programs the datapath."""

    def __init__(self, state_path: Path, datapath: str, release: Any = None) -> None:
        self.state_path = state_path
        self.datapath = datapath
        self.lock = threading.Lock()  # one change at a time: table and datapath stay in step
        raw = read_json(state_path, None)
        self.known = raw is not None
        # (1.1+netstate-renamed reads the key its new writer was meant to use, "ports"; the
        # file says "floating", so it starts from an empty table it believes is known.)
        key = "ports" if has_defect(release, "netstate-renamed") else "floating"
        self.targets: dict[int, str] = {int(p): str(t) for p, t in (raw or {}).get(key, {}).items()}

    def _save(self) -> None:
        write_json_atomic(self.state_path, {"floating": {str(p): t for p, t in self.targets.items()}})
        self.known = True

    def put(self, port: int, target: str) -> None:
        """Program the datapath, then record; raises CallError (state unchanged) if it cannot."""
        with self.lock:
            call_json("PUT", f"{self.datapath}/floating/{port}", {"target": target})
            self.targets[port] = target
            self._save()

    def delete(self, port: int) -> bool:
        with self.lock:
            if port not in self.targets:
                return False
            try:
                call_json("DELETE", f"{self.datapath}/floating/{port}")
            except CallError as exc:
                if exc.status != 404:
                    raise
            del self.targets[port]
            self._save()
            return True

    def resync(self) -> int:
        """Make the datapath match the desired table; return the number of fixes."""
        with self.lock:
            actual = {int(e["port"]): str(e["target"])
                      for e in call_json("GET", f"{self.datapath}/floating")["floating"]}
            if not self.known:
                # First start with no saved table (e.g. state predating the agent):
                # adopt what the datapath forwards rather than tear it down.
                self.targets = dict(actual)
                self._save()
                LOG.info("adopted %d floating port(s) from the datapath", len(actual))
                return 0
            fixes = 0
            for port, target in self.targets.items():
                if actual.get(port) != target:
                    call_json("PUT", f"{self.datapath}/floating/{port}", {"target": target})
                    fixes += 1
            for port in actual.keys() - self.targets.keys():
                call_json("DELETE", f"{self.datapath}/floating/{port}")
                fixes += 1
            if fixes:
                LOG.info("re-synced the datapath: %d fix(es)", fixes)
            return fixes


def resync_loop(table: DesiredTable, stop: threading.Event) -> None:
    while True:
        try:
            table.resync()
        except (CallError, KeyError, TypeError, ValueError) as exc:
            LOG.warning("cannot re-sync the datapath (will retry): %s", exc)
        if stop.wait(RESYNC_INTERVAL):
            return


def build_router(config: Config, table: DesiredTable) -> Router:
    router = Router()
    add_healthz(router, config)
    address = config.endpoint("datapath").split("//", 1)[-1].rsplit(":", 1)[0]

    @router.route("GET", "/floating")
    def list_floating(_request: Request) -> dict[str, Any]:
        return table_view(address, dict(table.targets))

    @router.route("GET", "/floating/{port}")
    def show_floating(request: Request) -> dict[str, Any]:
        port = parse_floating_port(request.params["port"])
        if port not in table.targets:
            raise HTTPError(404, f"floating port {port} not configured")
        return entry_view(address, port, table.targets[port])

    @router.route("PUT", "/floating/{port}")
    def put_floating(request: Request) -> Response:
        port = parse_floating_port(request.params["port"])
        target = parse_target(request.json())
        created = port not in table.targets
        try:
            table.put(port, target)
        except CallError as exc:
            raise HTTPError(503, f"cannot program the datapath: {exc}") from None
        return Response(201 if created else 200, entry_view(address, port, target))

    @router.route("DELETE", "/floating/{port}")
    def delete_floating(request: Request) -> Response:
        port = parse_floating_port(request.params["port"])
        try:
            if not table.delete(port):
                raise HTTPError(404, f"floating port {port} not configured")
        except CallError as exc:
            raise HTTPError(503, f"cannot program the datapath: {exc}") from None
        return Response(204)

    return router


def main(config: Config) -> int:
    table = DesiredTable(config.state_dir / "network.json", config.endpoint("datapath"), config.release)
    stop = threading.Event()
    syncer = threading.Thread(target=resync_loop, args=(table, stop), name="resync", daemon=True)
    syncer.start()
    return serve(build_router(config, table), config.bind, config.port, "network",
                 config.shutdown_timeout, on_stop=stop.set)

"""Asyncio TCP forwarders: one listener per floating port, switchable at any time.

A switch changes where *new* connections go at once; a connection already
forwarded keeps its backend until one side closes it (like conntrack keeps an
established flow on its old DNAT target). A connect that is refused is retried
(bounded) against the port's current target, so a client that connected just
before a switch, or while its workload restarts, sees latency instead of a reset.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from pathlib import Path

from minicloud.dataplane.statefile import read_json, write_json_atomic

LOG = logging.getLogger("minicloud.dataplane.forwarder")
CONNECT_RETRY_FOR = 3.0  # seconds a refused backend connect is retried
CHUNK = 65536


class ForwarderTable:
    """Floating port -> target; owns the listeners; lives in one event loop."""

    def __init__(self, bind: str, state_path: Path) -> None:
        self.bind = bind
        self.state_path = state_path
        self.targets: dict[int, str] = {}
        self.servers: dict[int, asyncio.Server] = {}
        self.connections: set[ClientSide] = set()

    def saved_table(self) -> dict[int, str]:
        raw = read_json(self.state_path, {"floating": {}})
        return {int(port): str(target) for port, target in raw.get("floating", {}).items()}

    def _save(self) -> None:
        write_json_atomic(self.state_path, {"floating": {str(p): t for p, t in self.targets.items()}})

    async def restore(self) -> None:
        for port, target in self.saved_table().items():
            try:
                await self.set(port, target, save=False)
            except OSError as exc:
                LOG.error("cannot restore floating port %d -> %s: %s", port, target, exc)
        LOG.info("restored %d floating port(s) from %s", len(self.targets), self.state_path)

    async def set(self, port: int, target: str, save: bool = True) -> bool:
        """Create or switch a forwarder; True if created. Raises OSError if it cannot listen."""
        created = port not in self.servers
        if created:
            self.servers[port] = await asyncio.get_running_loop().create_server(
                functools.partial(ClientSide, self, port), self.bind, port, backlog=512,
                reuse_address=True)
        previous = self.targets.get(port)
        self.targets[port] = target  # from here on, new connections go to target
        if save and previous != target:
            self._save()
        if previous != target:
            LOG.info("floating %s:%d -> %s%s", self.bind, port, target,
                     "" if previous is None else f" (was {previous})")
        return created

    async def remove(self, port: int) -> bool:
        server = self.servers.pop(port, None)
        self.targets.pop(port, None)
        if server is None:
            return False
        server.close()
        self._save()
        LOG.info("floating %s:%d removed", self.bind, port)
        return True

    async def close(self, drain: float) -> None:
        """Stop listening, give open connections ``drain`` seconds, then cut them."""
        for server in self.servers.values():
            server.close()
        deadline = time.monotonic() + drain
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # poll: connections end when their peers close them
        for connection in list(self.connections):
            connection.abort()


class ClientSide(asyncio.Protocol):
    """A client's connection to a floating port, paired with one backend connection.

    Protocols rather than streams: no reader/writer objects and no pump tasks
    per connection, which roughly halves the cost of a short connection.
    (asyncio sets TCP_NODELAY on both transports itself.)
    """

    def __init__(self, table: ForwarderTable, port: int) -> None:
        self.table = table
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.backend: BackendSide | None = None
        self.pending: list[bytes] = []  # what the client sent before the backend answered
        self.client_eof = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.table.connections.add(self)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + CONNECT_RETRY_FOR
        while not self.closed:
            target = self.table.targets.get(self.port)
            if target is None:
                break
            host, _, target_port = target.rpartition(":")
            try:
                async with asyncio.timeout(2.0):  # cheaper than wait_for: no extra task
                    _, backend = await loop.create_connection(
                        lambda: BackendSide(self), host, int(target_port))
            except (TimeoutError, OSError) as exc:
                if time.monotonic() > deadline:
                    LOG.warning("floating %d: cannot reach %s: %s", self.port, target, exc)
                    break
                await asyncio.sleep(0.02)  # poll: the target may be switching or restarting
                continue
            if self.closed:
                backend.abort()
                return
            self.backend = backend
            for chunk in self.pending:
                backend.write(chunk)
            self.pending.clear()
            if self.transport is not None:
                self.transport.resume_reading()
            if self.client_eof:
                backend.write_eof()
            return
        self.abort()

    def data_received(self, data: bytes) -> None:
        if self.backend is not None:
            self.backend.write(data)
            return
        self.pending.append(data)
        if sum(map(len, self.pending)) > CHUNK * 16 and self.transport is not None:
            self.transport.pause_reading()  # bounded buffer until the backend is there

    def eof_received(self) -> bool:
        self.client_eof = True
        if self.backend is not None:
            self.backend.write_eof()
        return True  # keep our side open: the backend's answer may still come

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.table.connections.discard(self)
        if self.backend is not None:
            self.backend.close()

    def pause_writing(self) -> None:
        if self.backend is not None:
            self.backend.pause_reading()

    def resume_writing(self) -> None:
        if self.backend is not None:
            self.backend.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()  # sends what is buffered first

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def abort(self) -> None:
        if self.backend is not None:
            self.backend.abort()
        if self.transport is not None:
            self.transport.abort()


class BackendSide(asyncio.Protocol):
    """The forwarder's connection to the target; the backend closing ends the pair
    (HTTP servers close after ``Connection: close``: the client must see it at once)."""

    def __init__(self, client: ClientSide) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.client.write(data)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost closes the client

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.close()

    def pause_writing(self) -> None:
        self.client.pause_reading()

    def resume_writing(self) -> None:
        self.client.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def write_eof(self) -> None:
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

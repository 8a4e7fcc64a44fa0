"""The openstacksdk users' operations: a realistic mix of reads and create/delete cycles.

Plain blocking functions over an ``openstack.connection.Connection`` (Locust's
gevent makes them cooperative in its process). Each operation is recorded as
one ``kind: api, source: user`` event; a server that does not reach ACTIVE
within its deadline is a failed request, like any API error.
"""
from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from harness.traffic.config import ApiUsersConfig
from harness.traffic.probe import REUSED, ProbeResult, RequestRecorder, describe_error

SERVER_PREFIX = "rollgate-traffic-"


class ApiOperations:
    """One openstacksdk user: its connection, the seeded servers it may read, what it created."""

    def __init__(self, connection: Any, config: ApiUsersConfig, known_servers: list[str],
                 recorder: RequestRecorder, rng: random.Random) -> None:
        self.connection = connection
        self.config = config
        self.known_servers = known_servers
        self.recorder = recorder
        self.rng = rng
        self.created: set[str] = set()

    def operations(self) -> dict[str, Callable[[], None]]:
        return {
            "list_servers": self.list_servers,
            "show_server": self.show_server,
            "list_flavors": self.list_flavors,
            "list_images": self.list_images,
            "list_services": self.list_services,
            "create_delete_server": self.create_delete_server,
        }

    def _timed(self, target: str, op: str, call: Callable[[], Any]) -> Any:
        start = time.monotonic()
        try:
            value = call()
        except Exception as exc:
            end = time.monotonic()
            request_id = getattr(exc, "request_id", None)
            result = ProbeResult(start, end, False, getattr(exc, "status_code", None),
                                 describe_error(exc), request_id, b"")
            self.recorder.record(result, kind="api", target=target, conn=REUSED, source="user", op=op)
            return None
        result = ProbeResult(start, time.monotonic(), True, None, None, None, b"")
        self.recorder.record(result, kind="api", target=target, conn=REUSED, source="user", op=op)
        return value

    def list_servers(self) -> None:
        self._timed("compute", "list_servers", lambda: list(self.connection.compute.servers()))

    def show_server(self) -> None:
        if not self.known_servers:  # only seeded servers: others may be deleted under us
            self.list_servers()
            return
        server_id = self.rng.choice(self.known_servers)
        self._timed("compute", "show_server", lambda: self.connection.compute.get_server(server_id))

    def list_flavors(self) -> None:
        self._timed("compute", "list_flavors", lambda: list(self.connection.compute.flavors()))

    def list_images(self) -> None:
        self._timed("image", "list_images", lambda: list(self.connection.image.images()))

    def list_services(self) -> None:
        self._timed("compute", "list_services", lambda: list(self.connection.compute.services()))

    def _pick(self, listing: Callable[[], Any], wanted: str | None) -> str:
        items = list(listing())
        for item in items:
            if wanted is None or wanted in (item.name, item.id):
                return str(item.id)
        raise LookupError(f"no {'match for ' + wanted if wanted else 'item'} among {len(items)}")

    def _create_wait_delete(self) -> None:
        compute = self.connection.compute
        flavor = self._pick(compute.flavors, self.config.flavor)
        image = self._pick(self.connection.image.images, self.config.image)
        server = compute.create_server(name=f"{SERVER_PREFIX}{uuid.uuid4().hex[:8]}",
                                       flavor_id=flavor, image_id=image, networks="none")
        self.created.add(server.id)
        try:
            compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=0.2,
                                    wait=self.config.create_deadline_s)
        except Exception:
            # A user deletes a server that failed to build; left in ERROR it would fail every
            # later health gate (the rollback's too) for the one failure already recorded.
            self._delete_quietly(server.id)
            raise
        compute.delete_server(server.id)
        compute.wait_for_delete(server, interval=0.2, wait=self.config.create_deadline_s)
        self.created.discard(server.id)

    def create_delete_server(self) -> None:
        self._timed("compute", "create_delete_server", self._create_wait_delete)

    def _delete_quietly(self, server_id: str) -> None:
        try:
            self.connection.compute.delete_server(server_id, ignore_missing=True)
        except Exception:  # best effort: cleanup() and `rollgate down` try again
            return
        self.created.discard(server_id)

    def cleanup(self) -> None:
        """Delete what this user created and did not delete (traffic stopped mid-cycle)."""
        for server_id in list(self.created):
            try:
                self.connection.compute.delete_server(server_id, ignore_missing=True)
            except Exception:  # best effort: `rollgate down` reaps the rest by name
                continue
            self.created.discard(server_id)

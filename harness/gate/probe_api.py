"""The compute API as the gate's probes use it: plain HTTP with an admin token.

Probes need what openstacksdk does not offer: a request held open on purpose
(minicloud's ``X-Minicloud-Debug-Delay`` test hook), a build whose casts are
held in a named service (``X-Minicloud-Debug-Hold``), and a request sent to
one controller directly instead of through the load balancer. So they speak
HTTP themselves, with the token of the run's admin connection.
"""
from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DELAY_HEADER = "X-Minicloud-Debug-Delay"
HOLD_HEADER = "X-Minicloud-Debug-Hold"
#: Nova's microversion with ``OS-EXT-SRV-ATTR:host`` and uuid service ids; minicloud 1.0 has it.
MICROVERSION = "compute 2.53"
REQUEST_TIMEOUT = 30.0
PROBE_PREFIX = "rg-probe-"


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange: the status (0: no answer) and the body or the error."""

    status: int
    body: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class ComputeClient:
    """Requests to the compute API at ``base`` (``http://host:port``, with or without a path)."""

    def __init__(self, base: str, token: str) -> None:
        split = urlsplit(base if "//" in base else f"http://{base}")
        self.host = split.hostname or ""
        self.port = split.port or 80
        self.token = token
        self._flavor: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                timeout: float = REQUEST_TIMEOUT) -> Answer:
        """One request on a fresh connection; a reset or a refusal is an Answer with status 0."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        sent = {"X-Auth-Token": self.token, "OpenStack-API-Version": MICROVERSION,
                "Content-Type": "application/json", **(headers or {})}
        try:
            connection.request(method, f"/v2.1{path}", body=None if body is None else json.dumps(body),
                               headers=sent)
            response = connection.getresponse()
            raw = response.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw[:200].decode(errors="replace")
            return Answer(response.status, parsed,
                          None if 200 <= response.status < 300 else f"HTTP {response.status}: {parsed}")
        except (OSError, http.client.HTTPException) as exc:
            return Answer(0, None, f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    def slow_list(self, delay: str) -> Answer:
        """``GET /servers?limit=1`` held inside the service (after auth): ``delay`` is ``SECONDS`` or
        ``stop+SECONDS`` (until the service's stop began, then that long more)."""
        return self.request("GET", "/servers?limit=1", headers={DELAY_HEADER: delay})

    def boot(self, name: str, headers: dict[str, str] | None = None) -> Answer:
        """``POST /servers`` (no network; the first flavor and image the API lists)."""
        flavor, image = self._flavor_and_image()
        return self.request("POST", "/servers", {"server": {
            "name": name, "flavorRef": flavor, "imageRef": image, "networks": "none"}}, headers)

    def _flavor_and_image(self) -> tuple[str, str]:
        if self._flavor is None:
            flavors = self.request("GET", "/flavors")
            if not flavors.ok or not flavors.body.get("flavors"):
                raise RuntimeError(f"no flavor to boot a probe server: {flavors.error}")
            self._flavor = str(flavors.body["flavors"][0]["id"])
        return self._flavor, IMAGE_ID

    def server(self, server_id: str) -> Answer:
        return self.request("GET", f"/servers/{server_id}")

    def delete(self, server_id: str) -> Answer:
        return self.request("DELETE", f"/servers/{server_id}")

    def delete_settled(self, server_id: str, timeout: float) -> str | None:
        """Delete a probe server once its build settled (a delete racing a build can leave the
        instance behind), and wait until it is gone; None when gone, else what is left."""
        server = self.wait_server(server_id, lambda s: s.get("status") in ("ACTIVE", "ERROR"), timeout)
        self.delete(server_id)
        deadline = time.monotonic() + timeout
        while True:
            answer = self.server(server_id)
            if answer.status == 404 or (answer.ok and (answer.body or {}).get("server", {}).get("status")
                                        == "DELETED"):
                return None
            if time.monotonic() >= deadline:
                status = (server or {}).get("status")
                return f"server {server_id} ({status}) still there {timeout:g} s after its delete"
            time.sleep(0.1)

    def wait_server(self, server_id: str, done: Any, timeout: float, interval: float = 0.1
                    ) -> dict[str, Any] | None:
        """Poll ``GET /servers/{id}`` until ``done(server)``; the last server body seen (None: none)."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            answer = self.server(server_id)
            if answer.ok and isinstance(answer.body, dict) and isinstance(answer.body.get("server"), dict):
                last = dict(answer.body["server"])
                if last is not None and done(last):
                    return last
            if time.monotonic() >= deadline:
                return last
            time.sleep(interval)


#: minicloud's one image (DESIGN.md, "Public APIs": image).
IMAGE_ID = "3c0a4d0e-9f1c-4a55-8c36-1f0e5b5a0c01"


def server_host(server: dict[str, Any]) -> str | None:
    """Where the API says the server is scheduled (admins only)."""
    host = server.get("OS-EXT-SRV-ATTR:host")
    return str(host) if host else None

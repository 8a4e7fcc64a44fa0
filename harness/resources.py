"""Grenade-style resource phases: what users own must survive the upgrade.

OpenStack's grenade creates resources before an upgrade and checks them at
fixed points: ``create``; ``verify`` before; ``verify`` with the API down
(only the data plane can be checked: every compute-api is stopped for a
moment, and the instances must not notice); ``verify`` after; ``destroy``.
``verify`` is re-runnable: it reads what ``create`` recorded in
``results/<run-id>/resources.json`` and changes nothing, so the gate runs it
at every phase (and a person can run it again on a ``--keep`` cloud).

Each resource is a server (booted through the public API as the admin
project) with a value written into its workload over its floating address.
Verifying one means: the API still lists it ACTIVE (unless the API is down),
and the value written before the upgrade reads back unchanged.
"""
from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import RollgateError, ValidationError
from harness.timeline import Timeline
from harness.waiting import wait_until

LOG = logging.getLogger(__name__)
RESOURCE_PREFIX = "rollgate-res-"
RESOURCES_FILE = "resources.json"
RESOURCE_FIELDS = ("servers", "api_down", "boot_timeout_s")


class ResourceError(RollgateError):
    """The resources could not be created: the harness could not start judging (ERROR)."""


@dataclass(frozen=True)
class ResourceSpec:
    """The ``resources:`` section: how many servers, and whether to verify with the API down."""

    servers: int = 2
    api_down: bool = True
    boot_timeout_s: float = 60.0


def parse_resources(raw: Any, path: str = "<scenario>") -> ResourceSpec:
    """The typed ``resources:`` section; ValidationError names the field."""
    raw = raw or {}
    for key in raw:
        if key not in RESOURCE_FIELDS:
            raise ValidationError(path, f"resources.{key}",
                                  f"unknown field {key!r}; valid: {', '.join(RESOURCE_FIELDS)}")
    servers = raw.get("servers", 2)
    if not isinstance(servers, int) or isinstance(servers, bool) or servers < 1:
        raise ValidationError(path, "resources.servers", f"must be an integer >= 1, got {servers!r}")
    api_down = raw.get("api_down", True)
    if not isinstance(api_down, bool):
        raise ValidationError(path, "resources.api_down", f"must be true or false, got {api_down!r}")
    timeout = raw.get("boot_timeout_s", 60.0)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise ValidationError(path, "resources.boot_timeout_s", f"must be a number > 0, got {timeout!r}")
    return ResourceSpec(servers=servers, api_down=api_down, boot_timeout_s=float(timeout))


@dataclass
class Resource:
    """One server and the value its workload must keep."""

    name: str
    server_id: str
    address: str  # floating ip:port
    key: str
    value: str


@dataclass
class PhaseResult:
    """The outcome of one phase: ok, or every problem found (each one line)."""

    phase: str
    problems: list[str] = field(default_factory=list)
    checked: int = 0
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def _http(method: str, url: str, body: bytes | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _floating(server: Any) -> str | None:
    port = (server.metadata or {}).get("dataplane_port")
    for entries in (server.addresses or {}).values():
        for entry in entries:
            if entry.get("OS-EXT-IPS:type") == "floating" and port:
                return f"{entry['addr']}:{port}"
    return None


class ResourcePhases:
    """create / verify / verify_api_down / destroy over one cloud, recorded on its timeline."""

    def __init__(self, run_dir: Path, connect: Callable[[], Any], spec: ResourceSpec,
                 timeline: Timeline | None = None) -> None:
        self.run_dir = run_dir
        self.connect = connect
        self.spec = spec
        self.timeline = timeline
        self.resources: list[Resource] = self._load()

    # --- state ----------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.run_dir / RESOURCES_FILE

    def _load(self) -> list[Resource]:
        if not self.path.exists():
            return []
        return [Resource(**item) for item in json.loads(self.path.read_text())]

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(r) for r in self.resources], indent=2) + "\n")
        tmp.replace(self.path)

    def _emit(self, phase: str, stage: str, result: PhaseResult | None = None) -> None:
        if self.timeline is None:
            return
        event: dict[str, Any] = {"kind": "resources", "phase": stage, "name": phase}
        if result is not None:
            event.update(ok=result.ok, checked=result.checked, problems=result.problems[:10],
                         duration=round(result.duration_s, 3))
        self.timeline.emit(event)

    def _timed(self, phase: str, body: Callable[[PhaseResult], None]) -> PhaseResult:
        result = PhaseResult(phase)
        self._emit(phase, "start")
        started = time.monotonic()
        try:
            body(result)
        finally:
            result.duration_s = time.monotonic() - started
            self._emit(phase, "end", result)
        LOG.info("resources %s: %s (%d checked, %.1f s)", phase,
                 "ok" if result.ok else "; ".join(result.problems[:3]), result.checked, result.duration_s)
        return result

    # --- phases -----------------------------------------------------------------

    def create(self) -> PhaseResult:
        """Boot the servers, wait ACTIVE, write each one's value; ResourceError if the cloud can't."""
        def body(result: PhaseResult) -> None:
            conn = self.connect()
            compute = conn.compute
            flavor = next(iter(compute.flavors()), None)
            image = next(iter(conn.image.images()), None)
            if flavor is None or image is None:
                raise ResourceError("cannot create resources: the cloud has no flavor or no image")
            servers = [compute.create_server(name=f"{RESOURCE_PREFIX}{index}", flavor_id=flavor.id,
                                             image_id=image.id, networks="none")
                       for index in range(1, self.spec.servers + 1)]
            for server in servers:
                try:
                    active = compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"],
                                                     interval=0.2, wait=self.spec.boot_timeout_s)
                except Exception as exc:
                    raise ResourceError(
                        f"resource server {server.name} did not become ACTIVE: {exc}") from exc
                address = _floating(compute.get_server(active.id))
                if address is None:
                    raise ResourceError(f"resource server {server.name} has no floating address")
                key = f"rollgate-resource-{server.name}"
                value = f"{server.name}:{active.id}"
                self.resources.append(Resource(server.name, active.id, address, key, value))
                self._save()
                self._write(address, key, value)
                result.checked += 1
        return self._timed("create", body)

    def _write(self, address: str, key: str, value: str) -> None:
        def written() -> bool:
            status, _ = _http("PUT", f"http://{address}/kv/{key}", value.encode())
            return 200 <= status < 300
        wait_until(written, timeout=10.0, interval=0.1, what=f"write {key} to {address}")

    def _check_data(self, result: PhaseResult, resource: Resource) -> None:
        try:
            status, body = _http("GET", f"http://{resource.address}/kv/{resource.key}")
        except OSError as exc:
            result.problems.append(f"{resource.name}: data plane {resource.address} unreachable: {exc}")
            return
        if status != 200 or body.decode(errors="replace").strip() != resource.value:
            result.problems.append(f"{resource.name}: {resource.key} reads {status} {body[:60]!r}, "
                                   f"wrote {resource.value!r}")

    def verify(self, phase: str = "verify") -> PhaseResult:
        """Every resource listed ACTIVE by the API and its value intact. Re-runnable: changes nothing."""
        def body(result: PhaseResult) -> None:
            if not self.resources:
                result.problems.append("no resources were created (see the create phase)")
                return
            try:
                servers = {s.id: s for s in self.connect().compute.servers()}
            except Exception as exc:  # the cloud's API is broken: a product failure, recorded
                result.problems.append(f"the compute API cannot list servers: {type(exc).__name__}: {exc}")
                servers = {r.server_id: None for r in self.resources}
            for resource in self.resources:
                server = servers.get(resource.server_id)
                if resource.server_id not in servers:
                    result.problems.append(f"{resource.name} ({resource.server_id}) is gone from the API")
                elif server is not None and server.status != "ACTIVE":
                    result.problems.append(f"{resource.name} is {server.status}, expected ACTIVE")
                self._check_data(result, resource)
                result.checked += 1
        return self._timed(phase, body)

    def verify_dataplane(self, phase: str = "verify-dataplane") -> PhaseResult:
        """Only the data plane: every value readable over its floating address."""
        def body(result: PhaseResult) -> None:
            for resource in self.resources:
                self._check_data(result, resource)
                result.checked += 1
        return self._timed(phase, body)

    def verify_api_down(self, stop_api: Callable[[], Sequence[str]], start_api: Callable[[], None],
                        api_url: str) -> PhaseResult:
        """Stop every compute-api, prove the API refuses, verify the data plane, start the API again."""
        def body(result: PhaseResult) -> None:
            try:
                stopped = stop_api()
                try:
                    status, _ = _http("GET", api_url, timeout=1.0)
                except OSError:
                    status = None  # refused: down, as intended
                # A load balancer in front answers 503 (no backend): that is the API being down.
                if status is not None and status < 500:
                    result.problems.append(f"the compute API at {api_url} still answers {status} with "
                                           f"{', '.join(stopped)} stopped: the phase proves nothing")
                for resource in self.resources:
                    self._check_data(result, resource)
                    result.checked += 1
            finally:
                start_api()
        return self._timed("verify-api-down", body)

    def destroy(self) -> PhaseResult:
        """Delete every resource server and wait until the API no longer lists it."""
        def body(result: PhaseResult) -> None:
            ids = {r.server_id for r in self.resources}
            result.checked = len(ids)
            try:
                compute = self.connect().compute
                for resource in self.resources:
                    compute.delete_server(resource.server_id, ignore_missing=True)
            except Exception as exc:
                result.problems.append(f"cannot delete resources: {type(exc).__name__}: {exc}")
                return

            def gone() -> bool:
                return not ids & {s.id for s in compute.servers()}
            try:
                wait_until(gone, timeout=30.0, interval=0.2, what="resource servers deleted")
            except RollgateError as exc:
                result.problems.append(str(exc).splitlines()[0])
        return self._timed("destroy", body)


def project_isolation(connect_demo: Callable[[], Any], admin_server_ids: Sequence[str]) -> list[str]:
    """The security check: servers of another project a non-admin user can list (empty = not vulnerable)."""
    listed = {s.id for s in connect_demo().compute.servers()}
    return sorted(listed & set(admin_server_ids))

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
Verifying one means (``harness.resource_views``): the API's current view, in
its list and its show, says what was created (ACTIVE, same name, flavor,
image and floating address, on some host); the workload answering on the
address the API reports *now* is this server's own, on the host the API
reports; and the value written at create reads back unchanged there. With the
API down only the data plane can be asked: the workload on the recorded
address must be this server's, with its value.

Resources are created before the upgrade (``create``) and also while it runs
and after it (``create_more``: the gate's ``harness.gate.lifecycle`` probe, in
the mixed state and after the last step), so that what the new release wrote
is read back by whatever runs at the end, also after a rollback. Every phase
re-reads ``resources.json`` first: the record is the file, whoever added to it.
"""
from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import RollgateError, ValidationError
from harness.resource_views import (
    ServerView,
    api_show,
    api_views,
    disagreement,
    identity_problems,
    view_problems,
)
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
    flavor: str = ""  # flavor id as created ("" in records written before it was recorded)
    image: str = ""  # image id as created
    host: str = ""  # the host it was built on (informational: live migration moves it)
    created_in: str = "create"  # the phase that created it (create, create-mixed-api, ...)

    def recorded(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address, "flavor": self.flavor, "image": self.image}


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


#: resources whose data plane is checked at once by a verify phase
DATAPLANE_WORKERS = 8


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


def _workload_health(address: str) -> dict[str, Any] | None:
    """The workload's ``GET /health`` on ``address`` (None: nothing sensible answered). A transport
    error (refused, timed out) is raised as OSError: the address is unreachable."""
    status, body = _http("GET", f"http://{address}/health")
    try:
        answer = json.loads(body) if status == 200 else None
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


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

    def _refresh(self) -> None:
        """Re-read the record: another ResourcePhases of the run (a probe) may have added to it."""
        if self.path.exists():
            self.resources = self._load()

    def create(self) -> PhaseResult:
        """Boot the servers, wait ACTIVE, write each one's value; ResourceError if the cloud can't."""
        def body(result: PhaseResult) -> None:
            self._refresh()
            names = [f"{RESOURCE_PREFIX}{index}" for index in range(1, self.spec.servers + 1)]
            problems = self._boot(result, names, "create")
            if problems:  # before the upgrade: the harness cannot start judging
                raise ResourceError(problems[0])
        return self._timed("create", body)

    def create_more(self, phase: str, count: int = 1) -> PhaseResult:
        """Create ``count`` more resources now (during or after the upgrade), recorded with the
        others. A server the cloud cannot build now is a product failure: a problem, not raised."""
        def body(result: PhaseResult) -> None:
            self._refresh()
            names = [f"{RESOURCE_PREFIX}{phase}-{index}" for index in range(1, count + 1)]
            try:
                result.problems += self._boot(result, names, phase)
            except Exception as exc:  # the API refused the boot itself
                result.problems.append(f"{phase}: cannot create a server: {type(exc).__name__}: {exc}")
        return self._timed(phase, body)

    def _boot(self, result: PhaseResult, names: Sequence[str], phase: str) -> list[str]:
        """Boot ``names``, record each ACTIVE one and write its value; return the problems."""
        conn = self.connect()
        compute = conn.compute
        flavor = next(iter(compute.flavors()), None)
        image = next(iter(conn.image.images()), None)
        if flavor is None or image is None:
            return ["cannot create resources: the cloud has no flavor or no image"]
        servers = [compute.create_server(name=name, flavor_id=flavor.id, image_id=image.id,
                                         networks="none") for name in names]
        problems = []
        for server in servers:
            try:
                active = compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"],
                                                 interval=0.2, wait=self.spec.boot_timeout_s)
            except Exception as exc:
                problems.append(f"resource server {server.name} did not become ACTIVE: {exc}")
                continue
            shown = compute.get_server(active.id)
            address = _floating(shown)
            if address is None:
                problems.append(f"resource server {server.name} has no floating address")
                continue
            resource = Resource(server.name, active.id, address, f"rollgate-resource-{server.name}",
                                f"{server.name}:{active.id}", flavor=str(flavor.id), image=str(image.id),
                                host=str(getattr(shown, "compute_host", None) or ""), created_in=phase)
            self.resources.append(resource)
            self._save()
            try:
                self._write(address, resource.key, resource.value)
            except RollgateError as exc:
                problems.append(f"{server.name}: cannot write its value: {str(exc).splitlines()[0]}")
                continue
            result.checked += 1
        return problems

    def _write(self, address: str, key: str, value: str) -> None:
        def written() -> bool:
            try:
                status, _ = _http("PUT", f"http://{address}/kv/{key}", value.encode())
            except OSError:
                return False
            return 200 <= status < 300
        wait_until(written, timeout=10.0, interval=0.1, what=f"write {key} to {address}")

    def _check_data(self, result: PhaseResult, resource: Resource, address: str | None = None) -> None:
        address = address or resource.address
        try:
            status, body = _http("GET", f"http://{address}/kv/{resource.key}")
        except OSError as exc:
            result.problems.append(f"{resource.name}: data plane {address} unreachable: {exc}")
            return
        if status != 200 or body.decode(errors="replace").strip() != resource.value:
            result.problems.append(f"{resource.name}: {resource.key} reads {status} {body[:60]!r} "
                                   f"on {address}, wrote {resource.value!r}")

    def _check_dataplanes(self, result: PhaseResult,
                          targets: Sequence[tuple[Resource, str | None, str | None]]) -> None:
        """Identity and value of each (resource, address, host) over the data plane, side by side
        (an unreachable workload costs its timeouts once, not once per resource); the problems in
        the resources' order. An address that does not answer ``/health`` at all is reported
        unreachable once, without a second timeout on its value."""
        def one(target: tuple[Resource, str | None, str | None]) -> list[str]:
            resource, address, host = target
            address = address or resource.address
            scratch = PhaseResult(result.phase)
            try:
                health = _workload_health(address)
            except OSError as exc:
                return [f"{resource.name}: data plane {address} unreachable: {exc}"]
            scratch.problems += identity_problems(resource.name, resource.server_id, address, health, host)
            self._check_data(scratch, resource, address)
            return scratch.problems

        if targets:
            workers = min(DATAPLANE_WORKERS, len(targets))
            with ThreadPoolExecutor(workers, thread_name_prefix="verify") as pool:
                for problems in pool.map(one, targets):
                    result.problems += problems

    def verify(self, phase: str = "verify") -> PhaseResult:
        """Every resource as created in the API's current view (list and show), the workload on the
        address the API reports now its own, on the API's host, and its value intact.
        Re-runnable: changes nothing."""
        def body(result: PhaseResult) -> None:
            self._refresh()
            if not self.resources:
                result.problems.append("no resources were created (see the create phase)")
                return
            conn: Any = None
            listed: dict[str, ServerView] | None = None
            try:
                conn = self.connect()
                listed = api_views(conn)
            except Exception as exc:  # the cloud's API is broken: a product failure, recorded
                result.problems.append(f"the compute API cannot list servers: {type(exc).__name__}: {exc}")
            targets = []
            for resource in self.resources:  # the API one by one (one connection), then the data plane
                targets.append(self._verify_api(result, resource, conn, listed))
                result.checked += 1
            self._check_dataplanes(result, targets)
        return self._timed(phase, body)

    def _verify_api(self, result: PhaseResult, resource: Resource, conn: Any,
                    listed: dict[str, ServerView] | None) -> tuple[Resource, str | None, str | None]:
        """The API's view of ``resource`` against its record; returns where its data plane is to be
        checked: (resource, the address the API reports now, the API's host), None for unknown."""
        shown: ServerView | None = None
        if listed is not None:
            try:
                shown = api_show(conn, resource.server_id)
            except Exception as exc:
                result.problems.append(f"{resource.name}: the compute API cannot show it: {exc}")
            in_list = listed.get(resource.server_id)
            if in_list is None or shown is None:
                where = " and ".join(w for w, v in (("list", in_list), ("show", shown)) if v is None)
                result.problems.append(f"{resource.name} ({resource.server_id}) is gone from the API "
                                       f"({where})")
            else:
                result.problems += disagreement(resource.name, in_list, shown)
            shown = shown or in_list
        if shown is None:  # nothing to compare: the data plane at the recorded address still counts
            return resource, None, None
        result.problems += view_problems(resource.name, resource.recorded(), shown)
        return resource, shown.address or resource.address, shown.host

    def verify_dataplane(self, phase: str = "verify-dataplane") -> PhaseResult:
        """Only the data plane: every value readable over its floating address, from its own workload."""
        def body(result: PhaseResult) -> None:
            self._refresh()
            self._check_dataplanes(result, [(resource, None, None) for resource in self.resources])
            result.checked += len(self.resources)
        return self._timed(phase, body)

    def verify_api_down(self, stop_api: Callable[[], Sequence[str]], start_api: Callable[[], None],
                        api_url: str) -> PhaseResult:
        """Stop every compute-api, prove the API refuses, verify the data plane, start the API again."""
        def body(result: PhaseResult) -> None:
            self._refresh()
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
                self._check_dataplanes(result, [(resource, None, None) for resource in self.resources])
                result.checked += len(self.resources)
            finally:
                start_api()
        return self._timed("verify-api-down", body)

    def destroy(self) -> PhaseResult:
        """Delete every resource server and wait until the API no longer lists it."""
        def body(result: PhaseResult) -> None:
            self._refresh()
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


def project_isolation(connect_demo: Callable[[], Any], admin_server_ids: Sequence[str],
                      connect_admin: Callable[[], Any] | None = None) -> list[str]:
    """The security check: every path on which a non-admin user reaches a server of another
    project (``harness.isolation``; empty = not vulnerable). ``connect_admin`` adds the filters
    that name the admin's project, servers and hosts."""
    from harness.isolation import foreign_servers, leaks, sdk_request

    return leaks(sdk_request(connect_demo()), foreign_servers(connect_admin, admin_server_ids))

"""The contract probe: reads the public APIs at old and new microversions around the upgrade.

What it asks (``RESOURCES``): servers (list, detail, show of a seed server),
flavors (list, detail, show), os-services (and its ``binary=nova-compute``
filter), os-migrations (what the executor's live migrations left: a server
action's visible result) at each microversion, and the image API's images
(list, show). Microversions: the minimum (2.1) and every API maximum seen so
far (``GET /v2.1`` of each API: the old release's at the start, the new
release's once a controller runs it), each only where the answering API
supports it.

When: **before** (through the public endpoint, started in the background when
the probe is made, during traffic's baseline; the executor's first operation
waits for it), **during** (right after each controller's compute-api is
replaced to a release not read yet, on that controller directly: its address,
so the new release answers even while the load balancer drains it) and **after** (once the
executor and any rollback are done). The new release's APIs also get a
*sweep*: every microversion where Nova's schema of a resource changes, and the
one just below it (``contract_schemas.EDGES``), which is where an off-by-one
microversion gate shows, within the microversions the upgrade adds (from the
old release's maximum to the new one's: where a release's new gates are).
``harness.checks.contract`` judges the readings.

Cost: about 20-30 requests per point and 8 per sweep (1.0 -> 1.1), a few
milliseconds each: about 100 requests per run of the default scenario. The
readings and problems are saved in ``contract.json`` in the run directory.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from harness import clouds
from harness.checks.contract import COMPUTE_FILTER, Problem, Reading, contract_check, judge
from harness.checks.contract_schemas import EDGES, version_tuple
from harness.clouds.minicloud.health import healthz
from harness.gate.probes import PROBE_FACTORIES, ProbeContext, StepProbe
from harness.verdict import Check

LOG = logging.getLogger(__name__)

COMPUTE_API = "compute-api"
IMAGE_API = "image"
MIN_VERSION = "2.1"
REQUEST_TIMEOUT_S = 10.0
BEFORE_TIMEOUT_S = 120.0
#: requests in flight at once (the API serves them in threads; the cost is mostly waiting)
PARALLEL_REQUESTS = 4
#: compute resources read at every microversion: resource -> path (``{server}``, ``{flavor}``: ids)
RESOURCES = {
    "servers": "/servers", "servers/detail": "/servers/detail", "server": "/servers/{server}",
    "flavors": "/flavors", "flavors/detail": "/flavors/detail", "flavor": "/flavors/{flavor}",
    "os-services": "/os-services", COMPUTE_FILTER: "/os-services?binary=nova-compute",
    "os-migrations": "/os-migrations",
}
TRAFFIC_PREFIX = "rollgate-traffic-"


def _minus_one(version: str) -> str:
    major, minor = version_tuple(version)
    return f"{major}.{max(minor - 1, 1)}"


class ContractProbe(StepProbe):
    name = "contract"

    def __init__(self, context: ProbeContext) -> None:
        self.context = context
        self.readings: list[Reading] = []
        self.maxima: set[str] = set()  # every API maximum microversion seen
        self.first_release: str | None = None
        self.releases_read: set[str] = set()  # releases read "during" (directly on a controller)
        self.tracked: list[str] = [i.server_id for i in context.instances]
        self.flavor_id: str | None = None
        self.image_id: str | None = None
        self._session: Any = None
        self._closed = False
        # The "before" reading starts now, in the background: it is done during traffic's baseline;
        # the executor's first operation waits for it.
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="contract-probe")
        self._before: concurrent.futures.Future[None] | None = self._pool.submit(
            self._read_public, "before", False)

    # --- when ---------------------------------------------------------------

    def around(self, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> contextlib.AbstractContextManager[None]:
        return self._around(operation, args, kwargs)

    @contextlib.contextmanager
    def _around(self, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[None]:
        before, self._before = self._before, None
        if before is not None:
            before.result(timeout=BEFORE_TIMEOUT_S)  # (its failure is this probe's ERROR)
        yield  # (an operation that raised skips what follows: nothing new to read)
        host = args[0] if args else kwargs.get("host")
        service = args[1] if len(args) > 1 else kwargs.get("service")
        if operation == "replace_service" and service == COMPUTE_API and isinstance(host, str):
            self._read_controller(host)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.shutdown(wait=True)
            self._read_public("after", sweep=True)

    def checks(self) -> list[Check]:
        problems = judge(self.readings, self.tracked)
        self._save(problems)
        return [contract_check(self.readings, self.tracked, problems)]

    # --- where ------------------------------------------------------------------

    def session(self) -> Any:
        if self._session is None:
            self._session = self.context.cloud.connect().session
        return self._session

    def _public_urls(self) -> tuple[str, str]:
        session = self.session()
        compute = session.get_endpoint(service_type="compute", interface="public").rstrip("/")
        image = session.get_endpoint(service_type="image", interface="public").rstrip("/")
        return compute, image.removesuffix("/v2")

    def _address(self, host: str, service: str) -> tuple[str, int]:
        address: tuple[str, int] = self.context.cloud.backend.service_address(host, service)
        return address

    def _read_public(self, point: str, sweep: bool) -> None:
        compute, image = self._public_urls()
        if self.first_release is None:  # the release the run starts from, asked of a controller
            controllers = [h.name for h in self.context.cloud.state.hosts.values()
                           if COMPUTE_API in h.services]
            self.first_release = str(healthz(self._address(controllers[0], COMPUTE_API)).get("release"))
        self._read(point, "lb", None, compute, image, sweep)

    def _read_controller(self, host: str) -> None:
        """The first controller that runs a release not read yet, read directly (the others of that
        release run the same code: reading each would only cost time)."""
        ip, port = self._address(host, COMPUTE_API)
        release = str(healthz((ip, port)).get("release"))
        if release == self.first_release or release in self.releases_read:
            return
        self.releases_read.add(release)
        image_ip, image_port = self._address(host, IMAGE_API)
        self._read(f"during ({host}/{COMPUTE_API} at {release})", host, release,
                   f"http://{ip}:{port}/v2.1", f"http://{image_ip}:{image_port}", sweep=True)

    # --- what -------------------------------------------------------------------

    def _read(self, point: str, api: str, release: str | None, compute: str, image: str,
              sweep: bool) -> None:
        started, count = time.monotonic(), len(self.readings)
        maximum = self._maximum(compute)
        self.maxima.add(maximum)
        self._learn_ids(compute, image)
        versions = sorted({MIN_VERSION, *self.maxima}, key=version_tuple)
        versions = [v for v in versions if version_tuple(v) <= version_tuple(maximum)]
        jobs = [(resource, version) for version in versions for resource in RESOURCES]
        if sweep:  # the new microversions' edges: [the oldest maximum, this API's maximum]
            oldest = min(self.maxima, key=version_tuple)
            for resource, edges in EDGES.items():
                for version in sorted({v for e in edges for v in (e, _minus_one(e))}, key=version_tuple):
                    if (version not in versions
                            and version_tuple(oldest) <= version_tuple(version) <= version_tuple(maximum)):
                        jobs.append((resource, version))
        requests: list[tuple[str, str | None, str, dict[str, str]]] = []
        for resource, version in jobs:
            path = self._path(resource)
            if path is not None:
                requests.append((resource, version, f"{compute}{path}", {
                    "OpenStack-API-Version": f"compute {version}", "X-OpenStack-Nova-API-Version": version,
                    "Accept": "application/json"}))
        plain = {"Accept": "application/json"}
        requests.append(("images", None, f"{image}/v2/images", plain))
        if self.image_id:
            requests.append(("image", None, f"{image}/v2/images/{self.image_id}", plain))
        with concurrent.futures.ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
            list(pool.map(lambda r: self._fetch(point, api, release, *r), requests))
        self.context.timeline.emit({
            "kind": "probe", "probe": self.name, "point": point, "api": api, "release": release,
            "max_version": maximum, "requests": len(self.readings) - count,
            "seconds": round(time.monotonic() - started, 3)})

    def _maximum(self, compute: str) -> str:
        answer = self.session().get(compute, authenticated=False, raise_exc=False,
                                    timeout=REQUEST_TIMEOUT_S).json()
        return str(answer["version"]["version"])

    def _learn_ids(self, compute: str, image: str) -> None:
        """What the show requests need, asked once: a seed server (the traffic plan's instances,
        else the servers listed before, traffic's excepted), a flavor, an image."""
        session = self.session()
        if not self.tracked:
            answer = session.get(f"{compute}/servers", raise_exc=False, timeout=REQUEST_TIMEOUT_S)
            servers = answer.json().get("servers", []) if answer.status_code == 200 else []
            self.tracked = [s["id"] for s in servers
                            if not str(s.get("name", "")).startswith(TRAFFIC_PREFIX)]
        if self.flavor_id is None:
            answer = session.get(f"{compute}/flavors", raise_exc=False, timeout=REQUEST_TIMEOUT_S)
            flavors = answer.json().get("flavors") if answer.status_code == 200 else None
            self.flavor_id = flavors[0].get("id") if flavors else None
        if self.image_id is None:
            answer = session.get(f"{image}/v2/images", raise_exc=False, timeout=REQUEST_TIMEOUT_S)
            images = answer.json().get("images") if answer.status_code == 200 else None
            self.image_id = images[0].get("id") if images else None

    def _path(self, resource: str) -> str | None:
        path = RESOURCES[resource]
        if "{server}" in path:
            return path.format(server=self.tracked[0]) if self.tracked else None
        if "{flavor}" in path:
            return path.format(flavor=self.flavor_id) if self.flavor_id else None
        return path

    def _fetch(self, point: str, api: str, release: str | None, resource: str, version: str | None,
               url: str, headers: dict[str, str]) -> Reading:
        t = time.monotonic()
        try:
            answer = self.session().get(url, headers=headers, raise_exc=False, timeout=REQUEST_TIMEOUT_S)
            try:
                body = answer.json()
            except ValueError:
                body = answer.text[:200]
            reading = Reading(point, api, release, resource, version, answer.status_code, body, t)
        except Exception as exc:  # an API that does not answer is the cloud's failure, judged
            reading = Reading(point, api, release, resource, version, 0, None, t,
                              error=f"{type(exc).__name__}: {exc}"[:200])
        self.readings.append(reading)
        return reading

    def _save(self, problems: list[Problem]) -> None:
        rows = [{"point": r.point, "api": r.api, "release": r.release, "resource": r.resource,
                 "version": r.version, "status": r.status, "t": round(r.t, 6), "error": r.error}
                for r in self.readings]
        found = [{"kind": p.kind, "message": p.message} for p in problems]
        path = self.context.run_dir / "contract.json"
        path.write_text(json.dumps({"tracked": self.tracked, "readings": rows, "problems": found},
                                   indent=1) + "\n")


def contract_probe(context: ProbeContext) -> StepProbe | None:
    """minicloud only: the probe reads each controller's APIs directly, at the address and
    ``/healthz`` the backend gives; a cloud whose profile does not list the probe gets none."""
    if not clouds.profile(context.scenario.cloud).probes("contract"):
        return None
    return ContractProbe(context)


PROBE_FACTORIES.append(contract_probe)

"""Grenade's nova resource checks for real OpenStack: servers, flavors and Placement allocations.

The fake virt driver runs no guest, so there is no data plane to read a
value back from (``harness.resources`` does that on minicloud). What a user
owns here is the server record and what Placement holds for it, so each
resource records, at create: the server's id, flavor and host, and its
allocations (resource class -> amount, on the resource provider of its host).
``verify`` (re-runnable, changes nothing) finds every server still ACTIVE on a
known compute host with the same flavor, and Placement still holding the same
amounts for it on the provider of the host the server is on now (a live
migration moves a server and its allocation together; an allocation left on
the old host, or none at all, is a problem). With the compute API down only
Placement can be asked: the allocations must still be there.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.resources import RESOURCE_PREFIX, PhaseResult, ResourceError, ResourcePhases, ResourceSpec
from harness.timeline import Timeline
from harness.waiting import wait_until

OPENSTACK_RESOURCES_FILE = "resources-openstack.json"
PLACEMENT_MICROVERSION = "1.28"  # allocations with consumer generation; in every supported release

Allocations = dict[str, dict[str, int]]  # resource provider name -> resource class -> amount


@dataclass
class ServerRecord:
    """One server as created: what verify compares against."""

    name: str
    server_id: str
    flavor: str
    host: str
    resources: dict[str, int] = field(default_factory=dict)  # resource class -> amount


def allocations(conn: Any, consumer: str) -> Allocations:
    """Placement's allocations of ``consumer``, keyed by provider *name* (a compute's host name)."""
    names = {rp.id: rp.name for rp in conn.placement.resource_providers()}
    answer = conn.placement.get(f"/allocations/{consumer}",
                                headers={"OpenStack-API-Version": f"placement {PLACEMENT_MICROVERSION}"})
    answer.raise_for_status()
    held = answer.json().get("allocations") or {}
    return {names.get(rp, rp): {k: int(v) for k, v in (entry.get("resources") or {}).items()}
            for rp, entry in held.items()}


def compare(record: ServerRecord, server: Any, held: Allocations, hosts: Sequence[str]) -> list[str]:
    """Problems of one server against its record (empty: intact)."""
    problems = []
    if server is None:
        return [f"{record.name} ({record.server_id}) is gone from the API"]
    if server.status != "ACTIVE":
        problems.append(f"{record.name} is {server.status}, expected ACTIVE")
    host = server.compute_host
    if host not in hosts:
        problems.append(f"{record.name} is on {host!r}, not on a known compute host ({', '.join(hosts)})")
    flavor = _flavor_name(server)
    if flavor != record.flavor:
        problems.append(f"{record.name} has flavor {flavor!r}, created with {record.flavor!r}")
    problems += compare_allocations(record, held, host)
    return problems


def compare_allocations(record: ServerRecord, held: Allocations, host: str | None) -> list[str]:
    if not held:
        return [f"{record.name}: Placement holds no allocation for it (created with {record.resources})"]
    problems = []
    if host is not None and set(held) != {host}:
        problems.append(f"{record.name}: allocations on {sorted(held)}, but the server is on {host}")
    total: dict[str, int] = {}
    for amounts in held.values():
        for resource_class, amount in amounts.items():
            total[resource_class] = total.get(resource_class, 0) + amount
    if total != record.resources:
        problems.append(f"{record.name}: Placement holds {total}, created with {record.resources}")
    return problems


def _flavor_name(server: Any) -> str:
    flavor = server.flavor
    if isinstance(flavor, Mapping):
        return str(flavor.get("original_name") or flavor.get("name") or flavor.get("id") or "")
    return str(getattr(flavor, "original_name", None) or getattr(flavor, "name", None) or "")


class OpenStackResourcePhases(ResourcePhases):
    """create / verify / verify_api_down / destroy on real OpenStack (``destroy`` is the base's)."""

    def __init__(self, run_dir: Path, connect: Callable[[], Any], spec: ResourceSpec,
                 compute_hosts: Sequence[str], timeline: Timeline | None = None,
                 flavor: str = "m1.tiny") -> None:
        self.compute_hosts = list(compute_hosts)
        self.flavor = flavor
        self.records: list[ServerRecord] = []
        super().__init__(run_dir, connect, spec, timeline)
        self.records = self._load_records()

    @property
    def path(self) -> Path:
        return self.run_dir / OPENSTACK_RESOURCES_FILE

    def _load(self) -> list[Any]:
        return []  # the base's records are minicloud's; ours are ``records``

    def _load_records(self) -> list[ServerRecord]:
        if not self.path.exists():
            return []
        return [ServerRecord(**item) for item in json.loads(self.path.read_text())]

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(r) for r in self.records], indent=2) + "\n")
        tmp.replace(self.path)

    @property
    def server_ids(self) -> list[str]:
        return [r.server_id for r in self.records]

    def create(self) -> PhaseResult:
        """Boot the servers, wait ACTIVE, record host, flavor and allocations; ResourceError if not."""
        def body(result: PhaseResult) -> None:
            conn = self.connect()
            compute = conn.compute
            flavor = compute.find_flavor(self.flavor, ignore_missing=True)
            image = next(iter(conn.image.images()), None)
            if flavor is None or image is None:
                raise ResourceError(f"cannot create resources: no flavor {self.flavor!r} or no image")
            servers = [compute.create_server(name=f"{RESOURCE_PREFIX}{index}", flavor_id=flavor.id,
                                             image_id=image.id, networks="none")
                       for index in range(1, self.spec.servers + 1)]
            for server in servers:
                try:
                    active = compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"],
                                                     interval=0.5, wait=self.spec.boot_timeout_s)
                except Exception as exc:
                    raise ResourceError(
                        f"resource server {server.name} did not become ACTIVE: {exc}") from exc
                active = compute.get_server(active.id)
                held = allocations(conn, active.id)
                if len(held) != 1:
                    raise ResourceError(f"resource server {server.name}: allocations on {sorted(held)}, "
                                        "expected exactly one provider")
                self.records.append(ServerRecord(server.name, active.id, _flavor_name(active),
                                                 str(active.compute_host), next(iter(held.values()))))
                self._save()
                result.checked += 1
        return self._timed("create", body)

    def verify(self, phase: str = "verify") -> PhaseResult:
        """Every server ACTIVE on a known host, same flavor, same allocations where it is now."""
        def body(result: PhaseResult) -> None:
            if not self.records:
                result.problems.append("no resources were created (see the create phase)")
                return
            try:
                conn = self.connect()
                servers = {s.id: s for s in conn.compute.servers(details=True)}
            except Exception as exc:  # the cloud's API is broken: a product failure, recorded
                result.problems.append(f"the compute API cannot list servers: {type(exc).__name__}: {exc}")
                return
            for record in self.records:
                try:
                    held = allocations(conn, record.server_id)
                except Exception as exc:
                    result.problems.append(f"{record.name}: Placement cannot be asked: {exc}")
                    held = {}
                result.problems += compare(record, servers.get(record.server_id), held, self.compute_hosts)
                result.checked += 1
        return self._timed(phase, body)

    def verify_dataplane(self, phase: str = "verify-dataplane") -> PhaseResult:
        """No guests on the fake driver: Placement must still hold every server's allocations."""
        def body(result: PhaseResult) -> None:
            conn = self.connect()
            for record in self.records:
                try:
                    held = allocations(conn, record.server_id)
                except Exception as exc:
                    result.problems.append(f"{record.name}: Placement cannot be asked: {exc}")
                    continue
                result.problems += compare_allocations(record, held, None)
                result.checked += 1
        return self._timed(phase, body)

    def verify_api_down(self, stop_api: Callable[[], Sequence[str]], start_api: Callable[[], None],
                        api_url: str) -> PhaseResult:
        """Stop nova-api, then ask Placement only; start nova-api again."""
        def body(result: PhaseResult) -> None:
            try:
                stop_api()
                inner = self.verify_dataplane("verify-api-down-placement")
                result.problems += inner.problems
                result.checked += inner.checked
            finally:
                start_api()
        return self._timed("verify-api-down", body)

    def destroy(self) -> PhaseResult:
        """Delete every server, wait until the API lists none, and Placement holds nothing for them."""
        def body(result: PhaseResult) -> None:
            ids = {r.server_id for r in self.records}
            result.checked = len(ids)
            try:
                conn = self.connect()
                for record in self.records:
                    conn.compute.delete_server(record.server_id, ignore_missing=True)
                wait_until(lambda: not ids & {s.id for s in conn.compute.servers()}, timeout=60.0,
                           interval=0.5, what="resource servers deleted")
                result.problems += [f"{r.name}: Placement still holds an allocation after delete"
                                    for r in self.records if allocations(conn, r.server_id)]
            except Exception as exc:
                result.problems.append(f"cannot delete resources: {type(exc).__name__}: {str(exc)[:300]}")
        return self._timed("destroy", body)

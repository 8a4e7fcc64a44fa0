"""A fast in-memory cloud implementing ``CloudOps``, that watches its own rules.

The fake does what minicloud would do at the level the executor sees it
(releases per service, schema expand/contract, online migrations, RPC pin,
load-balancer drain, disabled computes, instances that move) and records a
violation whenever the executor breaks a rolling-upgrade rule: more hosts
unavailable than allowed, N and N+2 running together, contract before every
service is at the target or before the data migrations are done, unpinning a
mixed cloud, an instance lost. Tests assert ``violations == []``.

Faults: ``arm_crash(n)`` raises ``SimulatedCrash`` (a BaseException, like a
killed harness) at the n-th mutating operation, before or after its effect;
a release label ending in ``+nostart`` makes the compute agent of
``compute-2`` fail to start (minicloud's defect variant); ``fail_next`` makes
an operation raise ``OperationFailed``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.executor.ops import CheckReport, HealthReport, OperationFailed
from harness.scenario import Topology, release_key, release_series_index


class SimulatedCrash(BaseException):
    """The harness died mid-step (kill -9): nothing catches it but the test."""


@dataclass
class Instance:
    host: str
    data: str
    alive: bool = True
    interruptions: int = 0


@dataclass
class FakeCloud:
    releases: dict[str, dict[str, str]]  # host -> upgradable service -> release
    roles: dict[str, tuple[str, ...]]
    max_unavailable: int = 1
    instances: dict[str, Instance] = field(default_factory=dict)
    schema: str = "1.0"  # newest expanded series
    contracted: str = "1.0"  # newest contracted series
    rows_to_migrate: int = 0
    pin: str | None = "auto"
    drained: set[str] = field(default_factory=set)
    disabled: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    precheck_level: str = "ok"
    max_seen_unavailable: int = 0
    _crash_at: int | None = None
    _crash_after: bool = False
    _mutations: int = 0
    _fail: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_topology(cls, topology: Topology, max_unavailable: int = 1,
                      instances_per_compute: int = 2) -> FakeCloud:
        releases = {h.name: {s: h.releases[s] for s in h.upgradable_services}
                    for h in topology.hosts if h.upgradable_services}
        cloud = cls(releases=releases, roles={h.name: h.roles for h in topology.hosts},
                    max_unavailable=max_unavailable)
        oldest = min((r for rs in releases.values() for r in rs.values()), key=release_key, default="1.0")
        cloud.schema = cloud.contracted = oldest.partition("+")[0]
        for host in topology.with_role("compute"):
            for index in range(instances_per_compute):
                name = f"vm-{host.name}-{index}"
                cloud.instances[name] = Instance(host=host.name, data=f"data of {name}")
        return cloud

    # --- fault injection --------------------------------------------------------

    def arm_crash(self, at_mutation: int, *, after_effect: bool = False) -> None:
        """Crash at the n-th mutating operation from now (1 = the next one)."""
        self._crash_at = self._mutations + at_mutation
        self._crash_after = after_effect

    def disarm(self) -> None:
        self._crash_at = None

    def fail_next(self, operation: str, times: int = 1) -> None:
        self._fail[operation] = times

    def _mutate(self, operation: str, *args: str) -> bool:
        """Count a mutating call; crash before it if armed. True: crash after the effect."""
        self.calls.append((operation, *args))
        if self._fail.get(operation, 0) > 0:
            self._fail[operation] -= 1
            raise OperationFailed(operation, "injected failure")
        self._mutations += 1
        if self._crash_at == self._mutations:
            self._crash_at = None
            if not self._crash_after:
                raise SimulatedCrash(f"crash before {operation} {args}")
            return True
        return False

    # --- the rules ------------------------------------------------------------------

    def unavailable(self) -> set[str]:
        return self.drained | self.disabled | self.busy

    def _check(self, where: str) -> None:
        down = self.unavailable()
        self.max_seen_unavailable = max(self.max_seen_unavailable, len(down))
        if len(down) > self.max_unavailable:
            self.violations.append(f"{where}: {len(down)} hosts unavailable {sorted(down)} "
                                   f"> max_unavailable {self.max_unavailable}")
        series = {release_series_index(r) for rs in self.releases.values() for r in rs.values()}
        if series and max(series) - min(series) > 1:
            self.violations.append(f"{where}: N and N+2 together: {self.release_set()}")
        lost = [name for name, inst in self.instances.items() if not inst.alive]
        if lost:
            self.violations.append(f"{where}: instances lost: {lost}")

    def release_set(self) -> set[str]:
        return {r for rs in self.releases.values() for r in rs.values()}

    def _series_mixed(self) -> bool:
        return len({release_series_index(r) for r in self.release_set()}) > 1

    def running(self, host: str, service: str) -> bool:
        release = self.releases.get(host, {}).get(service, "")
        return not (release.endswith("+nostart") and host == "compute-2" and service == "compute-agent")

    # --- CloudOps -------------------------------------------------------------------

    def upgrade_check(self) -> CheckReport:
        self.calls.append(("upgrade_check",))
        return CheckReport(self.precheck_level, "fake check")

    def db_expand(self, release: str) -> None:
        after = self._mutate("db_expand", release)
        base = release.partition("+")[0]
        if release_key(base) > release_key(self.schema) and \
                release_series_index(base) != release_series_index(self.schema):
            self.rows_to_migrate = len(self.instances) + 3
            self.schema = base
        self._check("db_expand")
        self._crash(after)

    def db_contract(self, release: str) -> None:
        after = self._mutate("db_contract", release)
        older = sorted(f"{h}/{s} {r}" for h, rs in self.releases.items() for s, r in rs.items()
                       if release_series_index(r) < release_series_index(release))
        if older or self.rows_to_migrate:
            self.violations.append(f"contract with older services {older} or "
                                   f"{self.rows_to_migrate} rows left")
            raise OperationFailed("db contract", f"still older: {older}; rows left {self.rows_to_migrate}")
        self.contracted = release.partition("+")[0]
        self._check("db_contract")
        self._crash(after)

    def online_data_migrations(self, max_count: int) -> bool:
        after = self._mutate("online_data_migrations", str(max_count))
        self.rows_to_migrate = max(0, self.rows_to_migrate - max_count)
        self._crash(after)
        return self.rows_to_migrate > 0

    def pin_rpc_versions(self, level: str) -> None:
        after = self._mutate("pin_rpc_versions", level)
        self.pin = level
        self._crash(after)

    def unpin_rpc_versions(self) -> None:
        after = self._mutate("unpin_rpc_versions")
        if self._series_mixed():
            self.violations.append(f"unpinned a mixed cloud: {sorted(self.release_set())}")
        self.pin = None
        self._crash(after)

    def replace_service(self, host: str, service: str, release: str, stop_timeout: float) -> None:
        after = self._mutate("replace_service", host, service, release)
        if service not in self.releases.get(host, {}):
            raise OperationFailed("replace", f"no service {service} on {host}")
        self.busy.add(host)
        self.releases[host][service] = release
        self._check(f"replace {host}/{service} -> {release}")
        self.busy.discard(host)
        self._crash(after)

    def drain_api(self, host: str) -> None:
        after = self._mutate("drain_api", host)
        self.drained.add(host)
        self._check(f"drain {host}")
        self._crash(after)

    def undrain_api(self, host: str) -> None:
        after = self._mutate("undrain_api", host)
        self.drained.discard(host)
        self._crash(after)

    def disable_compute(self, host: str, reason: str) -> None:
        after = self._mutate("disable_compute", host)
        self.disabled.add(host)
        self._check(f"disable {host}")
        self._crash(after)

    def enable_compute(self, host: str) -> None:
        after = self._mutate("enable_compute", host)
        self.disabled.discard(host)
        self._crash(after)

    def list_instances(self, host: str) -> list[str]:
        return sorted(name for name, inst in self.instances.items() if inst.host == host)

    def _destination(self, source: str) -> str:
        candidates = [h for h, roles in self.roles.items()
                      if "compute" in roles and h != source and h not in self.unavailable()
                      and self.running(h, "compute-agent")]
        if not candidates:
            raise OperationFailed("migrate", f"no valid host to move instances of {source} to")
        return min(candidates, key=lambda h: (len(self.list_instances(h)), h))

    def live_migrate(self, instance: str, source: str, timeout: float) -> str:
        after = self._mutate("live_migrate", instance, source)
        dest = self._destination(source)
        self.instances[instance].host = dest
        self._crash(after)
        return dest

    def cold_migrate(self, instance: str, source: str, timeout: float) -> str:
        after = self._mutate("cold_migrate", instance, source)
        dest = self._destination(source)
        self.instances[instance].host = dest
        self.instances[instance].interruptions += 1
        self._crash(after)
        return dest

    def reboot_host(self, host: str, timeout: float) -> None:
        after = self._mutate("reboot_host", host)
        self.busy.add(host)
        for name in self.list_instances(host):
            self.instances[name].interruptions += 1
        self._check(f"reboot {host}")
        self.busy.discard(host)
        self._crash(after)

    def health_gate(self, expected: Mapping[str, Mapping[str, str]], timeout: float) -> HealthReport:
        self.calls.append(("health_gate",))
        problems = []
        for host, services in sorted(expected.items()):
            for service, release in sorted(services.items()):
                actual = self.releases.get(host, {}).get(service)
                if actual != release:
                    problems.append(f"{host}/{service} runs {actual}, expected {release}")
                elif not self.running(host, service):
                    problems.append(f"{host}/{service} is down (exited at start)")
        problems += [f"instance {n} is not alive" for n, i in self.instances.items() if not i.alive]
        return HealthReport(not problems, tuple(problems))

    def _crash(self, after: bool) -> None:
        if after:
            raise SimulatedCrash("crash after the effect")

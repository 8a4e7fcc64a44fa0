"""The planner: topology + releases + policy + seed -> the whole plan, as data.

As in CockroachDB's mixedversion planner, the plan is generated before
anything runs, printed (``rollgate plan``), saved with the run and replayable:
every random choice comes from one seed, so the same scenario and seed give
the same plan, byte for byte.

The default order is Nova's documented rolling upgrade: pre-check; DB expand;
pin RPC (auto); conductors; schedulers; API nodes one at a time (drain,
replace, health, back in); computes in batches (disable, migrate instances
away, replace the agent, health, enable); network nodes; online data
migrations; finalize (unpin, DB contract). A patch update (same series) has
no schema or RPC change, so it skips expand, pin, migrations and finalize.
A rolling reboot uses the same batches with ``reboot-host`` in place of
``replace-service``.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.executor.steps import (
    DbContract,
    DbExpand,
    DisableCompute,
    DrainApi,
    EnableCompute,
    HealthGate,
    MigrateInstances,
    OnlineMigrations,
    Pause,
    PinRpc,
    PreCheck,
    RebootHost,
    ReplaceService,
    Step,
    UndrainApi,
    UnpinRpc,
    step_from_dict,
)
from harness.scenario import (
    DATA_PLANE_SERVICES,
    Host,
    Topology,
    Upgrade,
    UpgradePolicy,
    same_series,
)

PLAN_FORMAT = 1
API_SERVICES = ("identity", "image", "compute-api")


@dataclass(frozen=True)
class Plan:
    """A complete, serialisable upgrade (or rolling reboot) plan."""

    scenario: str
    seed: int
    action: str
    from_release: str
    to_release: str
    policy: dict[str, Any]
    initial_releases: dict[str, dict[str, str]]  # host -> upgradable service -> release
    steps: tuple[Step, ...]
    max_unavailable: int = 1
    auto_rollback: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def finalize_index(self) -> int | None:
        """Index of the first finalize step, or None if the plan never finalizes."""
        return next((i for i, s in enumerate(self.steps) if s.finalize), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT, "scenario": self.scenario, "seed": self.seed,
            "action": self.action, "from": self.from_release, "to": self.to_release,
            "policy": self.policy, "max_unavailable": self.max_unavailable,
            "auto_rollback": self.auto_rollback, "notes": list(self.notes),
            "initial_releases": self.initial_releases,
            "steps": [s.to_dict() for s in self.steps],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    def digest(self) -> str:
        """A stable fingerprint: the journal refuses to resume a different plan."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Plan:
        if raw.get("format") != PLAN_FORMAT:
            raise ValueError(f"plan format {raw.get('format')!r} is not {PLAN_FORMAT}")
        return cls(
            scenario=raw["scenario"], seed=raw["seed"], action=raw["action"],
            from_release=raw["from"], to_release=raw["to"], policy=raw["policy"],
            max_unavailable=raw["max_unavailable"], auto_rollback=raw["auto_rollback"],
            notes=tuple(raw["notes"]), initial_releases=raw["initial_releases"],
            steps=tuple(step_from_dict(s) for s in raw["steps"]))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> Path:
        """Write the plan atomically (``results/<run-id>/plan.json``): a crash never truncates it."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        return cls.from_json(Path(path).read_text())

    def render(self) -> str:
        """The plan for people: a header, the policy, one line per step."""
        final = self.finalize_index
        head = (f"plan {self.scenario}: {self.action} {self.from_release} -> {self.to_release}, "
                f"seed {self.seed}, {len(self.initial_releases)} hosts with services, "
                f"{len(self.steps)} steps, "
                + (f"finalize from {self.steps[final].step_id}" if final is not None else "no finalize"))
        policy = " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(self.policy.items()))
        lines = [head, f"policy: {policy}", *(f"note: {n}" for n in self.notes)]
        phase = None
        for step in self.steps:
            if step.phase != phase:
                phase = step.phase
                lines.append(f"-- {phase}")
            lines.append(f"  {step.step_id}  {step.kind:<18} {step.describe()}")
        return "\n".join(lines) + "\n"


def _natural_key(name: str) -> list[Any]:
    """compute-2 before compute-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def order_hosts(hosts: Iterable[Host], order: str | Sequence[str], rng: random.Random) -> list[Host]:
    """Hosts in the policy's order: by name, random from the seed, or explicit first."""
    by_name = sorted(hosts, key=lambda h: _natural_key(h.name))
    if order == "random":
        rng.shuffle(by_name)
        return by_name
    if isinstance(order, str):
        return by_name
    rank = {name: index for index, name in enumerate(order)}
    return sorted(by_name, key=lambda h: rank.get(h.name, len(rank)))


class StepBuilder:
    """Numbers steps as they are added, and carries the current phase."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.phase = ""

    def add(self, cls: type[Step], **fields_: Any) -> None:
        self.steps.append(cls(step_id=f"s{len(self.steps) + 1:03d}", phase=self.phase, **fields_))


def _batches(hosts: Sequence[Host], size: int) -> list[list[Host]]:
    return [list(hosts[i:i + size]) for i in range(0, len(hosts), size)]


def choose_seed(cli_seed: int | None, scenario_seed: int | None) -> int:
    """--seed wins, then the scenario's seed, then a fresh one (printed with the plan)."""
    if cli_seed is not None:
        return cli_seed
    if scenario_seed is not None:
        return scenario_seed
    return secrets.randbelow(2**31)


def stop_step(plan: Plan, kind: str) -> str | None:
    """The id of the step a rollback on purpose stops before (``upgrade.rollback_before``):
    the first step of ``kind``, or the first finalize step for ``finalize``; None if none."""
    for step in plan.steps:
        if (step.finalize if kind == "finalize" else step.kind == kind):
            return step.step_id
    return None


def plan_upgrade(name: str, topology: Topology, upgrade: Upgrade, seed: int) -> Plan:
    """Generate every step; all randomness comes from ``random.Random(seed)``."""
    policy = upgrade.policy
    rng = random.Random(seed)
    in_scope = [h for h in topology.hosts if policy.selects(h)]
    groups: dict[str, list[Host]] = {
        role: order_hosts([h for h in in_scope if role in h.roles], policy.order, rng)
        for role in ("controller", "compute", "network") if role in policy.roles}
    has_lb = bool(topology.with_role("lb"))
    target = upgrade.to_release
    b = StepBuilder()
    if upgrade.action == "reboot":
        _reboot_steps(b, groups, policy, has_lb)
        notes: tuple[str, ...] = ()
        finalize = False
    else:
        series_change = not same_series(upgrade.from_release, target)
        _upgrade_steps(b, groups, policy, has_lb, target, series_change)
        replaced = {(s.host_name, s.service) for s in b.steps if isinstance(s, ReplaceService)}
        left = [f"{h.name}/{s}" for h in topology.hosts for s in h.upgradable_services
                if h.releases[s] != target and (h.name, s) not in replaced]
        finalize = series_change and not left
        notes = ()
        if series_change and left:
            notes = (f"no finalize: {len(left)} service(s) stay below {target} "
                     f"(host filter or roles): {', '.join(left[:5])}" + (" ..." if len(left) > 5 else ""),)
        if finalize:
            b.phase = "finalize (point of no return)"
            b.add(UnpinRpc)
            b.add(DbContract, to_release=target)
    initial = {h.name: {s: h.releases[s] for s in h.upgradable_services}
               for h in topology.hosts if h.upgradable_services}
    return Plan(scenario=name, seed=seed, action=upgrade.action, from_release=upgrade.from_release,
                to_release=target, policy=policy.to_dict(), initial_releases=initial,
                steps=tuple(b.steps), max_unavailable=policy.max_unavailable,
                auto_rollback=policy.auto_rollback, notes=notes)


def _upgrade_steps(b: StepBuilder, groups: dict[str, list[Host]], policy: UpgradePolicy, has_lb: bool,
                   target: str, series_change: bool) -> None:
    gate = policy.health_timeout
    b.phase = "pre-check"
    b.add(PreCheck)
    if series_change:
        b.phase = "database expand and RPC pin"
        b.add(DbExpand, to_release=target)
        b.add(PinRpc, level="auto")

    def replace(host: Host, service: str) -> bool:
        if service not in host.releases or host.releases[service] == target:
            return False
        b.add(ReplaceService, host_name=host.name, service=service,
              from_release=host.releases[service], to_release=target, stop_timeout=policy.stop_timeout)
        return True

    controllers = groups.get("controller", [])
    for service, label in (("conductor", "conductors"), ("scheduler", "schedulers")):
        b.phase = label
        for host in controllers:
            if replace(host, service):
                b.add(HealthGate, timeout=gate)
    b.phase = "API nodes, one at a time"
    for host in controllers:
        todo = [s for s in API_SERVICES if s in host.releases and host.releases[s] != target]
        if not todo:
            continue
        if has_lb and policy.api_drain:
            b.add(DrainApi, host_name=host.name)
        for service in todo:
            replace(host, service)
        b.add(HealthGate, timeout=gate)
        if has_lb and policy.api_drain:
            b.add(UndrainApi, host_name=host.name)
    computes = [h for h in groups.get("compute", [])
                if h.releases.get("compute-agent", target) != target]
    compute_batches(b, computes, policy, lambda host: replace(host, "compute-agent"))
    b.phase = "network nodes"
    for host in groups.get("network", []):
        if [s for s in host.upgradable_services if s not in DATA_PLANE_SERVICES and replace(host, s)]:
            b.add(HealthGate, timeout=gate)
    if series_change:
        b.phase = "online data migrations"
        b.add(OnlineMigrations, batch=policy.online_migration_batch)
        b.add(HealthGate, timeout=gate)


def compute_batches(b: StepBuilder, computes: Sequence[Host], policy: UpgradePolicy,
                     act: Callable[[Host], object]) -> None:
    """Disable, empty, act on (replace or reboot), check, enable: batch by batch."""
    batches = _batches(computes, policy.batch_size)
    mode = {"live-migrate": "live", "cold-migrate": "cold"}.get(policy.instances)
    for number, batch in enumerate(batches, start=1):
        b.phase = f"computes batch {number}/{len(batches)}"
        for host in batch:
            b.add(DisableCompute, host_name=host.name)
        if mode is not None:
            for host in batch:
                b.add(MigrateInstances, host_name=host.name, mode=mode, timeout=policy.migration_timeout)
        for host in batch:
            act(host)
        b.add(HealthGate, timeout=policy.health_timeout)
        for host in batch:
            b.add(EnableCompute, host_name=host.name)
        if policy.pause_between_batches > 0 and number < len(batches):
            b.add(Pause, seconds=policy.pause_between_batches)


def _reboot_steps(b: StepBuilder, groups: dict[str, list[Host]], policy: UpgradePolicy, has_lb: bool) -> None:
    gate = policy.health_timeout
    b.phase = "health before the reboots"
    b.add(HealthGate, timeout=gate)
    b.phase = "controllers, one at a time"
    for host in groups.get("controller", []):
        if has_lb and policy.api_drain:
            b.add(DrainApi, host_name=host.name)
        b.add(RebootHost, host_name=host.name, timeout=gate)
        b.add(HealthGate, timeout=gate)
        if has_lb and policy.api_drain:
            b.add(UndrainApi, host_name=host.name)

    def reboot(host: Host) -> None:
        b.add(RebootHost, host_name=host.name, timeout=gate)

    compute_batches(b, groups.get("compute", []), policy, reboot)
    b.phase = "network nodes"
    for host in groups.get("network", []):
        b.add(RebootHost, host_name=host.name, timeout=gate)
        b.add(HealthGate, timeout=gate)

"""The rolling-upgrade plan of an openstack run: the executor's own ``Step`` types, in
the openstack profile's order.

Why not ``harness.executor.plan.plan_upgrade``: it plans from a ``Scenario``,
whose roles run minicloud's services (identity, compute-api, conductor, ...)
and whose releases are minicloud's; the openstack profile's hosts run
keystone, placement, nova-* at 2026.x. This builder reads the run's topology
from run.json, validates the policy exactly as a scenario's (same schema, same
rules, same messages), and reuses the planner's step builder, host order and
compute batches, so that only the order of services is its own:

1. pre-check (``nova-status upgrade check`` of the target);
2. database expand (keystone expand + migrate, placement and nova syncs) and the
   RPC pin;
3. keystone, placement and the Glance/Neutron stand-ins, each swapped and gated
   (Keystone first, then Placement, as OpenStack's upgrade order has it);
4. the point of no return (see ``NO_RETURN``), then nova-conductor,
   nova-scheduler, nova-api (Nova's documented order);
5. computes in batches (disable, live-migrate off, swap, gate, enable);
6. online data migrations; finalize: unpin (SIGHUP), keystone contract.

No ``drain-api`` step: the profile has one controller, so draining the host
would take its only API out. Each API swap is make-before-break instead: the
new container's HAProxy server comes UP, then the old one is drained and
stopped (``OpenStackOps.replace_service``).
"""
from __future__ import annotations

import random
from typing import Any

from harness.clouds import openstack as profile
from harness.errors import UsageError
from harness.executor.plan import Plan, StepBuilder, compute_batches, order_hosts
from harness.executor.steps import (
    DbContract,
    DbExpand,
    HealthGate,
    OnlineMigrations,
    PinRpc,
    PointOfNoReturn,
    PreCheck,
    ReplaceService,
    UnpinRpc,
)
from harness.runstate import RunState
from harness.scenario import Host, Topology, UpgradePolicy
from harness.scenario.rules import build_policy, check_schema

#: controller services swapped before nova, each reversible (their N-1 runs on the expanded schema)
BEFORE_NOVA = ("keystone", "placement", "glance", "neutron")
#: nova's controller services in Nova's documented order: (service, phase)
NOVA_CONTROLLER = (("nova-conductor", "conductors"), ("nova-scheduler", "schedulers"),
                   ("nova-api", "compute API"))
NO_RETURN = ("from the first nova service at {target} on, {source} nova cannot start again: each "
             "nova service writes its release's service version ({new} for {target}) into its "
             "row of the services table, and a {source} service ({old}) refuses to save its row "
             "once its binary's minimum is newer (ServiceTooOld, Service._check_minimum_version); "
             "going back needs a database restore")


def release_index(release: str) -> int:
    return profile.RELEASES.index(release)


def run_releases(state: RunState) -> dict[str, dict[str, str]]:
    """host -> service -> release of every service of an OpenStack release (not MariaDB & co)."""
    return {name: {s: v.release for s, v in host.services.items() if v.release != profile.SYSTEM}
            for name, host in state.hosts.items()
            if any(v.release != profile.SYSTEM for v in host.services.values())}


def plan_for_run(state: RunState, target: str, policy: dict[str, Any], seed: int, label: str) -> Plan:
    """The upgrade plan of a running openstack cloud to ``target``, under ``policy`` (a
    policy mapping as ``rollgate upgrade`` reads it; ValidationError naming ``label``)."""
    problem = profile.check_release(target)
    if problem:
        raise UsageError(f"--to {target}: {problem}")
    releases = run_releases(state)
    source = min((r for services in releases.values() for r in services.values()), key=release_index)
    if release_index(target) < release_index(source):
        raise UsageError(f"--to {target}: the run runs {source}; downgrades are not supported "
                         "(roll back an unfinished upgrade with `rollgate rollback`)")
    if release_index(target) - release_index(source) > 1:
        raise UsageError(f"--to {target}: from {source} only the next release can be reached")
    # The policy is validated as a scenario's upgrade.policy (the release fields are placeholders).
    check_schema({"name": state.run_id, "upgrade": {"from": "1.0", "policy": policy}}, label)
    topology = Topology(tuple(Host(name, tuple(host.roles), releases.get(name, {}))
                              for name, host in state.hosts.items()))
    policy = {"roles": list(profile.UPGRADE_ROLES), **policy}  # as a scenario's default
    rules = build_policy(policy, "upgrade", topology, label)
    profile.check_policy(rules.instances, rules.roles, label)
    return plan_openstack(state.run_id, topology, target, rules, seed)


def plan_openstack(name: str, topology: Topology, target: str, rules: UpgradePolicy, seed: int) -> Plan:
    """The plan of ``topology`` (hosts with the release of each OpenStack service) to ``target``:
    the order of the module docstring; ``rollgate upgrade`` and the gate both plan here."""
    releases = topology.releases()
    source = min((r for services in releases.values() for r in services.values()), key=release_index)
    rng = random.Random(seed)
    in_scope = [h for h in topology.hosts if rules.selects(h)]
    groups = {role: order_hosts([h for h in in_scope if role in h.roles], rules.order, rng)
              for role in ("controller", "compute") if role in rules.roles}
    b = StepBuilder()
    gate = rules.health_timeout

    def replace(host: Host, service: str) -> bool:
        if service not in host.releases or host.releases[service] == target:
            return False
        b.add(ReplaceService, host_name=host.name, service=service, from_release=host.releases[service],
              to_release=target, stop_timeout=rules.stop_timeout)
        b.add(HealthGate, timeout=gate)
        return True

    b.phase = "pre-check"
    b.add(PreCheck)
    b.phase = "database expand and RPC pin"
    b.add(DbExpand, to_release=target)
    b.add(PinRpc, level="auto")
    controllers = groups.get("controller", [])
    b.phase = "identity, placement, stand-ins (reversible)"
    for host in controllers:
        for service in BEFORE_NOVA:
            replace(host, service)
    computes = [h for h in groups.get("compute", []) if h.releases.get("nova-compute", target) != target]
    nova_left = computes or any(h.releases.get(s, target) != target for h in controllers
                                for s, _ in NOVA_CONTROLLER)
    if nova_left:
        b.phase = "point of no return"
        b.add(PointOfNoReturn, reason=NO_RETURN.format(
            target=target, source=source, new=profile.NOVA_SERVICE_VERSION[target],
            old=profile.NOVA_SERVICE_VERSION[source]))
    for service, phase in NOVA_CONTROLLER:
        b.phase = phase
        for host in controllers:
            replace(host, service)
    compute_batches(b, computes, rules, lambda host: replace_agent(b, host, target, rules.stop_timeout))
    b.phase = "online data migrations"
    b.add(OnlineMigrations, batch=rules.online_migration_batch)
    b.add(HealthGate, timeout=gate)
    replaced = {(s.host_name, s.service) for s in b.steps if isinstance(s, ReplaceService)}
    left = [f"{h}/{s}" for h, services in releases.items() for s, r in services.items()
            if r != target and (h, s) not in replaced]
    notes = ["one controller: API swaps are make-before-break (new server UP in HAProxy, old "
             "one drained, then stopped), so no drain-api step" if rules.api_drain else
             "api_drain: false: each API's new server comes UP in HAProxy, then the old container "
             "is stopped while HAProxy still sends it requests (no drain)"]
    if left:
        notes.append(f"no finalize: {len(left)} service(s) stay below {target} (host filter or roles): "
                     + ", ".join(left[:5]) + (" ..." if len(left) > 5 else ""))
    else:
        b.phase = "finalize (point of no return)"
        b.add(UnpinRpc)
        b.add(DbContract, to_release=target)
    return Plan(scenario=name, seed=seed, action="upgrade", from_release=source, to_release=target,
                policy=rules.to_dict(), initial_releases=releases, steps=tuple(b.steps),
                max_unavailable=rules.max_unavailable, auto_rollback=rules.auto_rollback,
                notes=tuple(notes))


def replace_agent(b: StepBuilder, host: Host, target: str, stop_timeout: float) -> None:
    """The compute batch's swap (its health gate is the batch's)."""
    b.add(ReplaceService, host_name=host.name, service="nova-compute",
          from_release=host.releases["nova-compute"], to_release=target, stop_timeout=stop_timeout)

"""Scenario files: the typed model (loading and validation: ``harness.scenario.load``).

A scenario is one YAML file: the cloud to build (``topology``), the upgrade or
rolling reboot to run on it (``upgrade`` with its ``policy``), and the traffic,
SLOs, faults and resources that judge it. Structure is checked against the
packaged JSON Schema (``harness/schemas/scenario.schema.json``, usable by
editors); the rules that span fields (release series, host counts, addresses)
are checked here. Every error names the file, the field and what is valid, so
a user fixes it without reading code. Inside the harness, code trusts these
models.

The harness never imports minicloud, so the release table the rules need is
restated here (see images/minicloud/DESIGN.md, "Releases").
"""
from __future__ import annotations

import fnmatch
import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources as importlib_resources
from typing import Any

from harness.backends.base import HostSpec
from harness.defect_catalog import minicloud_variants

# --- releases -------------------------------------------------------------

#: release name -> its series; patch releases (1.1.1) share their series (1.1).
RELEASE_SERIES: dict[str, str] = {"1.0": "1.0", "1.1": "1.1", "1.1.1": "1.1", "2.0": "2.0"}
#: the series in upgrade order: only N and N+1 may run in one cloud.
SERIES_ORDER: tuple[str, ...] = ("1.0", "1.1", "2.0")
#: named checks a scenario may ask the gate for (``checks:``).
SCENARIO_CHECKS: tuple[str, ...] = ("project-isolation",)


def release_problem(label: str) -> str | None:
    """Why ``label`` is not a known release, or None when it is."""
    name, plus, variant = label.partition("+")
    if name not in RELEASE_SERIES:
        return (f"unknown release {label!r}; valid: {', '.join(RELEASE_SERIES)}"
                " (optionally +VARIANT, a defect variant of images/minicloud/catalog.yaml)")
    if plus and variant not in minicloud_variants():
        return (f"unknown variant {variant!r} in {label!r}; valid: {', '.join(minicloud_variants())} "
                "(images/minicloud/catalog.yaml)")
    return None


def release_series_index(label: str) -> int:
    """Position of the label's series in SERIES_ORDER (1.1.1+VARIANT -> 1)."""
    return SERIES_ORDER.index(RELEASE_SERIES[label.partition("+")[0]])


def release_key(label: str) -> tuple[int, ...]:
    """Sort key by release age: 1.0 < 1.1 < 1.1.1 < 2.0 (variants ignored)."""
    return tuple(int(part) for part in label.partition("+")[0].split("."))


def same_series(a: str, b: str) -> bool:
    return release_series_index(a) == release_series_index(b)


# --- roles and services ---------------------------------------------------

ROLES: tuple[str, ...] = ("controller", "compute", "network", "db", "lb")
#: the minicloud services each role runs. db and lb run no minicloud service
#: (PostgreSQL/SQLite and HAProxy): the backend deploys them by role.
ROLE_SERVICES: dict[str, tuple[str, ...]] = {
    "controller": ("identity", "image", "compute-api", "conductor", "scheduler"),
    "compute": ("compute-agent", "hypervisor"),
    "network": ("network", "datapath"),
    "db": (),
    "lb": (),
}
#: services a rolling upgrade never replaces: they hold the data plane
#: (instances, forwarders) and outlive the agents that drive them.
DATA_PLANE_SERVICES: frozenset[str] = frozenset({"hypervisor", "datapath"})

DEFAULT_TOPOLOGY: tuple[tuple[str, str], ...] = (
    ("controller-1", "controller"), ("controller-2", "controller"),
    ("compute-1", "compute"), ("compute-2", "compute"), ("compute-3", "compute"),
    ("network-1", "network"), ("db-1", "db"), ("lb-1", "lb"),
)


@dataclass(frozen=True)
class Host:
    """One host: its roles and the release of every service it runs."""

    name: str
    roles: tuple[str, ...]
    releases: Mapping[str, str]  # service -> release label, every service of the roles
    address: str | None = None

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(s for role in self.roles for s in ROLE_SERVICES[role])

    @property
    def upgradable_services(self) -> tuple[str, ...]:
        return tuple(s for s in self.services if s not in DATA_PLANE_SERVICES)

    def to_spec(self) -> HostSpec:
        """The backend's view of this host (address left to the backend if unset)."""
        return HostSpec(name=self.name, roles=self.roles, services=dict(self.releases),
                        address=self.address)


@dataclass(frozen=True)
class Topology:
    hosts: tuple[Host, ...]

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def with_role(self, role: str) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if role in h.roles)

    def releases(self) -> dict[str, dict[str, str]]:
        """host -> service -> release, for every host with services."""
        return {h.name: dict(h.releases) for h in self.hosts if h.releases}


# --- upgrade and policy -----------------------------------------------------

ORDERS = ("name", "random")
INSTANCE_HANDLING = ("live-migrate", "cold-migrate", "leave")
ACTIONS = ("upgrade", "reboot")
ROLLED_ROLES = ("controller", "compute", "network")


@dataclass(frozen=True)
class UpgradePolicy:
    """How a rolling operation proceeds: the operator's knobs (issue 5)."""

    batch_size: int = 1
    max_unavailable: int = 1
    order: str | tuple[str, ...] = "name"  # "name" | "random" | explicit host names
    pause_between_batches: float = 0.0
    health_timeout: float = 120.0
    stop_timeout: float = 15.0
    migration_timeout: float = 120.0
    instances: str = "live-migrate"
    hosts: tuple[str, ...] = ("*",)  # fnmatch patterns of host names
    roles: tuple[str, ...] = ROLLED_ROLES
    auto_rollback: bool = True
    online_migration_batch: int = 50
    api_drain: bool = True  # drain an API backend in the load balancer before it stops

    def selects(self, host: Host) -> bool:
        return any(fnmatch.fnmatchcase(host.name, pattern) for pattern in self.hosts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size, "max_unavailable": self.max_unavailable,
            "order": self.order if isinstance(self.order, str) else list(self.order),
            "pause_between_batches": self.pause_between_batches,
            "health_timeout": self.health_timeout, "stop_timeout": self.stop_timeout,
            "migration_timeout": self.migration_timeout, "instances": self.instances,
            "hosts": list(self.hosts), "roles": list(self.roles),
            "auto_rollback": self.auto_rollback,
            "online_migration_batch": self.online_migration_batch,
            "api_drain": self.api_drain,
        }


@dataclass(frozen=True)
class Upgrade:
    """From which release to which, by which action, under which policy."""

    from_release: str
    to_release: str
    action: str = "upgrade"  # "upgrade" | "reboot" (no release change)
    policy: UpgradePolicy = field(default_factory=UpgradePolicy)
    # Hold point (mixed-version-hold): after this compute batch the run pauses,
    # verifies every resource in the mixed state, then continues. None = no hold.
    hold_after_batch: int | None = None
    hold_seconds: float = 0.0
    # Rollback on purpose: run up to the first step of this kind, then roll back (None = no).
    rollback_before: str | None = None
    # What the scenario expects of the executor: "complete" (every step runs) or "rollback"
    # (the candidate is bad: a health gate must fail and the executor must roll back cleanly).
    expect: str = "complete"

    @property
    def expects_rollback(self) -> bool:
        return self.expect == "rollback" or self.rollback_before is not None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    topology: Topology
    upgrade: Upgrade | None
    seed: int | None = None
    # The raw sections, and their typed configs from harness.traffic.config
    # (TrafficConfig, SloConfig; None when no parser is available; see SECTION_PARSERS).
    traffic: Mapping[str, Any] = field(default_factory=dict)
    slo: Mapping[str, Any] = field(default_factory=dict)
    traffic_config: Any = None
    slo_config: Any = None
    faults: tuple[Mapping[str, Any], ...] = ()
    resources: Mapping[str, Any] = field(default_factory=dict)
    # Extra named checks the gate runs before and after (e.g. "project-isolation").
    checks: tuple[str, ...] = ()
    path: str = "<scenario>"
    cloud: str = "minicloud"  # minicloud | openstack (harness.clouds.openstack)


# --- the hook for sections other modules own -------------------------------

#: section -> parser(value or None, path) returning the typed config. A parser
#: raises ValidationError naming the file and ``section.field``. By default
#: ``harness.traffic.config.parse_traffic`` / ``parse_slo`` are used (looked up
#: lazily, so this module never needs the traffic package); tests or other
#: modules may register a parser here instead.
SECTION_PARSERS: dict[str, Callable[[Any, str], Any]] = {}
_SECTION_HOOKS = {"traffic": ("harness.traffic.config", "parse_traffic"),
                  "slo": ("harness.traffic.config", "parse_slo")}


def section_parser(section: str) -> Callable[[Any, str], Any] | None:
    if section in SECTION_PARSERS:
        return SECTION_PARSERS[section]
    module_name, attribute = _SECTION_HOOKS[section]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None  # the section stays an opaque mapping
        raise
    parser: Callable[[Any, str], Any] | None = getattr(module, attribute, None)
    return parser


# --- loading ----------------------------------------------------------------

@cache
def scenario_schema() -> dict[str, Any]:
    """The packaged JSON Schema of scenario files."""
    text = importlib_resources.files("harness").joinpath("schemas/scenario.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema

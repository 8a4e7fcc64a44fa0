"""What a cloud is to the harness: a ``CloudProfile`` (what it knows before anything runs) and
a ``DeployedCloud`` (what a gate run uses of it once it is up).

One profile per cloud, registered in ``harness.clouds.CLOUDS``; the commands, the gate, the
pytest plugin and scenario loading ask ``harness.clouds.profile(name)`` and never branch on a
cloud's name. Where the clouds differ in what the gate can observe, the profile says so as data
(``gate_probes``, ``backends``) rather than the caller guessing from the name.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from harness.backends.base import HostSpec
    from harness.executor.ops import CloudOps
    from harness.executor.plan import Plan
    from harness.resources import ResourcePhases, ResourceSpec
    from harness.runstate import RunState
    from harness.scenario.model import Scenario
    from harness.timeline import Timeline
    from harness.verdict import Check, Releases

#: the gate's probes that read a cloud's internals (its ``/healthz``, its admin CLI, its test
#: hooks); a profile lists the ones its cloud supports (``CloudProfile.gate_probes``).
PROBES = ("contract", "lifecycle", "maintenance", "shutdown", "versions")


class DeployedCloud(Protocol):
    """What a gate run needs of its cloud, whichever it is (``CloudProfile.deploy`` returns one)."""

    state: RunState

    def ops(self, scenario: Scenario) -> CloudOps: ...
    def connect(self) -> Any: ...
    def connect_demo(self) -> Any: ...
    def resource_phases(self, run_dir: Path, spec: ResourceSpec, timeline: Timeline) -> ResourcePhases: ...
    def compute_api_url(self) -> str: ...
    def stop_compute_api(self) -> list[str]: ...
    def start_compute_api(self) -> None: ...
    def engine_alive(self) -> bool: ...
    def infra_alive(self) -> bool: ...
    def no_dataplane(self) -> str | None: ...
    def final_releases(self) -> Releases: ...
    def end_checks(self, expected: str) -> list[Check]: ...
    def destroy(self) -> None: ...


@dataclass(frozen=True)
class UpRequest:
    """What ``rollgate up`` was asked for: checked by the profile before anything starts."""

    scenario: str | None  # SCENARIO as given
    release: str
    computes: int
    backend: str
    loaded: Scenario | None = None  # SCENARIO read (by the command: loading asks this registry)
    hosts: tuple[HostSpec, ...] = ()  # what will be deployed, where the profile knows it beforehand


class CloudProfile(ABC):
    """Everything the harness knows of one kind of cloud before it runs; one instance per cloud."""

    #: the cloud's name, as scenarios (``cloud:``), ``--cloud`` and ``run.json`` spell it
    name: str
    #: its releases, oldest first (the ones the harness can deploy and roll between)
    releases: tuple[str, ...]
    #: the backends its hosts can live on, the one to use when the user gives none first
    backends: tuple[str, ...]
    #: the release ``rollgate up`` deploys when none is given
    default_release: str
    #: one line on what it is, for messages that refuse something
    summary: str
    #: the gate probes (of ``PROBES``) that can read this cloud
    gate_probes: frozenset[str] = frozenset()
    #: whether ``rollgate reboot`` and ``rollgate fault`` drive it
    rolling_reboot: bool = False
    faults: bool = False

    def probes(self, probe: str) -> bool:
        """Whether the gate probe ``probe`` (one of ``PROBES``) reads this cloud."""
        if probe not in PROBES:
            raise ValueError(f"unknown gate probe {probe!r}; known: {', '.join(PROBES)}")
        return probe in self.gate_probes

    @abstractmethod
    def build_scenario(self, raw: Mapping[str, Any], path: str) -> Scenario:
        """The typed scenario of a schema-valid mapping, after the cloud's own rules held."""

    @abstractmethod
    def plan(self, scenario: Scenario, seed: int) -> Plan:
        """The upgrade plan of the scenario's ``upgrade`` section (it has one)."""

    def check_runnable(self, scenario: Scenario) -> None:  # noqa: B027 (a hook: most clouds need none)
        """ValidationError if a gate run of ``scenario`` could only end ERROR (nothing by default)."""

    @abstractmethod
    def deploy(self, state: RunState, scenario: Scenario, backend: str) -> DeployedCloud:
        """Deploy the scenario's topology at its source release (all-or-nothing) for a gate run."""

    def expects_rollback(self, scenario: Scenario) -> bool:
        """Whether the gate run of ``scenario`` should end rolled back (the scenario says so)."""
        return scenario.upgrade is not None and scenario.upgrade.expects_rollback

    # --- what the commands beyond the gate need (up, down, status, upgrade, images) ---

    def check_up(self, request: UpRequest) -> None:  # noqa: B027 (a hook: most clouds need none)
        """UsageError if ``rollgate up`` cannot deploy ``request`` (flags only: nothing is read)."""

    @abstractmethod
    def prepare_up(self, request: UpRequest) -> UpRequest:
        """The request with what will be deployed (ValidationError/DeployError on what it reads)."""

    @abstractmethod
    def up(self, run_id: str, request: UpRequest) -> list[str]:
        """Deploy ``request`` as run ``run_id`` (all-or-nothing); the lines ``rollgate up`` prints."""

    @abstractmethod
    def destroy_run(self, state: RunState) -> None:
        """Stop and remove everything of a run the backend did not already (``rollgate down``)."""

    def service_health(self, state: RunState) -> Mapping[tuple[str, str], str] | None:
        """(host, service) -> health for ``rollgate status``; None: ask each service's ``/healthz``."""
        return None

    @abstractmethod
    def plan_for_run(self, state: RunState, action: str, target: str | None, policy: dict[str, Any],
                     seed: int | None, label: str) -> Plan:
        """The plan of ``action`` (upgrade, reboot) of a running cloud, validated like a scenario
        (ValidationError naming ``label``), with whatever it needs there (images) checked."""

    @abstractmethod
    def run_ops(self, state: RunState, plan: Plan) -> CloudOps:
        """The executor's operations on a running cloud, for ``plan``."""

    @abstractmethod
    def image_specs(self) -> Sequence[Any]:
        """The Docker images a deployment of every release needs (``harness.images.ImageSpec``)."""

    @abstractmethod
    def build_images(self, client: Any, releases: Sequence[str] | None,
                     progress: Callable[[str], None]) -> list[Any]:
        """Build the images of ``releases`` (None: all) and the ones they share; BuildResults."""

    @abstractmethod
    def build_hint(self, release: str | None) -> str:
        """The command that builds the image of ``release`` (or the shared ones)."""

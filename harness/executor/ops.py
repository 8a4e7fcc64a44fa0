"""What the executor needs from a cloud: the ``CloudOps`` protocol.

The executor knows the order of an upgrade; a ``CloudOps`` knows how to do
each operation on one kind of cloud (minicloud on a backend, OpenStack, or the
in-memory fake of the tests). Every method is synchronous and does its own
waiting: it returns when the operation is done (polling with a timeout, never
a bare sleep) and raises ``OperationFailed`` with the evidence otherwise.
Every method must be idempotent, because a resumed run repeats the step that
was in flight when the harness crashed: draining a drained node, replacing a
service by the release it already runs, or expanding an expanded schema
succeeds and changes nothing.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: host -> service -> release label, the releases a health gate expects.
ExpectedReleases = Mapping[str, Mapping[str, str]]


class OperationFailed(Exception):
    """An operation did not do what it promised; ``evidence`` says what was seen."""

    def __init__(self, operation: str, problem: str, evidence: str = "") -> None:
        self.operation = operation
        self.problem = problem
        self.evidence = evidence
        super().__init__(f"{operation}: {problem}" + (f"\n{evidence}" if evidence else ""))


@dataclass(frozen=True)
class CheckReport:
    """Result of the pre-upgrade check (``status upgrade-check``)."""

    level: str  # "ok" | "warning" | "failure"
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.level != "failure"


@dataclass(frozen=True)
class HealthReport:
    """Result of a health gate: ok, or every problem found (each one line)."""

    ok: bool
    problems: tuple[str, ...] = ()


@runtime_checkable
class CloudOps(Protocol):
    """The operations the steps of a plan need; one implementation per cloud."""

    def upgrade_check(self) -> CheckReport:
        """Run the cloud's pre-upgrade check (``status upgrade-check``)."""
        ...

    def db_expand(self, release: str) -> None:
        """Apply the expand migrations of ``release`` (additive, online)."""
        ...

    def db_contract(self, release: str) -> None:
        """Apply the contract migrations of ``release`` (drops old columns; irreversible)."""
        ...

    def online_data_migrations(self, max_count: int) -> bool:
        """Migrate at most ``max_count`` rows; return True while rows remain."""
        ...

    def pin_rpc_versions(self, level: str) -> None:
        """Cap compute RPC/object versions (``"auto"`` or a release) and reload senders."""
        ...

    def unpin_rpc_versions(self) -> None:
        """Remove the cap and reload the services that send to computes."""
        ...

    def replace_service(self, host: str, service: str, release: str, stop_timeout: float) -> None:
        """Gracefully stop ``service`` on ``host`` and start it at ``release`` (the backend's replace)."""
        ...

    def drain_api(self, host: str) -> None:
        """Take the host's API backends out of the load balancer, waiting for in-flight requests."""
        ...

    def undrain_api(self, host: str) -> None:
        """Put the host's API backends back in the load balancer."""
        ...

    def disable_compute(self, host: str, reason: str) -> None:
        """Disable the host's compute service: the scheduler places nothing new there."""
        ...

    def enable_compute(self, host: str) -> None:
        """Enable the host's compute service again."""
        ...

    def list_instances(self, host: str) -> list[str]:
        """Ids of the instances on ``host`` now."""
        ...

    def live_migrate(self, instance: str, source: str, timeout: float) -> str:
        """Live-migrate one instance off ``source``, wait until done; return its new host."""
        ...

    def cold_migrate(self, instance: str, source: str, timeout: float) -> str:
        """Cold-migrate (stop, move, start) one instance off ``source``; return its new host."""
        ...

    def reboot_host(self, host: str, timeout: float) -> None:
        """Reboot the host and wait until its services answer again."""
        ...

    def health_gate(self, expected: ExpectedReleases, timeout: float) -> HealthReport:
        """Poll until the cloud is healthy with these releases, or report why not at ``timeout``.

        Healthy: every listed service runs its expected release and answers,
        every host is up, the API answers, no instance is in ERROR and every
        data-plane instance is reachable.
        """
        ...

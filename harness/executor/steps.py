"""The typed steps of a plan: what each does, and whether it can be undone.

A step is frozen data: it names its host, service and releases, and carries
its own timeouts, so a saved plan replays exactly. Every step before
finalize has an inverse (``Executor`` runs it on rollback); the two finalize
steps (unpin, DB contract) have none: that is Nova's point of no return. A
cloud whose old release cannot come back earlier than that marks the spot
with a ``PointOfNoReturn`` step, which counts as finalize.
Steps are serialised as ``{"kind": ..., field: value}`` and read back through
``STEP_TYPES``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class Step:
    """Base of every step. ``phase`` groups steps for people ("computes batch 2/3")."""

    kind: ClassVar[str] = "step"
    #: True for the steps after which rollback is refused.
    finalize: ClassVar[bool] = False
    step_id: str
    phase: str = ""

    @property
    def host(self) -> str | None:
        return getattr(self, "host_name", None)

    def describe(self) -> str:
        return self.kind

    def event_fields(self) -> dict[str, Any]:
        """The timeline fields of this step (host, service, from and to release)."""
        return {"host": self.host, "service": getattr(self, "service", None),
                "from": getattr(self, "from_release", None), "to": getattr(self, "to_release", None)}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, kw_only=True)
class PreCheck(Step):
    kind: ClassVar[str] = "pre-check"

    def describe(self) -> str:
        return "status upgrade check (refuse on failure)"


@dataclass(frozen=True, kw_only=True)
class DbExpand(Step):
    kind: ClassVar[str] = "db-expand"
    to_release: str

    def describe(self) -> str:
        return f"expand the schema to {self.to_release} (additive; the old release keeps working)"


@dataclass(frozen=True, kw_only=True)
class PinRpc(Step):
    kind: ClassVar[str] = "pin-rpc"
    level: str = "auto"

    def describe(self) -> str:
        return f"pin compute RPC and object versions ({self.level})"


@dataclass(frozen=True, kw_only=True)
class ReplaceService(Step):
    kind: ClassVar[str] = "replace-service"
    host_name: str
    service: str
    from_release: str
    to_release: str
    stop_timeout: float = 15.0

    def describe(self) -> str:
        return f"{self.host_name}/{self.service} {self.from_release} -> {self.to_release} (graceful stop)"


@dataclass(frozen=True, kw_only=True)
class DrainApi(Step):
    kind: ClassVar[str] = "drain-api"
    host_name: str

    def describe(self) -> str:
        return f"take {self.host_name} out of the load balancer (drain)"


@dataclass(frozen=True, kw_only=True)
class UndrainApi(Step):
    kind: ClassVar[str] = "undrain-api"
    host_name: str

    def describe(self) -> str:
        return f"put {self.host_name} back in the load balancer"


@dataclass(frozen=True, kw_only=True)
class DisableCompute(Step):
    kind: ClassVar[str] = "disable-compute"
    host_name: str

    def describe(self) -> str:
        return f"disable {self.host_name} (maintenance mode: no new instances)"


@dataclass(frozen=True, kw_only=True)
class EnableCompute(Step):
    kind: ClassVar[str] = "enable-compute"
    host_name: str

    def describe(self) -> str:
        return f"enable {self.host_name}"


@dataclass(frozen=True, kw_only=True)
class MigrateInstances(Step):
    kind: ClassVar[str] = "migrate-instances"
    host_name: str
    mode: str = "live"  # "live" | "cold"
    timeout: float = 120.0

    def describe(self) -> str:
        return f"{self.mode}-migrate every instance away from {self.host_name} and verify"


@dataclass(frozen=True, kw_only=True)
class RebootHost(Step):
    kind: ClassVar[str] = "reboot-host"
    host_name: str
    timeout: float = 120.0

    def describe(self) -> str:
        return f"reboot {self.host_name}"


@dataclass(frozen=True, kw_only=True)
class HealthGate(Step):
    kind: ClassVar[str] = "health-gate"
    timeout: float = 120.0

    def describe(self) -> str:
        return f"health gate: expected releases, hosts up, API, instances (<= {self.timeout:g}s)"


@dataclass(frozen=True, kw_only=True)
class Pause(Step):
    kind: ClassVar[str] = "pause"
    seconds: float

    def describe(self) -> str:
        return f"pause {self.seconds:g}s between batches"


@dataclass(frozen=True, kw_only=True)
class OnlineMigrations(Step):
    kind: ClassVar[str] = "online-migrations"
    batch: int = 50
    timeout: float = 600.0

    def describe(self) -> str:
        return f"online data migrations in batches of {self.batch} until done"


@dataclass(frozen=True, kw_only=True)
class PointOfNoReturn(Step):
    """Where a cloud's old release cannot run again, earlier than finalize (a profile's finding:
    the openstack profile's nova services, see ``harness.clouds.openstack.plan``). It does
    nothing; from the moment it begins, rollback is refused, as after finalize, with ``reason``."""

    kind: ClassVar[str] = "point-of-no-return"
    finalize: ClassVar[bool] = True
    reason: str

    def describe(self) -> str:
        return f"POINT OF NO RETURN: {self.reason}"


@dataclass(frozen=True, kw_only=True)
class UnpinRpc(Step):
    kind: ClassVar[str] = "unpin-rpc"
    finalize: ClassVar[bool] = True

    def describe(self) -> str:
        return "FINALIZE: unpin RPC versions and reload services"


@dataclass(frozen=True, kw_only=True)
class DbContract(Step):
    kind: ClassVar[str] = "db-contract"
    finalize: ClassVar[bool] = True
    to_release: str

    def describe(self) -> str:
        return f"FINALIZE: contract the schema to {self.to_release} (no way back)"


STEP_TYPES: dict[str, type[Step]] = {
    cls.kind: cls for cls in (
        PreCheck, DbExpand, PinRpc, ReplaceService, DrainApi, UndrainApi, DisableCompute,
        EnableCompute, MigrateInstances, RebootHost, HealthGate, Pause, OnlineMigrations,
        PointOfNoReturn, UnpinRpc, DbContract)
}


def step_from_dict(raw: dict[str, Any]) -> Step:
    """Read back a step written by ``Step.to_dict`` (unknown keys are an error)."""
    data = dict(raw)
    cls = STEP_TYPES[data.pop("kind")]
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"step {data.get('step_id')}: unknown fields {sorted(unknown)}")
    return cls(**data)

"""The traffic plan: what the Locust process must reach, and how hard.

The harness discovers the targets (catalog endpoints, instances and their
floating addresses) with openstacksdk in its own process and writes this plan
as JSON; the Locust process reads it from ``ROLLGATE_TRAFFIC_PLAN``. Keeping the
discovery out of Locust means a cloud that cannot be reached is an ERROR before
any traffic starts, and the plan file documents exactly what was measured.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.traffic.api_ops import ApiTarget, operation_targets
from harness.traffic.config import TrafficConfig, traffic_from_dict

PLAN_ENV = "ROLLGATE_TRAFFIC_PLAN"

__all__ = ["PLAN_ENV", "ApiTarget", "InstanceTarget", "TrafficPlan"]  # ApiTarget: from api_ops


@dataclass(frozen=True)
class InstanceTarget:
    """One instance's data plane: HTTP on its floating address."""

    name: str
    server_id: str
    host: str
    port: int


@dataclass
class TrafficPlan:
    run_dir: str
    timeline: str
    locust_dir: str
    config: TrafficConfig
    api_targets: list[ApiTarget] = field(default_factory=list)
    instances: list[InstanceTarget] = field(default_factory=list)
    clouds_yaml: str | None = None  # for the openstacksdk users; None = no API users
    cloud: str = "rollgate"
    token: str | None = None  # sent by API samplers (refreshed by openstacksdk users only)
    key_prefix: str = "rg"
    parent_pid: int = 0
    run_time_s: float = 60.0  # Locust's own bound: it never outlives this

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["config"] = self.config.to_dict()
        return data

    def write(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        return target

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrafficPlan:
        data = dict(data)
        data["config"] = traffic_from_dict(data["config"])
        data["api_targets"] = [ApiTarget(**item) for item in data.get("api_targets", [])]
        data["instances"] = [InstanceTarget(**item) for item in data.get("instances", [])]
        return cls(**data)

    @classmethod
    def read(cls, path: str | Path) -> TrafficPlan:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def user_counts(self) -> dict[str, int]:
        """How many Locust users of each class the plan needs (the runner passes the total)."""
        config = self.config
        connections = len(config.samplers.connections)
        return {
            "ApiSamplerUser": len(self.api_targets) * connections,
            "DataPlaneSamplerUser": len(self.instances) * connections,
            "DataPlaneWriterUser": len(self.instances) if config.dataplane.enabled else 0,
            "OpenStackApiUser": config.api.users if self.clouds_yaml else 0,
            "ApiOpSamplerUser": (len(operation_targets(self.api_targets, self.token))
                                 if config.samplers.api_op_interval_ms > 0 else 0),
        }

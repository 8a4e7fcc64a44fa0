"""Typed traffic and SLO settings, parsed from a scenario's ``traffic:`` and ``slo:``.

The scenario model embeds these: it hands each mapping to ``parse_traffic`` /
``parse_slo`` with the file name, and every error names the file and the full
field path (``traffic.samplers.api_interval_ms``) and what would be valid, so a
typo is caught before a single process starts.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ValidationError

CONNECTION_KINDS = ("new", "reused")

# The API users' realistic mix: mostly reads, some full create/ACTIVE/delete cycles.
DEFAULT_API_MIX: dict[str, int] = {
    "list_servers": 4,
    "show_server": 3,
    "list_flavors": 2,
    "list_images": 2,
    "list_services": 1,
    "create_delete_server": 1,
}


@dataclass(frozen=True)
class ApiUsersConfig:
    """openstacksdk users: how many, how often, which mix of operations."""

    users: int = 2
    wait_s: float = 1.0
    mix: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_API_MIX))
    create_deadline_s: float = 30.0
    request_timeout_s: float = 10.0
    flavor: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class DataPlaneConfig:
    """Per-instance writers: a monotonically increasing sequence, read back."""

    enabled: bool = True
    write_interval_ms: float = 100.0
    timeout_ms: float = 1000.0


@dataclass(frozen=True)
class SamplerConfig:
    """Uniform probes per API endpoint and per instance, on new and reused connections."""

    api_interval_ms: float = 100.0
    dataplane_interval_ms: float = 20.0
    api_timeout_ms: float = 1000.0
    dataplane_timeout_ms: float = 500.0
    connections: tuple[str, ...] = CONNECTION_KINDS
    api_targets: tuple[str, ...] | None = None  # catalog service types; None = every one
    api_op_interval_ms: float = 100.0  # authenticated operation samplers (0 = none)


@dataclass(frozen=True)
class TrafficConfig:
    """Everything the Locust process needs to know about rates and mixes."""

    api: ApiUsersConfig = field(default_factory=ApiUsersConfig)
    dataplane: DataPlaneConfig = field(default_factory=DataPlaneConfig)
    samplers: SamplerConfig = field(default_factory=SamplerConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SloConfig:
    """The promises a rolling upgrade must keep; defaults are the issue's."""

    max_failed_api_requests: int = 0
    max_lost_writes: int = 0
    max_failed_dataplane_requests: int = 0
    max_dataplane_gap_ms: float = 500.0
    api_p99_ratio: float = 3.0
    # Below this the p99 comparison is noise on a loaded loopback (0 = strict ratio only).
    api_p99_floor_ms: float = 0.0
    baseline_min_samples: int = 20
    # slo.api_latency: each authenticated operation's median, baseline vs during (and after).
    api_latency_ratio: float = 2.0
    api_latency_floor_ms: float = 8.0
    api_latency_min_samples: int = 10

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Fields:
    """Reads one mapping, naming ``prefix.key`` in every error, and rejects unknown keys."""

    def __init__(self, data: Any, path: str, prefix: str, allowed: tuple[str, ...]) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ValidationError(path, prefix, f"must be a mapping, got {type(data).__name__}")
        unknown = sorted(str(key) for key in data if key not in allowed)
        if unknown:
            raise ValidationError(
                path, f"{prefix}.{unknown[0]}", f"unknown field; valid fields: {', '.join(allowed)}"
            )
        self.data = data
        self.path = path
        self.prefix = prefix

    def _fail(self, key: str, problem: str) -> ValidationError:
        return ValidationError(self.path, f"{self.prefix}.{key}", problem)

    def number(self, key: str, default: float, minimum: float = 0.0, strict: bool = True) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, f"must be a number, got {value!r}")
        if value < minimum or (strict and value == minimum):
            relation = ">" if strict else ">="
            raise self._fail(key, f"must be {relation} {minimum:g}, got {value!r}")
        return float(value)

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, f"must be an integer, got {value!r}")
        if value < minimum:
            raise self._fail(key, f"must be >= {minimum}, got {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, f"must be true or false, got {value!r}")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise self._fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def text_list(self, key: str, default: tuple[str, ...] | None,
                  choices: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
        value = self.data.get(key, default)
        if value is None:
            return None
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            raise self._fail(key, f"must be a non-empty list of strings, got {value!r}")
        for item in value:
            if not isinstance(item, str):
                raise self._fail(key, f"must be a list of strings, got item {item!r}")
            if choices is not None and item not in choices:
                raise self._fail(key, f"{item!r} is not one of {', '.join(choices)}")
        return tuple(value)

    def mapping(self, key: str) -> Any:
        return self.data.get(key)


def _parse_mix(data: Any, path: str, prefix: str) -> dict[str, int]:
    fields = _Fields(data, path, prefix, tuple(DEFAULT_API_MIX))
    mix = {name: fields.integer(name, 0 if data else DEFAULT_API_MIX[name]) for name in DEFAULT_API_MIX}
    if not data:
        return dict(DEFAULT_API_MIX)
    if sum(mix.values()) == 0:
        raise ValidationError(path, prefix, "at least one operation needs a weight > 0")
    return {name: weight for name, weight in mix.items() if weight > 0}


def parse_traffic(data: Any, path: str = "<scenario>") -> TrafficConfig:
    """Build a TrafficConfig from a scenario's ``traffic:`` mapping (None = defaults)."""
    top = _Fields(data, path, "traffic", ("api", "dataplane", "samplers"))
    api_defaults = ApiUsersConfig()
    api = _Fields(top.mapping("api"), path, "traffic.api",
                  ("users", "wait_s", "mix", "create_deadline_s", "request_timeout_s", "flavor", "image"))
    dp_defaults = DataPlaneConfig()
    dataplane = _Fields(top.mapping("dataplane"), path, "traffic.dataplane",
                        ("enabled", "write_interval_ms", "timeout_ms"))
    s_defaults = SamplerConfig()
    samplers = _Fields(top.mapping("samplers"), path, "traffic.samplers",
                       ("api_interval_ms", "dataplane_interval_ms", "api_timeout_ms",
                        "dataplane_timeout_ms", "connections", "api_targets", "api_op_interval_ms"))
    return TrafficConfig(
        api=ApiUsersConfig(
            users=api.integer("users", api_defaults.users),
            wait_s=api.number("wait_s", api_defaults.wait_s, strict=False),
            mix=_parse_mix(api.mapping("mix"), path, "traffic.api.mix"),
            create_deadline_s=api.number("create_deadline_s", api_defaults.create_deadline_s),
            request_timeout_s=api.number("request_timeout_s", api_defaults.request_timeout_s),
            flavor=api.optional_text("flavor"),
            image=api.optional_text("image"),
        ),
        dataplane=DataPlaneConfig(
            enabled=dataplane.boolean("enabled", dp_defaults.enabled),
            write_interval_ms=dataplane.number("write_interval_ms", dp_defaults.write_interval_ms),
            timeout_ms=dataplane.number("timeout_ms", dp_defaults.timeout_ms),
        ),
        samplers=SamplerConfig(
            api_interval_ms=samplers.number("api_interval_ms", s_defaults.api_interval_ms),
            dataplane_interval_ms=samplers.number("dataplane_interval_ms", s_defaults.dataplane_interval_ms),
            api_timeout_ms=samplers.number("api_timeout_ms", s_defaults.api_timeout_ms),
            dataplane_timeout_ms=samplers.number("dataplane_timeout_ms", s_defaults.dataplane_timeout_ms),
            connections=samplers.text_list("connections", s_defaults.connections, CONNECTION_KINDS)
            or CONNECTION_KINDS,
            api_targets=samplers.text_list("api_targets", None),
            api_op_interval_ms=samplers.number("api_op_interval_ms", s_defaults.api_op_interval_ms,
                                               strict=False),
        ),
    )


def traffic_from_dict(data: Mapping[str, Any]) -> TrafficConfig:
    """Inverse of ``TrafficConfig.to_dict`` (the plan file hands it to Locust)."""
    samplers = dict(data["samplers"])
    samplers["connections"] = tuple(samplers["connections"])
    if samplers.get("api_targets") is not None:
        samplers["api_targets"] = tuple(samplers["api_targets"])
    return TrafficConfig(
        api=ApiUsersConfig(**data["api"]),
        dataplane=DataPlaneConfig(**data["dataplane"]),
        samplers=SamplerConfig(**samplers),
    )


def parse_slo(data: Any, path: str = "<scenario>") -> SloConfig:
    """Build an SloConfig from a scenario's ``slo:`` mapping (None = the defaults)."""
    defaults = SloConfig()
    fields = _Fields(data, path, "slo", tuple(f.name for f in dataclasses.fields(SloConfig)))
    return SloConfig(
        max_failed_api_requests=fields.integer("max_failed_api_requests", defaults.max_failed_api_requests),
        max_lost_writes=fields.integer("max_lost_writes", defaults.max_lost_writes),
        max_failed_dataplane_requests=fields.integer("max_failed_dataplane_requests",
                                                     defaults.max_failed_dataplane_requests),
        max_dataplane_gap_ms=fields.number("max_dataplane_gap_ms", defaults.max_dataplane_gap_ms),
        api_p99_ratio=fields.number("api_p99_ratio", defaults.api_p99_ratio),
        api_p99_floor_ms=fields.number("api_p99_floor_ms", defaults.api_p99_floor_ms, strict=False),
        baseline_min_samples=fields.integer("baseline_min_samples", defaults.baseline_min_samples, 1),
        api_latency_ratio=fields.number("api_latency_ratio", defaults.api_latency_ratio),
        api_latency_floor_ms=fields.number("api_latency_floor_ms", defaults.api_latency_floor_ms,
                                           strict=False),
        api_latency_min_samples=fields.integer("api_latency_min_samples", defaults.api_latency_min_samples,
                                               1),
    )

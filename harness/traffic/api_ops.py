"""Authenticated operation samplers: users' API operations at a constant rate.

The version-document samplers skip the API's request pipeline (no token
validation, no database, no view), so an operation that became ten times
slower leaves them untouched; the openstacksdk users run about one operation
a second, too few for a 3 s baseline. These samplers GET each listed
operation with the run's token every ``traffic.samplers.api_op_interval_ms``
on a reused connection (a client's session), so each operation has tens of
baseline samples for ``slo.api_latency``. They record ``source: opsampler``
(not ``sampler``: their failures are judged per operation like the users').
"""
from __future__ import annotations

from dataclasses import dataclass

OP_SAMPLER = "opsampler"


@dataclass(frozen=True)
class ApiTarget:
    """One API endpoint a sampler polls (a catalog service, by its type)."""

    name: str
    host: str
    port: int
    path: str  # what a sampler GETs: the endpoint's version document by default

#: (catalog service type, operation, path under the endpoint): read operations every user runs.
OPERATIONS: tuple[tuple[str, str, str], ...] = (
    ("compute", "servers-detail", "/servers/detail"),
    ("compute", "flavors-detail", "/flavors/detail"),
    ("compute", "os-services", "/os-services"),
    ("image", "images", "/v2/images"),
)


@dataclass(frozen=True)
class OperationTarget:
    target: ApiTarget
    op: str
    path: str


def operation_targets(api_targets: list[ApiTarget], token: str | None) -> list[OperationTarget]:
    """One sampler per operation whose service is in the catalog (none without a token)."""
    if not token:
        return []
    by_name = {target.name: target for target in api_targets}
    return [OperationTarget(by_name[service], op, by_name[service].path.rstrip("/") + suffix)
            for service, op, suffix in OPERATIONS if service in by_name]

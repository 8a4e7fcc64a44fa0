"""Which executor steps a failing target belongs to, not only the steps that overlap in time.

A violation on an instance is most often caused by a step on the host it
lived on (a compute agent that destroyed it at start) or on the network node
(the agent that programs its floating port), and that step may have ended
before the symptom showed (the 29-minute run blamed the network agent's swap,
which overlapped in time, not the compute agents that destroyed the
instances). Where an instance lived comes from ``placement`` events (the
migration write-burst probe writes one per live migration: the source host).
API targets belong to the steps on their own service (``compute`` to the
compute-api and the load balancer's drains).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.report.releases import StepSpan

PLACEMENT = "placement"
#: API target (a catalog service type) -> the services whose steps it belongs to.
API_SERVICES = {"compute": ("compute-api",), "identity": ("identity",), "image": ("image",)}
API_STEPS = ("drain-api", "undrain-api")
NETWORK_SERVICE = "network"
INSTANCE_STEPS = ("disable-compute", "migrate-instances", "enable-compute", "reboot-host")


def placements(events: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """instance name -> every compute host it was seen on."""
    hosts: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event.get("kind") == PLACEMENT and event.get("target") and event.get("host"):
            hosts[str(event["target"])].add(str(event["host"]))
    return hosts


def owning_steps(target: str, spans: Sequence[StepSpan], hosts: Mapping[str, set[str]],
                 before: float) -> list[StepSpan]:
    """The steps (started by ``before``) on the host or service ``target`` belongs to: forward
    steps latest first, then rollback steps (undoing a step rarely breaks what it broke).

    ``target`` is a violation's target: ``vm-1``, ``vm-1/new`` or an API target ``compute``.
    """
    name = target.split("/", 1)[0]
    if name in API_SERVICES:
        services = API_SERVICES[name]
        owned = [s for s in spans if s.service in services or (name == "compute" and s.name in API_STEPS)]
    elif name in hosts:
        lived_on = hosts[name]
        owned = [s for s in spans if s.service == NETWORK_SERVICE
                 or (s.host in lived_on and (s.service == "compute-agent" or s.name in INSTANCE_STEPS))]
    else:
        return []
    started = (s for s in owned if s.start <= before)
    return sorted(started, key=lambda s: (s.direction == "rollback", -s.start))

"""The scheduler (``:8781``): picks the compute host for a build or a migration.

Filters: the agent is up (heartbeat within ``service_down_time``), not
disabled, not forced down, not in ``ignore_hosts``, below capacity. Weigher:
least loaded first (ties by host name, so choices are reproducible). Host
states come from the conductor: the scheduler has no database access.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from minicloud import objects
from minicloud.config import Config
from minicloud.context import RequestContext, admin_context
from minicloud.dataplane.healthz import add_healthz
from minicloud.defects import has_defect
from minicloud.rpc import ConductorAPI, NoValidHost, RPCServer
from minicloud.rpc_clients import SCHEDULER_RPC_VERSION, Heartbeat
from minicloud.web import Router, serve

LOG = logging.getLogger("minicloud.scheduler")
INSTANCES_PER_HOST = 20
#: how long the 1.1+sched-cache variant reuses the host states it fetched
HOST_STATE_CACHE_SECONDS = 60.0


def host_disabled(state: dict[str, Any], release: Any = None) -> bool:
    """The disabled flag of a host state (``compute_host_states``)."""
    if has_defect(release, "sched-nodisabled"):
        # The bug: 1.1 reads Nova's os-services field name; host states carry a boolean `disabled`.
        return state.get("status") == "disabled"
    return bool(state["disabled"])


def choose_host(states: list[dict[str, Any]], ignore_hosts: list[str],
                force_hosts: list[str], release: Any = None) -> dict[str, Any]:
    """The least-loaded acceptable host; NoValidHost names why none fits."""
    candidates, rejected = [], []
    for state in states:
        reason = None
        if state["host"] in ignore_hosts:
            reason = "ignored"
        elif force_hosts and state["host"] not in force_hosts:
            reason = "not forced"
        elif host_disabled(state, release):
            reason = "disabled"
        elif state["forced_down"] or not state["up"]:
            reason = "down"
        elif state["instances"] >= INSTANCES_PER_HOST:
            reason = "full"
        if reason:
            rejected.append(f"{state['host']}: {reason}")
        else:
            candidates.append(state)
    if not candidates:
        detail = "; ".join(rejected) or "no compute host registered"
        raise NoValidHost(f"There are not enough hosts available ({detail})")
    best = min(candidates, key=lambda s: (s["instances"], s["host"]))
    return {"host": best["host"], "rpc_url": best["rpc_url"]}


class SchedulerManager:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.objects = objects.for_release(config.release)
        self.conductor = ConductorAPI(config)
        self._cached: tuple[float, list[dict[str, Any]]] | None = None

    def host_states(self, ctx: RequestContext) -> list[dict[str, Any]]:
        if has_defect(self.config.release, "sched-cache"):
            # The bug: 1.1 spares the conductor a call per build by reusing the host states
            # for a minute, so a host disabled meanwhile still looks enabled.
            if self._cached is None or time.monotonic() - self._cached[0] > HOST_STATE_CACHE_SECONDS:
                self._cached = (time.monotonic(), self.conductor.compute_host_states(ctx))
            return self._cached[1]
        states: list[dict[str, Any]] = self.conductor.compute_host_states(ctx)
        return states

    def select_destinations(self, ctx: RequestContext, request_spec: Any) -> dict[str, Any]:
        states = self.host_states(ctx)
        chosen = choose_host(states, list(request_spec.ignore_hosts), list(request_spec.force_hosts),
                             self.config.release)
        LOG.info("instance %s -> %s (request %s)", request_spec.instance_uuid, chosen["host"],
                 ctx.request_id)
        return chosen


def main(config: Config) -> int:
    manager = SchedulerManager(config)
    server = RPCServer(manager, SCHEDULER_RPC_VERSION, manager.objects,
                       calls={"select_destinations"}, casts=set())
    router = Router()
    add_healthz(router, config)
    server.mount(router)
    values = {"version": config.release.service_version, "release": config.release.label,
              "rpc_url": f"http://{config.bind}:{config.port}"}

    def beat() -> None:
        manager.conductor.service_create_or_update(admin_context(), config.host, "scheduler", values)

    # Registration is just the first heartbeat: the scheduler serves even while
    # the conductor is briefly away (e.g. restarting during an upgrade).
    heartbeat = Heartbeat(beat, config.heartbeat_interval, "scheduler").start()
    return serve(router, config.bind, config.port, "scheduler", config.shutdown_timeout,
                 on_stop=heartbeat.stop)

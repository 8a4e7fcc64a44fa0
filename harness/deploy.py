"""Bring a topology up on a backend, or leave nothing behind.

``deploy`` is all-or-nothing: if any step fails (a service does not become
ready, Ctrl-C, a bug), everything of the run is stopped before the error
propagates, so no half-deployed cloud is left. A ``kill -9`` of the deploying
process cannot run that cleanup; ``rollgate down RUN_ID`` reaps what it left.
"""
from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness.backends import make_backend
from harness.backends.base import HostSpec
from harness.backends.docker import DockerBackend
from harness.backends.process import ProcessBackend
from harness.clouds import minicloud
from harness.errors import DeployError, RollgateError, UsageError
from harness.runstate import RunState
from harness.waiting import wait_until

LOG = logging.getLogger(__name__)

AnyBackend = ProcessBackend | DockerBackend


#: services that read the database schema when they start (they refuse a schema
#: that is behind or ahead of their code), so they start after ``db sync``.
SCHEMA_SERVICES = frozenset({"conductor", "compute-api"})


def all_in_one(release: str, computes: int) -> list[HostSpec]:
    """``controller`` (controller + network roles) and ``compute-1`` ... ``compute-N``."""
    problem = minicloud.check_release(release)
    if problem:
        raise UsageError(f"--release: {problem}")
    if computes < 1:
        raise UsageError("--computes: must be at least 1")
    hosts = [HostSpec("controller", ("controller", "network"),
                      dict.fromkeys(minicloud.services_for(["controller", "network"]), release))]
    for index in range(1, computes + 1):
        hosts.append(HostSpec(f"compute-{index}", ("compute",),
                              dict.fromkeys(minicloud.services_for(["compute"]), release)))
    return hosts


def deploy(state: RunState, hosts: Sequence[HostSpec], timeout: float = 60.0) -> AnyBackend:
    """Deploy ``hosts`` on the run's backend (``state.backend``); on any failure nothing is
    left running."""
    started = time.monotonic()
    state.status = "deploying"
    state.save()
    backend = make_backend(state.backend, state)
    if isinstance(backend, DockerBackend):
        try:
            backend.ensure_images(list(hosts))
        except DeployError:
            state.status = "failed"
            state.save()
            raise
    try:
        for spec in hosts:
            if "lb" in spec.roles:
                spec.services.setdefault("haproxy", "system")
            backend.register_host(spec)
        roles = {h.name: list(h.roles) for h in hosts}
        layout = _cloud_layout(backend, hosts, roles)
        state.endpoints = layout.endpoints
        for spec in hosts:
            backend.write_config(spec.name, layout)
        ordered = sorted(hosts, key=lambda h: min(
            (minicloud.ROLE_ORDER.index(r) for r in h.roles if r in minicloud.ROLE_ORDER), default=99))
        # The database first (PostgreSQL on docker; nothing to start for SQLite), then its schema.
        databases = [h for h in ordered if "db" in h.roles]
        for spec in databases:
            for service in spec.services:
                backend.start_service(spec.name, service, wait=False)
        for spec in databases:
            for service in spec.services:
                backend.wait_ready(spec.name, service, timeout=timeout)
        controller = next(h.name for h in hosts if "controller" in h.roles)
        # The schema sync (a process of its own) overlaps with starting every
        # service that does not read the schema at start; the ones that do
        # (SCHEMA_SERVICES) start once it is done. Services retry their
        # peers, so on two cores the imports of ~15 processes overlap
        # instead of queueing.
        rest = [h for h in ordered if "db" not in h.roles]
        if isinstance(backend, DockerBackend):
            # manage runs in the controller's network namespace, which the
            # host's first container creates: no overlap with the starts.
            _sync_database(backend, controller)
            _start_hosts(backend, rest)
        else:
            with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="db-sync") as pool:
                synced = pool.submit(_sync_database, backend, controller)
                _start_hosts(backend, rest, lambda service: service not in SCHEMA_SERVICES)
                synced.result()
            _start_hosts(backend, rest, lambda service: service in SCHEMA_SERVICES)
        for spec in rest:
            for service in _start_order(spec):
                backend.wait_ready(spec.name, service, timeout=timeout)
        _write_clouds_yaml(state, layout.public_endpoints.get("identity", layout.endpoints["identity"]))
        computes = [h.name for h in hosts if "compute" in h.roles]
        _wait_computes_registered(state, computes, timeout)
        state.status = "up"
        state.extra["deploy_seconds"] = round(time.monotonic() - started, 2)
        state.save()
        return backend
    except BaseException as exc:
        LOG.error("deploy of %s failed; stopping everything it started", state.run_id)
        backend.destroy()
        state.status = "failed"
        state.save()
        if isinstance(exc, RollgateError):
            raise
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise DeployError(f"deploy of {state.run_id} failed: {type(exc).__name__}: {exc}") from exc


def _start_hosts(backend: AnyBackend, hosts: Sequence[HostSpec],
                 which: Callable[[str], bool] = lambda service: True) -> None:
    """Start the services of ``hosts`` that ``which`` selects, without waiting for readiness.

    Docker: one thread per host (a container takes ~0.3 s of engine time to create
    and start, so ~25 of them in sequence would dominate the deploy); the
    process backend spawns in order, as it always has.
    """
    def start_host(spec: HostSpec) -> None:
        for service in _start_order(spec):
            if not which(service):
                continue
            backend.start_service(spec.name, service, wait=False)

    if not isinstance(backend, DockerBackend):
        for spec in hosts:
            start_host(spec)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="deploy") as pool:
        for future in [pool.submit(start_host, spec) for spec in hosts]:
            future.result()


def _start_order(spec: HostSpec) -> list[str]:
    """A host's services in spec order, its data-plane services (hypervisor, datapath) first:
    on docker an agent's container is created after the one it programs."""
    return sorted(spec.services, key=lambda s: s not in ("hypervisor", "datapath"))


def _cloud_layout(backend: AnyBackend, hosts: Sequence[HostSpec],
                  roles: dict[str, list[str]]) -> minicloud.CloudLayout:
    """Where the cloud's services are: the docker backend has its own (run network inside,
    published ports outside); the process backend's hosts are reached where they listen."""
    if isinstance(backend, DockerBackend):
        return backend.cloud_layout(roles)
    addresses = {h.name: backend.address(h.name) for h in hosts}
    return minicloud.layout(addresses, roles, backend.database)


def _sync_database(backend: AnyBackend, controller: str) -> None:
    """Create the schema at the controller's release (expand and contract heads)."""
    result = backend.manage(controller, "db", "sync")
    if not result.ok:
        raise DeployError(
            f"minicloud-manage db sync failed (exit {result.rc}): "
            f"{(result.stderr or result.stdout).strip()[-2000:]}")


def connect(state: RunState, cloud: str = "rollgate") -> Any:
    """An openstacksdk connection to the run's cloud, from its clouds.yaml."""
    import openstack.config

    loader = openstack.config.OpenStackConfig(config_files=[str(state.directory / "clouds.yaml")])
    import openstack.connection

    return openstack.connection.Connection(config=loader.get_one(cloud))


def _wait_computes_registered(state: RunState, computes: list[str], timeout: float) -> None:
    """Wait until the compute API lists every compute agent as up."""
    conn = connect(state)

    def registered() -> bool:
        up = {s.host for s in conn.compute.services()
              if s.binary == minicloud.COMPUTE_BINARY and s.state == "up"}
        return set(computes) <= up

    wait_until(registered, timeout=timeout, interval=0.1, what=f"compute services {computes} up")


def _write_clouds_yaml(state: RunState, identity_url: str) -> Path:
    path = state.directory / "clouds.yaml"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(minicloud.clouds_yaml(identity_url), sort_keys=False))
    tmp.replace(path)
    return path

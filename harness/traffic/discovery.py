"""Find what to send traffic to: the catalog's endpoints and the instances' data planes.

Runs in the harness process with openstacksdk (the real client). An
unreachable cloud here is an ERROR raised before any traffic starts; instances
missing a floating address are skipped with a warning (they have no data plane
to measure). ``seed_instances`` boots servers when the cloud has too few, so
``rollgate observe`` on a fresh ``rollgate up`` has data planes to watch.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import RollgateError
from harness.traffic.config import TrafficConfig
from harness.traffic.plan import ApiTarget, InstanceTarget

LOG = logging.getLogger(__name__)
SEED_PREFIX = "rollgate-seed-"


class DiscoveryError(RollgateError):
    """The cloud could not be reached or described: ERROR, not FAIL."""


def connect(clouds_yaml: str | Path, cloud: str, timeout_s: float = 10.0) -> Any:
    import openstack.config
    import openstack.connection

    region = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)]).get_one(
        cloud=cloud, api_timeout=timeout_s)
    return openstack.connection.Connection(config=region)


def api_targets(connection: Any, config: TrafficConfig) -> tuple[list[ApiTarget], str]:
    """(one sampler target per public catalog endpoint, a token for them)."""
    session = connection.session
    token = session.get_token()
    catalog = session.auth.get_access(session).service_catalog.catalog
    wanted = config.samplers.api_targets
    targets = []
    for service in catalog:
        service_type = service.get("type", "")
        if wanted is not None and service_type not in wanted:
            continue
        public = [e for e in service.get("endpoints", []) if e.get("interface") == "public"]
        if not public:
            continue
        url = urlsplit(public[0]["url"])
        port = url.port or (443 if url.scheme == "https" else 80)
        targets.append(ApiTarget(service_type, url.hostname or "127.0.0.1", port, url.path or "/"))
    missing = sorted(set(wanted or ()) - {t.name for t in targets})
    if missing:
        raise DiscoveryError(
            f"traffic.samplers.api_targets: not in the cloud's catalog: {', '.join(missing)}")
    return targets, token


def instance_target(server: Any) -> InstanceTarget | None:
    """The data plane of a server: its floating address and ``dataplane_port`` metadata."""
    port = (server.metadata or {}).get("dataplane_port")
    for entries in (server.addresses or {}).values():
        for entry in entries:
            if entry.get("OS-EXT-IPS:type") == "floating" and port:
                return InstanceTarget(server.name or server.id, server.id, entry["addr"], int(port))
    return None


def seed_instances(connection: Any, wanted: int, timeout_s: float = 60.0) -> None:
    """Boot servers until ``wanted`` ACTIVE ones with a data plane exist."""
    compute = connection.compute
    began = time.monotonic()
    have = [s for s in compute.servers() if s.status == "ACTIVE" and instance_target(s)]
    if len(have) >= wanted:
        return
    flavors, images = list(compute.flavors()), list(connection.image.images())
    if not flavors or not images:
        raise DiscoveryError(f"cannot seed instances: {len(flavors)} flavors, {len(images)} images")
    started = [
        compute.create_server(name=f"{SEED_PREFIX}{len(have) + index + 1}", flavor_id=flavors[0].id,
                              image_id=images[0].id, networks="none")
        for index in range(wanted - len(have))
    ]
    for server in started:
        try:
            compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=0.2, wait=timeout_s)
        except Exception as exc:
            raise DiscoveryError(f"seed server {server.name} did not become ACTIVE: {exc}") from exc
    LOG.info("seeded %d instances in %.1f s", len(started), time.monotonic() - began)


def discover(clouds_yaml: str | Path, cloud: str, config: TrafficConfig,
             seed: int = 0) -> tuple[list[ApiTarget], list[InstanceTarget], str]:
    """(API targets, instance targets, token) of the cloud ``clouds_yaml`` describes."""
    try:
        connection = connect(clouds_yaml, cloud, config.api.request_timeout_s)
        targets, token = api_targets(connection, config)
        if seed:
            seed_instances(connection, seed, config.api.create_deadline_s * 2)
        instances: list[InstanceTarget] = []
        for server in connection.compute.servers():
            if server.status != "ACTIVE" or (server.name or "").startswith("rollgate-traffic-"):
                continue
            target = instance_target(server)
            if target is None:
                LOG.warning("server %s has no floating address: no data plane to watch", server.id)
                continue
            if any(known.name == target.name for known in instances):
                target = InstanceTarget(f"{target.name}-{target.server_id[:8]}", target.server_id,
                                        target.host, target.port)
            instances.append(target)
    except DiscoveryError:
        raise
    except Exception as exc:
        raise DiscoveryError(f"cannot discover the cloud of {clouds_yaml} ({cloud}): "
                             f"{type(exc).__name__}: {exc}") from exc
    return targets, sorted(instances, key=lambda i: i.name), token

"""The minicloud profile: which services a role runs, how they are configured,
started, checked and administered.

The harness never imports minicloud: it writes each host's JSON config, runs
``python -m minicloud SERVICE --config FILE`` (on the process backend) and
talks to the services over HTTP.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.defect_catalog import minicloud_variants

MINICLOUD_SOURCE = Path(__file__).resolve().parents[3] / "images" / "minicloud"

RELEASES = ("1.0", "1.1", "1.1.1", "2.0")

# Services of each role, in start order (a host's services start in this order,
# and hosts start in ROLE_ORDER).
ROLE_SERVICES: dict[str, tuple[str, ...]] = {
    "controller": ("identity", "image", "conductor", "scheduler", "compute-api"),
    "network": ("datapath", "network"),
    "compute": ("hypervisor", "compute-agent"),
    "lb": ("haproxy",),  # not a minicloud service: Debian's HAProxy
}
ROLE_ORDER = ("db", "lb", "controller", "network", "compute")

PORTS = {
    "identity": 5000, "image": 9292, "compute-api": 8774, "conductor": 8780,
    "scheduler": 8781, "compute-agent": 8782, "hypervisor": 8783,
    "network": 9696, "datapath": 9697,
}
ENDPOINT_OF_SERVICE = {
    "identity": "identity", "image": "image", "compute-api": "compute",
    "conductor": "conductor", "scheduler": "scheduler", "network": "network",
    "datapath": "datapath",
}
ADMIN_PASSWORD = "rollgate-admin"
#: minicloud's services that register in the services table -> the binary its compute API
#: reports in os-services (Nova's names, as a client written for Nova filters on them).
OS_SERVICES_BINARY = {"compute-agent": "nova-compute", "conductor": "nova-conductor",
                      "scheduler": "nova-scheduler"}
COMPUTE_BINARY = OS_SERVICES_BINARY["compute-agent"]


def release_series(label: str) -> str:
    """``1.1.1+VARIANT`` -> ``1.1``: patch releases belong to their series."""
    name = label.partition("+")[0]
    return ".".join(name.split(".")[:2])


def check_release(label: str) -> str | None:
    """None when valid, else what is wrong and what would be valid."""
    name, _, variant = label.partition("+")
    if name not in RELEASES:
        return f"unknown release {label!r}; valid: {', '.join(RELEASES)}"
    if variant and variant not in minicloud_variants():
        return f"unknown variant {variant!r}; valid: {', '.join(minicloud_variants())}"
    return None


def services_for(roles: tuple[str, ...] | list[str]) -> list[str]:
    out: list[str] = []
    for role in ROLE_ORDER:
        if role in roles:
            out.extend(ROLE_SERVICES.get(role, ()))
    return out


@dataclass
class CloudLayout:
    """Where each cloud-wide service is: computed once per deployment."""

    endpoints: dict[str, str]
    public_endpoints: dict[str, str]
    database: str


#: endpoints a load balancer fronts when the topology has one
LB_FRONTED = ("identity", "image", "compute", "conductor", "scheduler")


def layout(addresses: dict[str, str], roles: dict[str, list[str]], database: str) -> CloudLayout:
    """Endpoints of a cloud from its hosts' addresses and roles.

    Without a load balancer each endpoint is the first host of its role; with
    one, the controllers' endpoints (public APIs and RPC) go through it.
    """
    endpoints: dict[str, str] = {}
    for host, host_roles in roles.items():
        for service in services_for(host_roles):
            name = ENDPOINT_OF_SERVICE.get(service)
            if name and name not in endpoints:
                endpoints[name] = f"http://{addresses[host]}:{PORTS[service]}"
    lb = next((h for h, r in roles.items() if "lb" in r), None)
    if lb:
        for name in LB_FRONTED:
            if name in endpoints:
                port = endpoints[name].rsplit(":", 1)[1]
                endpoints[name] = f"http://{addresses[lb]}:{port}"
    return CloudLayout(endpoints=endpoints, public_endpoints={}, database=database)


def host_config(host: str, address: str, state_dir: Path, releases: dict[str, str],
                cloud: CloudLayout, extra: dict[str, object] | None = None) -> dict[str, object]:
    """The JSON config minicloud's services on ``host`` read."""
    default = next(iter(releases.values())) if releases else "1.0"
    return {
        "release": default,
        "releases": dict(releases),
        "host": host,
        "bind": address,
        "state_dir": str(state_dir),
        "database": cloud.database,
        "endpoints": cloud.endpoints,
        "public_endpoints": cloud.public_endpoints,
        "upgrade_levels": {"compute": "auto"},
        "heartbeat_interval": 0.5,
        "service_down_time": 3.0,
        "shutdown_timeout": 10.0,
        "admin_password": ADMIN_PASSWORD,
        **(extra or {}),
    }


def write_host_config(path: Path, config: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True))
    tmp.replace(path)


def service_command(service: str, config_path: Path) -> list[str]:
    return [sys.executable, "-m", "minicloud", service, "--config", str(config_path)]


def manage_command(config_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "minicloud.manage", "--config", str(config_path), *args]


def process_env() -> dict[str, str]:
    """Environment for minicloud processes run from the source tree."""
    return {"PYTHONPATH": str(MINICLOUD_SOURCE), "PYTHONDONTWRITEBYTECODE": "1"}


def health_url(address: str, service: str) -> str:
    return f"http://{address}:{PORTS[service]}/healthz"


def clouds_yaml(auth_url: str) -> dict[str, object]:
    """openstacksdk configuration for the cloud (cloud name ``rollgate``)."""
    return {
        "clouds": {
            "rollgate": {
                "auth": {
                    "auth_url": auth_url + "/v3",
                    "username": "admin",
                    "password": ADMIN_PASSWORD,
                    "project_name": "admin",
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "identity_api_version": 3,
                "interface": "public",
                "region_name": "RegionOne",
            },
            "rollgate-demo": {
                "auth": {
                    "auth_url": auth_url + "/v3",
                    "username": "demo",
                    "password": "demo-password",
                    "project_name": "demo",
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "identity_api_version": 3,
                "interface": "public",
                "region_name": "RegionOne",
            },
        }
    }

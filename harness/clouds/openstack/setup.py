"""The openstack profile's cloud-level setup and readiness, through its APIs (openstacksdk).

The catalog (service project, service users, services and endpoints) must
exist before any Nova service starts: nova-conductor exits with 401 when its
service user is missing (docs/openstack.md). A demo project and user match
minicloud's clouds.yaml (cloud ``rollgate-demo``), and flavor ``m1.tiny``
the one minicloud ships, so the same client code runs against both clouds.
"""
from __future__ import annotations

import logging
from typing import Any

from harness.clouds.openstack import REGION, SERVICE_PASSWORD, catalog

LOG = logging.getLogger(__name__)

SERVICE_USERS = ("nova", "placement", "neutron")
SERVICE_ROLES = ("admin", "service")
DEMO_PROJECT = DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"  # minicloud.clouds_yaml's rollgate-demo
DEMO_ROLE = "member"
FLAVOR = {"name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1}


def create_catalog(conn: Any, lb_ports: dict[str, int]) -> int:
    """Projects, users, roles, services and endpoints; how many API calls that took."""
    identity = conn.identity
    calls = 0
    service_project = identity.create_project(name="service", domain_id="default")
    demo_project = identity.create_project(name=DEMO_PROJECT, domain_id="default")
    roles = {role.name: role for role in identity.roles()}
    calls += 3
    for name in (*SERVICE_ROLES, DEMO_ROLE):
        if name not in roles:  # bootstrap makes admin, member and reader; service is ours
            roles[name] = identity.create_role(name=name)
            calls += 1
    for name in SERVICE_USERS:
        user = identity.create_user(name=name, password=SERVICE_PASSWORD, domain_id="default")
        for role in SERVICE_ROLES:
            identity.assign_project_role_to_user(service_project, user, roles[role])
        calls += 1 + len(SERVICE_ROLES)
    demo = identity.create_user(name=DEMO_USER, password=DEMO_PASSWORD, domain_id="default",
                                default_project_id=demo_project.id)
    identity.assign_project_role_to_user(demo_project, demo, roles[DEMO_ROLE])
    calls += 2
    for name, kind, public, internal in catalog(lb_ports):
        service = identity.create_service(name=name, type=kind)
        for interface, url in (("public", public), ("internal", internal), ("admin", internal)):
            identity.create_endpoint(service_id=service.id, interface=interface, url=url, region_id=REGION)
        calls += 4
    return calls


def computes_up(conn: Any, hosts: list[str]) -> bool:
    """Every named nova-compute service reports up."""
    up = {s.host for s in conn.compute.services() if s.binary == "nova-compute" and s.state == "up"}
    missing = set(hosts) - up
    if missing:
        raise AssertionError(f"nova-compute not up yet on {', '.join(sorted(missing))}")
    return True


def resource_providers(conn: Any, hosts: list[str]) -> bool:
    """Placement has a resource provider for every compute host (named after it)."""
    names = {provider.name for provider in conn.placement.resource_providers()}
    missing = set(hosts) - names
    if missing:
        raise AssertionError(f"no resource provider yet for {', '.join(sorted(missing))}")
    return True


def create_flavor(conn: Any) -> None:
    conn.compute.create_flavor(**FLAVOR)

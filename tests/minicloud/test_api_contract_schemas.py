"""minicloud's compute views validate against the harness's Nova schemas at every microversion.

The contract check (``harness.checks.contract``) judges a run against
``harness.checks.contract_schemas``; this keeps those schemas and what
minicloud claims of Nova's API in step, release by release, and shows the
api-contract defect variants breaking them exactly where they should.
"""
from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from minicloud.api import views
from minicloud.api.microversion import APIVersion
from minicloud.releases import RELEASE_NAMES, get_release

from harness.checks.contract_schemas import schema_for

BASE = "http://127.0.10.1:8774/v2.1"
UUID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
INSTANCE = {"uuid": UUID, "name": "vm", "project_id": "p1", "user_id": "u1", "floating_port": 20001,
            "floating_ip": "127.0.10.2", "host": "compute-1",
            "image_ref": "3c0a4d0e-9f1c-4a55-8c36-1f0e5b5a0c01",
            "flavor_id": 1, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:01Z",
            "launched_at": "2026-01-01T00:00:01Z", "vm_state": "active", "task_state": None, "power_state": 1,
            "locked": False, "description": None, "fault": None}
FLAVOR = {"id": 1, "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1}
SERVICE = {"id": 3, "uuid": "4e023bf6-4ae3-4680-9016-38f61bf7ed9c", "binary": "compute-agent",
           "host": "compute-1", "disabled": False, "state": "up", "last_seen_up": "2026-01-01T00:00:00Z",
           "updated_at": "2026-01-01T00:00:00Z", "disabled_reason": None, "forced_down": False}
MIGRATION = {"id": 1, "uuid": "6a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d", "instance_uuid": UUID,
             "source_host": "compute-1", "dest_host": "compute-2", "status": "completed",
             "migration_type": "live-migration", "created_at": "2026-01-01T00:00:00Z",
             "updated_at": "2026-01-01T00:00:02Z"}


def microversions(maximum: str) -> list[str]:
    top = APIVersion(maximum)
    return [f"2.{minor}" for minor in range(1, top.minor + 1)]


def bodies(label: str, version: str) -> dict[str, Any]:
    release, mv = get_release(label), APIVersion(version)
    server = views.server_detail(INSTANCE, base=BASE, version=mv, is_admin=True,
                                 flavors={"1": FLAVOR}, host_status={"compute-1": "UP"}, release=release)
    return {
        "server": {"server": server},
        "servers/detail": {"servers": [server]},
        "servers": {"servers": [views.server_summary(INSTANCE, BASE)]},
        "flavors": {"flavors": [views.flavor_view(FLAVOR, BASE, mv, detail=False, release=release)]},
        "flavor": {"flavor": views.flavor_view(FLAVOR, BASE, mv, detail=True, release=release)},
        "os-services": {"services": [views.service_view(SERVICE, mv)]},
        "os-migrations": {"migrations": [views.migration_view(MIGRATION, INSTANCE, BASE, mv)]},
    }


def errors(label: str, version: str) -> list[str]:
    found = []
    for resource, body in bodies(label, version).items():
        schema = schema_for(resource, version)
        assert schema is not None
        found += [f"{resource} at {version}: {e.message}"
                  for e in jsonschema.Draft7Validator(schema).iter_errors(body)]
    return found


@pytest.mark.parametrize("name", RELEASE_NAMES)
def test_every_release_answers_novas_schemas_at_every_microversion(name: str) -> None:
    release = get_release(name)
    problems = [p for version in microversions(release.max_microversion) for p in errors(name, version)]
    assert problems == []


def test_os_services_shows_novas_binary_names() -> None:
    assert views.service_view(SERVICE, APIVersion("2.1"))["binary"] == "nova-compute"
    conductor = views.service_view({**SERVICE, "binary": "conductor"}, APIVersion("2.53"))
    assert (conductor["binary"], conductor["zone"]) == ("nova-conductor", "internal")


def test_the_hostid_defect_breaks_the_2_1_schema_only() -> None:
    assert any("'hostId' is a required property" in e for e in errors("1.1+hostid-microversion", "2.1"))
    assert errors("1.1+hostid-microversion", "2.3") == []


def test_the_early_flavor_description_breaks_2_54_only() -> None:
    assert any("'description' was unexpected" in e for e in errors("1.1+flavor-description-early", "2.54"))
    assert errors("1.1+flavor-description-early", "2.53") == []
    assert errors("1.1+flavor-description-early", "2.55") == []

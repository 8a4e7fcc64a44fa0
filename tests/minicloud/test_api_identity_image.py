"""identity and image services as real processes, driven by openstacksdk and raw HTTP."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.minicloud.api_support import (
    ADMIN_PASSWORD,
    MiniCloud,
    http,
    issue_token,
    random_loopback,
    sdk_connection,
)

pytestmark = pytest.mark.integration

CIRROS_IMAGE_ID = "3c0a4d0e-9f1c-4a55-8c36-1f0e5b5a0c01"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[MiniCloud]:
    cloud = MiniCloud(tmp_path, random_loopback())
    try:
        cloud.start_together(("identity", "image"))
        yield cloud
    finally:
        cloud.stop_all()


def test_sdk_password_auth_gets_a_catalog_and_lists_the_image(cloud: MiniCloud) -> None:
    conn = sdk_connection(cloud)
    assert conn.current_project.name == "admin"
    catalog = {entry["type"]: entry for entry in conn.service_catalog}
    assert set(catalog) == {"identity", "image", "compute"}
    compute_urls = {e["url"] for e in catalog["compute"]["endpoints"]}
    assert compute_urls == {f"{cloud.url('compute-api')}/v2.1"}
    images = list(conn.image.images())
    assert [(i.id, i.name, i.status) for i in images] == [(CIRROS_IMAGE_ID, "cirros", "active")]
    assert conn.image.find_image("cirros").id == CIRROS_IMAGE_ID
    assert conn.image.get_image(CIRROS_IMAGE_ID).disk_format == "qcow2"


def test_demo_user_gets_member_role_on_demo_only(cloud: MiniCloud) -> None:
    conn = sdk_connection(cloud, "demo", "demo-password")
    access = conn.session.auth.get_access(conn.session)
    assert access.project_name == "demo"
    assert sorted(access.role_names) == ["member", "reader"]
    with pytest.raises(Exception, match=r"(?i)unauthorized|401|authenticat"):
        sdk_connection(cloud, "demo", "demo-password", project="admin").authorize()
    with pytest.raises(Exception, match=r"(?i)unauthorized|401|authenticat"):
        sdk_connection(cloud, "demo", "wrong-password").authorize()


def test_token_validation_rescoping_and_revocation(cloud: MiniCloud) -> None:
    identity = cloud.url("identity")
    admin = issue_token(cloud, "admin", ADMIN_PASSWORD, "admin")
    demo = issue_token(cloud, "demo", "demo-password", "demo")
    status, headers, body = http("GET", f"{identity}/v3/auth/tokens", admin,
                                 headers={"X-Subject-Token": demo})
    assert status == 200
    assert headers["X-Subject-Token"] == demo
    assert body["token"]["project"]["name"] == "demo"
    assert body["token"]["user"]["name"] == "demo"
    assert body["token"]["expires_at"].endswith("Z")
    status, _, _ = http("GET", f"{identity}/v3/auth/tokens", admin, headers={"X-Subject-Token": "nope"})
    assert status == 404
    status, _, _ = http("GET", f"{identity}/v3/auth/tokens", "nope", headers={"X-Subject-Token": demo})
    assert status == 401
    # token method: a new token for the same user, never outliving the original
    rescope = {"auth": {"identity": {"methods": ["token"], "token": {"id": demo}},
                        "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}}
    status, headers, body = http("POST", f"{identity}/v3/auth/tokens", body=rescope)
    assert status == 201
    assert headers["X-Subject-Token"] != demo
    assert body["token"]["methods"] == ["token"]
    assert {r["name"] for r in body["token"]["roles"]} == {"member", "reader"}
    # revoke the original: it stops validating, the rescoped one keeps working
    status, _, _ = http("DELETE", f"{identity}/v3/auth/tokens", admin, headers={"X-Subject-Token": demo})
    assert status == 204
    status, _, _ = http("GET", f"{identity}/v3/auth/tokens", admin, headers={"X-Subject-Token": demo})
    assert status == 404


def test_tokens_survive_an_identity_restart(cloud: MiniCloud) -> None:
    token = issue_token(cloud, "demo", "demo-password", "demo")
    identity = next(s for s in cloud.services if s.name == "identity")
    assert identity.stop() == 0
    cloud.services.remove(identity)
    cloud.start("identity")
    status, _, body = http("GET", f"{cloud.url('identity')}/v3/auth/tokens", token,
                           headers={"X-Subject-Token": token})
    assert status == 200
    assert body["token"]["project"]["name"] == "demo"


def test_image_api_needs_a_token_and_answers_glance_shapes(cloud: MiniCloud) -> None:
    image = cloud.url("image")
    status, _, _ = http("GET", f"{image}/v2/images")
    assert status == 401
    status, _, _ = http("GET", f"{image}/v2/images", "not-a-token")
    assert status == 401
    token = issue_token(cloud, "demo", "demo-password", "demo")
    status, _, body = http("GET", f"{image}/v2/images?name=cirros", token)
    assert status == 200
    assert [i["id"] for i in body["images"]] == [CIRROS_IMAGE_ID]
    status, _, body = http("GET", f"{image}/v2/images?name=ubuntu", token)
    assert body["images"] == []
    status, _, body = http("GET", f"{image}/v2/images/{CIRROS_IMAGE_ID}", token)
    assert (status, body["name"], body["visibility"]) == (200, "cirros", "public")
    status, _, _ = http("GET", f"{image}/v2/images/00000000-0000-0000-0000-000000000000", token)
    assert status == 404
    status, _, body = http("GET", f"{image}/v2/schemas/image", token)
    assert status == 200
    assert "status" in body["properties"]

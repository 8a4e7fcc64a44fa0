"""image (:9292): the read-only Glance v2 subset a server boot needs.

minicloud's instances are workload processes, not disks, so an image is only a
record: one public, active ``cirros`` image with a fixed id, which the harness
and the compute API can rely on in every release.
"""
from __future__ import annotations

import logging
from typing import Any

from minicloud.auth import TokenValidator
from minicloud.config import Config
from minicloud.web import HTTPError, Request, Response, Router, serve

LOG = logging.getLogger("minicloud.image")

CIRROS_IMAGE_ID = "3c0a4d0e-9f1c-4a55-8c36-1f0e5b5a0c01"

IMAGES: tuple[dict[str, Any], ...] = (
    {
        "id": CIRROS_IMAGE_ID,
        "name": "cirros",
        "status": "active",
        "visibility": "public",
        "protected": False,
        "os_hidden": False,
        "owner": None,
        "container_format": "bare",
        "disk_format": "qcow2",
        "min_disk": 0,
        "min_ram": 0,
        "size": 21430272,
        "virtual_size": 117440512,
        "checksum": "c8fc807773e5354afe61636071771906",
        "os_hash_algo": "sha512",
        "os_hash_value": None,
        "tags": [],
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    },
)

IMAGE_SCHEMA: dict[str, Any] = {
    "name": "image",
    "additionalProperties": {"type": "string"},
    "links": [{"href": "{self}", "rel": "self"}, {"href": "{file}", "rel": "enclosure"},
              {"href": "{schema}", "rel": "describedby"}],
    "properties": {
        "id": {"type": "string", "readOnly": True},
        "name": {"type": ["null", "string"], "maxLength": 255},
        "status": {"type": "string", "readOnly": True,
                   "enum": ["queued", "saving", "active", "killed", "deleted", "uploading",
                            "importing", "pending_delete", "deactivated"]},
        "visibility": {"type": "string", "enum": ["community", "public", "private", "shared"]},
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "owner": {"type": ["null", "string"]},
        "container_format": {"type": ["null", "string"]},
        "disk_format": {"type": ["null", "string"]},
        "min_disk": {"type": "integer"},
        "min_ram": {"type": "integer"},
        "size": {"type": ["null", "integer"], "readOnly": True},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True},
        "checksum": {"type": ["null", "string"], "readOnly": True},
        "os_hash_algo": {"type": ["null", "string"], "readOnly": True},
        "os_hash_value": {"type": ["null", "string"], "readOnly": True},
        "tags": {"type": "array", "items": {"type": "string"}},
        "created_at": {"type": "string", "readOnly": True},
        "updated_at": {"type": "string", "readOnly": True},
        "self": {"type": "string", "readOnly": True},
        "file": {"type": "string", "readOnly": True},
        "schema": {"type": "string", "readOnly": True},
    },
}


def image_view(image: dict[str, Any]) -> dict[str, Any]:
    return {**image, "self": f"/v2/images/{image['id']}", "file": f"/v2/images/{image['id']}/file",
            "schema": "/v2/schemas/image"}


def find_image(image_id: str) -> dict[str, Any] | None:
    return next((image for image in IMAGES if image["id"] == image_id), None)


def build_router(config: Config, validator: TokenValidator) -> Router:
    router = Router()
    base = config.public_endpoint("image")

    def versions(_request: Request) -> Response:
        # Glance answers its root with 300 Multiple Choices; keystoneauth expects that.
        return Response(300, {"versions": [{"id": "v2.9", "status": "CURRENT",
                                            "links": [{"rel": "self", "href": f"{base}/v2/"}]}]})

    def list_images(request: Request) -> dict[str, Any]:
        validator.authenticate(request)
        filters = ("name", "status", "visibility")
        images = [image_view(i) for i in IMAGES
                  if all(request.query.get(key) in (None, i[key]) for key in filters)]
        marker = request.query.get("marker")
        if marker:
            ids = [i["id"] for i in images]
            if marker not in ids:
                raise HTTPError(400, f"marker {marker} not found", "badRequest")
            images = images[ids.index(marker) + 1:]
        try:
            limit = int(request.query.get("limit", "25"))
        except ValueError:
            raise HTTPError(400, "limit must be an integer", "badRequest") from None
        page = images[:max(limit, 0)]
        body: dict[str, Any] = {"images": page, "first": "/v2/images", "schema": "/v2/schemas/images"}
        if len(images) > len(page) and page:
            body["next"] = f"/v2/images?marker={page[-1]['id']}&limit={limit}"
        return body

    def show_image(request: Request) -> dict[str, Any]:
        validator.authenticate(request)
        image = find_image(request.params["image_id"])
        if image is None:
            raise HTTPError(404, f"No image found with ID {request.params['image_id']}", "itemNotFound")
        return image_view(image)

    def image_schema(request: Request) -> dict[str, Any]:
        validator.authenticate(request)
        return IMAGE_SCHEMA

    def images_schema(request: Request) -> dict[str, Any]:
        validator.authenticate(request)
        return {"name": "images", "properties": {"images": {"type": "array", "items": IMAGE_SCHEMA},
                                                 "schema": {"type": "string"}, "first": {"type": "string"},
                                                 "next": {"type": "string"}},
                "links": [{"href": "{first}", "rel": "first"}, {"href": "{next}", "rel": "next"},
                          {"href": "{schema}", "rel": "describedby"}]}

    router.add("GET", "/healthz", lambda _r: {"service": "image", "host": config.host,
                                               "release": config.release.label,
                                               "version": config.release.service_version, "status": "ok"})
    router.add("GET", "/", versions)
    router.add("GET", "/versions", lambda r: Response(200, versions(r).body))
    router.add("GET", "/v2/images", list_images)
    router.add("GET", "/v2/images/{image_id}", show_image)
    router.add("GET", "/v2/schemas/image", image_schema)
    router.add("GET", "/v2/schemas/images", images_schema)
    return router


def main(config: Config) -> int:
    validator = TokenValidator(config.endpoint("identity"))
    return serve(build_router(config, validator), config.bind, config.port, "image", config.shutdown_timeout)

"""Response schemas of the compute (Nova v2.1) and image (Glance v2) APIs, per microversion.

Written for rollgate after the shape of tempest's response schemas
(``tempest/lib/api_schema/response/compute``): the same fields, types and
required sets as real Nova's answers, for the subset of resources the contract
check reads (servers, flavors, os-services, os-migrations, images). A field
appears in a schema from the microversion Nova added it, and is *required*
from there when Nova always sends it, so a release that drops a field at an
old microversion, or shows a new one too early, fails validation.
``additionalProperties: False`` where Nova's documents are closed (servers,
flavors, services, migrations), as tempest has them.

``EDGES`` lists, per resource, the microversions where its schema changes: the
contract check asks for each edge and the version just below it, which is
where an off-by-one microversion gate shows.
"""
from __future__ import annotations

import copy
from typing import Any

Schema = dict[str, Any]

STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
LINKS: Schema = {"type": "array", "items": {
    "type": "object", "properties": {"href": STRING, "rel": STRING, "type": STRING},
    "required": ["href", "rel"], "additionalProperties": False}}
UUID = {"type": "string", "pattern": "^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$"}
#: os-services binaries are Nova's process names (nova-compute, nova-conductor, nova-scheduler, ...)
NOVA_BINARY = {"type": "string", "pattern": "^nova-[a-z_-]+$"}

#: resource -> microversions where its schema changes (the contract check sweeps these)
EDGES: dict[str, tuple[str, ...]] = {
    "servers": (),
    "servers/detail": ("2.3", "2.9", "2.16", "2.19", "2.26", "2.47", "2.63", "2.71", "2.73"),
    "server": ("2.3", "2.9", "2.16", "2.19", "2.26", "2.47", "2.63", "2.71", "2.73"),
    "flavors": ("2.55",),
    "flavors/detail": ("2.55", "2.61"),
    "flavor": ("2.55", "2.61"),
    "os-services": ("2.11", "2.53"),
    "os-migrations": ("2.23", "2.59", "2.80"),
}


def version_tuple(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


def at_least(version: str, minimum: str) -> bool:
    return version_tuple(version) >= version_tuple(minimum)


def _closed(properties: dict[str, Any], required: list[str]) -> Schema:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _envelope(key: str, item: Schema, links: str | None = None) -> Schema:
    """``{"servers": [item], "servers_links": [...]}`` (a list) or ``{"server": item}``."""
    if links is None:
        return _closed({key: item}, [key])
    return _closed({key: {"type": "array", "items": item}, links: LINKS}, [key])


def _address_item() -> Schema:
    return _closed({"version": INTEGER, "addr": STRING, "OS-EXT-IPS:type": STRING,
                    "OS-EXT-IPS-MAC:mac_addr": STRING}, ["version", "addr"])


def server_summary() -> Schema:
    return _closed({"id": STRING, "name": STRING, "links": LINKS}, ["id", "name", "links"])


def server_detail(version: str) -> Schema:
    """One server as ``GET /servers/{id}`` and ``/servers/detail`` show it at ``version``."""
    if at_least(version, "2.47"):
        flavor = _closed({"original_name": STRING, "disk": INTEGER, "ephemeral": INTEGER, "ram": INTEGER,
                          "swap": INTEGER, "vcpus": INTEGER, "extra_specs": {"type": "object"}},
                         ["original_name", "disk", "ephemeral", "ram", "swap", "vcpus"])
    else:
        flavor = _closed({"id": STRING, "links": LINKS}, ["id", "links"])
    properties: dict[str, Any] = {
        "id": STRING, "name": STRING, "status": STRING,
        "image": {"oneOf": [_closed({"id": STRING, "links": LINKS}, ["id", "links"]),
                            {"type": ["string", "null"]}]},
        "flavor": flavor,
        "fault": _closed({"code": INTEGER, "created": STRING, "message": STRING, "details": STRING},
                         ["code", "created", "message"]),
        "user_id": STRING, "tenant_id": STRING, "created": STRING, "updated": STRING,
        "progress": INTEGER, "metadata": {"type": "object"}, "links": LINKS,
        "addresses": {"type": "object", "patternProperties": {
            "^[a-zA-Z0-9-_.]+$": {"type": "array", "items": _address_item()}},
            "additionalProperties": False},
        "hostId": STRING, "OS-DCF:diskConfig": STRING, "accessIPv4": STRING, "accessIPv6": STRING,
        "key_name": NULLABLE_STRING, "security_groups": {"type": "array"},
        "OS-SRV-USG:launched_at": NULLABLE_STRING, "OS-SRV-USG:terminated_at": NULLABLE_STRING,
        "OS-EXT-AZ:availability_zone": STRING,
        "OS-EXT-STS:task_state": NULLABLE_STRING, "OS-EXT-STS:vm_state": STRING,
        "OS-EXT-STS:power_state": INTEGER,
        "OS-EXT-SRV-ATTR:host": NULLABLE_STRING, "OS-EXT-SRV-ATTR:instance_name": STRING,
        "OS-EXT-SRV-ATTR:hypervisor_hostname": NULLABLE_STRING,
        "os-extended-volumes:volumes_attached": {"type": "array"},
        "config_drive": STRING,
    }
    required = ["id", "name", "status", "image", "flavor", "user_id", "tenant_id", "created", "updated",
                "metadata", "links", "addresses", "hostId"]
    if at_least(version, "2.3"):  # admin-only extended attributes (policy), so not required
        properties.update({"OS-EXT-SRV-ATTR:reservation_id": NULLABLE_STRING,
                           "OS-EXT-SRV-ATTR:launch_index": INTEGER,
                           "OS-EXT-SRV-ATTR:kernel_id": NULLABLE_STRING,
                           "OS-EXT-SRV-ATTR:ramdisk_id": NULLABLE_STRING,
                           "OS-EXT-SRV-ATTR:hostname": STRING,
                           "OS-EXT-SRV-ATTR:root_device_name": NULLABLE_STRING,
                           "OS-EXT-SRV-ATTR:user_data": NULLABLE_STRING})
    added = (("2.9", "locked", BOOLEAN, True), ("2.16", "host_status", STRING, False),
             ("2.19", "description", NULLABLE_STRING, True), ("2.26", "tags", {"type": "array"}, True),
             ("2.63", "trusted_image_certificates", {"type": ["array", "null"]}, True),
             ("2.71", "server_groups", {"type": "array"}, False),
             ("2.73", "locked_reason", NULLABLE_STRING, True))
    for since, name, schema, always in added:
        if at_least(version, since):
            properties[name] = schema
            if always:
                required.append(name)
    return _closed(properties, required)


def flavor(version: str, detail: bool) -> Schema:
    properties: dict[str, Any] = {"id": STRING, "name": STRING, "links": LINKS}
    required = ["id", "name", "links"]
    if detail:
        properties.update({"ram": INTEGER, "vcpus": INTEGER, "swap": {"type": ["integer", "string"]},
                           "disk": INTEGER, "OS-FLV-DISABLED:disabled": BOOLEAN,
                           "os-flavor-access:is_public": BOOLEAN, "rxtx_factor": {"type": "number"},
                           "OS-FLV-EXT-DATA:ephemeral": INTEGER})
        required += ["ram", "vcpus", "swap", "disk"]
        if at_least(version, "2.61"):
            properties["extra_specs"] = {"type": "object"}
    if at_least(version, "2.55"):
        properties["description"] = {"type": ["string", "null"], "maxLength": 65535}
        required.append("description")
    return _closed(properties, required)


def service(version: str) -> Schema:
    properties: dict[str, Any] = {
        "id": UUID if at_least(version, "2.53") else INTEGER,
        "zone": STRING, "host": STRING, "state": STRING, "binary": NOVA_BINARY, "status": STRING,
        "updated_at": NULLABLE_STRING, "disabled_reason": NULLABLE_STRING}
    required = list(properties)
    if at_least(version, "2.11"):
        properties["forced_down"] = BOOLEAN
        required.append("forced_down")
    return _closed(properties, required)


def migration(version: str) -> Schema:
    nullable_int = {"type": ["integer", "null"]}
    properties: dict[str, Any] = {
        "id": INTEGER, "status": NULLABLE_STRING, "instance_uuid": NULLABLE_STRING,
        "source_node": NULLABLE_STRING, "source_compute": NULLABLE_STRING, "dest_node": NULLABLE_STRING,
        "dest_compute": NULLABLE_STRING, "dest_host": NULLABLE_STRING,
        "old_instance_type_id": nullable_int, "new_instance_type_id": nullable_int,
        "created_at": STRING, "updated_at": NULLABLE_STRING}
    required = list(properties)
    if at_least(version, "2.23"):
        properties.update({"migration_type": NULLABLE_STRING, "links": LINKS})
        required.append("migration_type")
    if at_least(version, "2.59"):
        properties["uuid"] = UUID
        required.append("uuid")
    if at_least(version, "2.80"):
        properties.update({"user_id": NULLABLE_STRING, "project_id": NULLABLE_STRING})
        required += ["user_id", "project_id"]
    return _closed(properties, required)


def image() -> Schema:
    """A Glance v2 image: its core properties (custom ones are strings, so the object stays open)."""
    properties: dict[str, Any] = {
        "id": UUID, "name": NULLABLE_STRING, "status": STRING, "visibility": STRING, "protected": BOOLEAN,
        "owner": NULLABLE_STRING, "container_format": NULLABLE_STRING, "disk_format": NULLABLE_STRING,
        "min_disk": INTEGER, "min_ram": INTEGER, "size": {"type": ["integer", "null"]},
        "virtual_size": {"type": ["integer", "null"]}, "checksum": NULLABLE_STRING,
        "tags": {"type": "array", "items": STRING}, "created_at": STRING, "updated_at": STRING,
        "self": STRING, "file": STRING, "schema": STRING}
    required = ["id", "name", "status", "visibility", "protected", "tags", "created_at", "updated_at",
                "self", "file", "schema", "min_disk", "min_ram", "container_format", "disk_format"]
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": {"type": ["string", "null", "boolean", "integer", "array"]}}


def schema_for(resource: str, version: str | None) -> Schema | None:
    """The response schema of ``GET <resource>`` at ``version`` (None: the check has none)."""
    v = version or "2.1"
    builders: dict[str, Any] = {
        "servers": lambda: _envelope("servers", server_summary(), "servers_links"),
        "servers/detail": lambda: _envelope("servers", server_detail(v), "servers_links"),
        "server": lambda: _envelope("server", server_detail(v)),
        "flavors": lambda: _envelope("flavors", flavor(v, detail=False), "flavors_links"),
        "flavors/detail": lambda: _envelope("flavors", flavor(v, detail=True), "flavors_links"),
        "flavor": lambda: _envelope("flavor", flavor(v, detail=True)),
        "os-services": lambda: _envelope("services", service(v), "services_links"),
        "os-services?binary=nova-compute": lambda: _envelope("services", service(v), "services_links"),
        "os-migrations": lambda: _envelope("migrations", migration(v), "migrations_links"),
        "images": lambda: {"type": "object", "properties": {
            "images": {"type": "array", "items": image()}, "first": STRING, "next": STRING,
            "schema": STRING}, "required": ["images"]},
        "image": image,
    }
    build = builders.get(resource)
    return copy.deepcopy(build()) if build is not None else None

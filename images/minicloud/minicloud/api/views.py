"""Response bodies of the compute API, shaped like Nova's at a given microversion.

Views are pure functions of database dicts, the microversion and the caller,
so what changes between microversions is visible in one place.
"""
from __future__ import annotations

import hashlib
from typing import Any

from minicloud.api.microversion import APIVersion
from minicloud.defects import has_defect

# (vm_state, task_state) -> Nova's server status; task states not listed leave the vm_state's status.
_TASK_STATUS = {
    "migrating": "MIGRATING",
    "rebooting": "REBOOT", "reboot_pending": "REBOOT", "reboot_started": "REBOOT",
    "rebooting_hard": "HARD_REBOOT", "reboot_pending_hard": "HARD_REBOOT",
    "reboot_started_hard": "HARD_REBOOT",
}
_VM_STATUS = {"building": "BUILD", "active": "ACTIVE", "error": "ERROR", "deleted": "DELETED"}
HYPERVISOR_CAPACITY = {"vcpus": 8, "memory_mb": 16384, "local_gb": 200}


def server_status(instance: dict[str, Any]) -> str:
    status = _VM_STATUS.get(instance["vm_state"], "UNKNOWN")
    if status == "ACTIVE":
        return _TASK_STATUS.get(instance["task_state"] or "", "ACTIVE")
    return status


def _links(base: str, collection: str, ident: str) -> list[dict[str, str]]:
    bookmark = base.rsplit("/v2.1", 1)[0]
    return [{"rel": "self", "href": f"{base}/{collection}/{ident}"},
            {"rel": "bookmark", "href": f"{bookmark}/{collection}/{ident}"}]


def server_summary(instance: dict[str, Any], base: str) -> dict[str, Any]:
    return {"id": instance["uuid"], "name": instance["name"],
            "links": _links(base, "servers", instance["uuid"])}


def _flavor_in_server(flavor: dict[str, Any] | None, flavor_id: str, base: str,
                      version: APIVersion) -> dict[str, Any]:
    if version < APIVersion("2.47"):
        return {"id": flavor_id, "links": _links(base, "flavors", flavor_id)[1:]}
    flavor = flavor or {"name": flavor_id, "vcpus": 0, "ram": 0, "disk": 0}
    return {"original_name": flavor["name"], "vcpus": flavor["vcpus"], "ram": flavor["ram"],
            "disk": flavor["disk"], "ephemeral": 0, "swap": 0, "extra_specs": {}}


def server_detail(instance: dict[str, Any], *, base: str, version: APIVersion, is_admin: bool,
                  flavors: dict[str, dict[str, Any]], host_status: dict[str, str],
                  release: Any = None) -> dict[str, Any]:
    """One server as Nova's ``GET /servers/{id}`` shows it at ``version`` (``release``: the
    serving release, for its defect variants)."""
    status = server_status(instance)
    host = instance["host"]
    port = instance["floating_port"]
    body: dict[str, Any] = {
        "id": instance["uuid"],
        "name": instance["name"],
        "status": status,
        "tenant_id": instance["project_id"],
        "user_id": instance["user_id"],
        "metadata": {"dataplane_port": str(port)} if port is not None else {},
        "image": {"id": instance["image_ref"], "links": _links(base, "images", instance["image_ref"])[1:]},
        "flavor": _flavor_in_server(flavors.get(str(instance["flavor_id"])), str(instance["flavor_id"]),
                                    base, version),
        "created": instance["created_at"],
        "updated": instance["updated_at"],
        "addresses": ({"public": [{"addr": instance["floating_ip"], "version": 4,
                                   "OS-EXT-IPS:type": "floating",
                                   "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]}
                      if instance["floating_ip"] else {}),
        "accessIPv4": "",
        "accessIPv6": "",
        "links": _links(base, "servers", instance["uuid"]),
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": "nova",
        "config_drive": "",
        "key_name": None,
        "OS-SRV-USG:launched_at": instance["launched_at"],
        "OS-SRV-USG:terminated_at": None,
        "OS-EXT-STS:vm_state": instance["vm_state"],
        "OS-EXT-STS:task_state": instance["task_state"],
        "OS-EXT-STS:power_state": instance["power_state"] or 0,
        "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": "default"}],
    }
    # The defect: 1.1's refactor put hostId under the 2.3 gate of the extended attributes.
    if not has_defect(release, "hostid-microversion") or version >= APIVersion("2.3"):
        body["hostId"] = (hashlib.sha224(f"{instance['project_id']}{host}".encode()).hexdigest()
                          if host else "")
    if status in ("BUILD", "ACTIVE"):
        body["progress"] = 100 if status == "ACTIVE" else 0
    if is_admin:  # Nova's os_compute_api:os-extended-server-attributes policy: admin only
        body["OS-EXT-SRV-ATTR:host"] = host
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = host
        body["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{instance['uuid'][:8]}"
        if version >= APIVersion("2.3"):
            body.update({"OS-EXT-SRV-ATTR:reservation_id": f"r-{instance['uuid'][:8]}",
                         "OS-EXT-SRV-ATTR:launch_index": 0, "OS-EXT-SRV-ATTR:hostname": instance["name"],
                         "OS-EXT-SRV-ATTR:kernel_id": "", "OS-EXT-SRV-ATTR:ramdisk_id": "",
                         "OS-EXT-SRV-ATTR:root_device_name": None, "OS-EXT-SRV-ATTR:user_data": None})
        if version >= APIVersion("2.16"):
            body["host_status"] = host_status.get(host or "", "")
    if version >= APIVersion("2.9"):
        body["locked"] = bool(instance["locked"])
    if version >= APIVersion("2.19"):
        body["description"] = instance["description"]
    if version >= APIVersion("2.26"):
        body["tags"] = []
    if version >= APIVersion("2.63"):
        body["trusted_image_certificates"] = None
    if version >= APIVersion("2.71"):
        body["server_groups"] = []
    if version >= APIVersion("2.73"):
        body["locked_reason"] = None
    if status == "ERROR":
        body["fault"] = {"code": 500, "created": instance["updated_at"],
                         "message": instance["fault"] or "unknown error"}
    return body


def flavor_view(flavor: dict[str, Any], base: str, version: APIVersion, detail: bool,
                release: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": str(flavor["id"]), "name": flavor["name"],
                            "links": _links(base, "flavors", str(flavor["id"]))}
    # The defect: an off-by-one gate, the flavor description shows from 2.54 (Nova: 2.55).
    if version >= APIVersion("2.54" if has_defect(release, "flavor-description-early") else "2.55"):
        body["description"] = None
    if detail:
        body.update({"ram": flavor["ram"], "vcpus": flavor["vcpus"], "disk": flavor["disk"],
                     "OS-FLV-EXT-DATA:ephemeral": 0, "OS-FLV-DISABLED:disabled": False,
                     "swap": 0 if version >= APIVersion("2.75") else "", "rxtx_factor": 1.0,
                     "os-flavor-access:is_public": True})
        if version >= APIVersion("2.61"):
            body["extra_specs"] = {}
    return body


#: minicloud's service names (the ``services`` table, RPC, manage) -> the binary names Nova's
#: os-services reports. A client written for Nova filters ``binary=nova-compute``; the API speaks
#: Nova's names, everything behind it keeps minicloud's.
NOVA_BINARIES = {"compute-agent": "nova-compute", "conductor": "nova-conductor",
                 "scheduler": "nova-scheduler"}
_INTERNAL_BINARIES = {nova: internal for internal, nova in NOVA_BINARIES.items()}


def api_binary(binary: str) -> str:
    """The name os-services shows for minicloud's service ``binary``."""
    return NOVA_BINARIES.get(binary, binary)


def internal_binary(binary: str) -> str | None:
    """minicloud's name for the Nova binary a client sent (None: no such service)."""
    return _INTERNAL_BINARIES.get(binary)


def service_zone(binary: str) -> str:
    return "nova" if binary == "compute-agent" else "internal"


def service_view(service: dict[str, Any], version: APIVersion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": service["uuid"] if version >= APIVersion("2.53") else service["id"],
        "binary": api_binary(service["binary"]), "host": service["host"],
        "zone": service_zone(service["binary"]),
        "status": "disabled" if service["disabled"] else "enabled", "state": service["state"],
        "updated_at": service["last_seen_up"] or service["updated_at"],
        "disabled_reason": service["disabled_reason"],
    }
    if version >= APIVersion("2.11"):
        body["forced_down"] = service["forced_down"]
    return body


def hypervisor_view(service: dict[str, Any], instances: list[dict[str, Any]],
                    flavors: dict[str, dict[str, Any]], version: APIVersion, detail: bool) -> dict[str, Any]:
    """A compute agent's host as an ``os-hypervisors`` entry (minicloud has one node per host)."""
    body: dict[str, Any] = {
        "id": service["uuid"] if version >= APIVersion("2.53") else service["id"],
        "hypervisor_hostname": service["host"], "state": service["state"],
        "status": "disabled" if service["disabled"] else "enabled",
    }
    if not detail:
        return body
    used = {"vcpus": 0, "memory_mb": 0, "local_gb": 0}
    for instance in instances:
        flavor = flavors.get(str(instance["flavor_id"])) or {"vcpus": 0, "ram": 0, "disk": 0}
        used["vcpus"] += flavor["vcpus"]
        used["memory_mb"] += flavor["ram"]
        used["local_gb"] += flavor["disk"]
    body.update({"hypervisor_type": "minicloud", "hypervisor_version": service["version"],
                 "host_ip": service["host"],
                 "service": {"host": service["host"], "id": body["id"],
                             "disabled_reason": service["disabled_reason"]}})
    if version < APIVersion("2.88"):
        body.update({
            **HYPERVISOR_CAPACITY, "vcpus_used": used["vcpus"], "memory_mb_used": used["memory_mb"],
            "local_gb_used": used["local_gb"], "running_vms": len(instances),
            "free_ram_mb": HYPERVISOR_CAPACITY["memory_mb"] - used["memory_mb"],
            "free_disk_gb": HYPERVISOR_CAPACITY["local_gb"] - used["local_gb"],
            "current_workload": 0, "disk_available_least": HYPERVISOR_CAPACITY["local_gb"] - used["local_gb"],
            "cpu_info": "{}"})
    return body


IN_PROGRESS_EXCLUDED = ("completed", "done", "error", "failed", "cancelled", "confirmed", "reverted")


def migration_view(migration: dict[str, Any], instance: dict[str, Any] | None, base: str,
                   version: APIVersion, for_server: bool = False) -> dict[str, Any]:
    """An ``os-migrations`` entry, or (``for_server``) a ``/servers/{id}/migrations`` entry."""
    body: dict[str, Any] = {
        "id": migration["id"], "source_compute": migration["source_host"],
        "dest_compute": migration["dest_host"], "source_node": migration["source_host"],
        "dest_node": migration["dest_host"], "dest_host": migration["dest_host"],
        "status": migration["status"], "created_at": migration["created_at"],
        "updated_at": migration["updated_at"],
    }
    if for_server:
        body.update({"server_uuid": migration["instance_uuid"], "memory_total_bytes": None,
                     "memory_processed_bytes": None, "memory_remaining_bytes": None,
                     "disk_total_bytes": None, "disk_processed_bytes": None, "disk_remaining_bytes": None})
    else:
        body.update({"instance_uuid": migration["instance_uuid"], "old_instance_type_id": None,
                     "new_instance_type_id": None})
        if version >= APIVersion("2.23"):
            body["migration_type"] = migration["migration_type"]
            if (migration["migration_type"] == "live-migration"
                    and migration["status"] not in IN_PROGRESS_EXCLUDED):
                body["links"] = _links(base, f"servers/{migration['instance_uuid']}/migrations",
                                       str(migration["id"]))
    if version >= APIVersion("2.59"):  # minicloud 1.1's new microversion range (see DESIGN.md)
        body["uuid"] = migration["uuid"]
    if version >= APIVersion("2.80"):
        body["user_id"] = instance["user_id"] if instance else None
        body["project_id"] = instance["project_id"] if instance else None
    return body

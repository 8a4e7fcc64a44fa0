"""``api.contract``: readings of the same resources at the same microversions, before, during, after."""
from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.checks.contract import (
    COMPUTE_FILTER,
    Reading,
    contract_check,
    judge,
    shape,
    shape_differences,
    value_differences,
)
from harness.checks.contract_schemas import EDGES, schema_for
from harness.gate import contract_probe
from harness.gate.probes import ProbeContext
from harness.verdict import FAILED, PASSED, SKIPPED

SERVER = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
IMAGE = "3c0a4d0e-9f1c-4a55-8c36-1f0e5b5a0c01"
BASE = "http://lb:8774/v2.1"


def links(kind: str, ident: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{BASE}/{kind}/{ident}"},
            {"rel": "bookmark", "href": f"http://lb:8774/{kind}/{ident}"}]


def server(version: str, host: str = "compute-1", status: str = "ACTIVE") -> dict[str, Any]:
    """A server as Nova shows it to an admin at ``version`` (2.1 or 2.53/2.60 here)."""
    body: dict[str, Any] = {
        "id": SERVER, "name": "rg-server-1", "status": status, "tenant_id": "p1", "user_id": "u1",
        "metadata": {"dataplane_port": "20001"}, "hostId": f"hash-{host}",
        "image": {"id": IMAGE, "links": links("images", IMAGE)[1:]},
        "flavor": {"id": "1", "links": links("flavors", "1")[1:]},
        "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:01Z",
        "addresses": {"public": [{"addr": "127.0.10.2", "version": 4, "OS-EXT-IPS:type": "floating",
                                  "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]},
        "accessIPv4": "", "accessIPv6": "", "links": links("servers", SERVER), "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": "nova", "config_drive": "", "key_name": None,
        "OS-SRV-USG:launched_at": "2026-01-01T00:00:01Z", "OS-SRV-USG:terminated_at": None,
        "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:task_state": None, "OS-EXT-STS:power_state": 1,
        "os-extended-volumes:volumes_attached": [], "security_groups": [{"name": "default"}],
        "OS-EXT-SRV-ATTR:host": host, "OS-EXT-SRV-ATTR:hypervisor_hostname": host,
        "OS-EXT-SRV-ATTR:instance_name": "instance-0f1e2d3c", "progress": 100,
    }
    if version != "2.1":
        body.update({"OS-EXT-SRV-ATTR:reservation_id": "r-1", "OS-EXT-SRV-ATTR:launch_index": 0,
                     "OS-EXT-SRV-ATTR:hostname": "rg-server-1", "OS-EXT-SRV-ATTR:kernel_id": "",
                     "OS-EXT-SRV-ATTR:ramdisk_id": "", "OS-EXT-SRV-ATTR:root_device_name": None,
                     "OS-EXT-SRV-ATTR:user_data": None, "host_status": "UP", "locked": False,
                     "description": None, "tags": [],
                     "flavor": {"original_name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0,
                                "swap": 0, "extra_specs": {}}})
    return body


def flavor(version: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "1", "name": "m1.tiny", "links": links("flavors", "1"), "ram": 512,
                            "vcpus": 1, "disk": 1, "swap": "", "OS-FLV-EXT-DATA:ephemeral": 0,
                            "OS-FLV-DISABLED:disabled": False, "rxtx_factor": 1.0,
                            "os-flavor-access:is_public": True}
    if version in ("2.55", "2.60"):
        body["description"] = None
    return body


def services(version: str, binary: str = "nova-compute", ident: Any = None) -> list[dict[str, Any]]:
    rows = []
    for number, (host, name) in enumerate((("controller-1", "nova-conductor"), ("compute-1", binary)), 1):
        row: dict[str, Any] = {
            "id": f"00000000-0000-4000-8000-00000000000{number}" if version != "2.1" else number,
            "binary": name, "host": host, "zone": "nova" if "compute" in name else "internal",
            "status": "enabled", "state": "up", "updated_at": "2026-01-01T00:00:00Z", "disabled_reason": None}
        if version != "2.1":
            row["forced_down"] = False
        rows.append(row)
    if ident is not None:
        rows[1]["id"] = ident
    return rows


def image() -> dict[str, Any]:
    return {"id": IMAGE, "name": "cirros", "status": "active", "visibility": "public", "protected": False,
            "owner": None, "container_format": "bare", "disk_format": "qcow2", "min_disk": 0, "min_ram": 0,
            "size": 1, "checksum": "c", "tags": [], "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z", "self": f"/v2/images/{IMAGE}",
            "file": f"/v2/images/{IMAGE}/file", "schema": "/v2/schemas/image"}


def point(name: str, t: float, version: str, **change: Any) -> list[Reading]:
    """Every resource the probe reads, at ``version``, as a correct cloud answers (``change``: the
    bodies to use instead, by resource)."""
    srv = server(version)
    svc = services(version)
    bodies: dict[str, Any] = {
        "servers": {"servers": [{"id": SERVER, "name": srv["name"], "links": srv["links"]}]},
        "servers/detail": {"servers": [srv]}, "server": {"server": srv},
        "flavors": {"flavors": [{k: v for k, v in flavor(version).items()
                                 if k in ("id", "name", "links", "description")}]},
        "flavors/detail": {"flavors": [flavor(version)]}, "flavor": {"flavor": flavor(version)},
        "os-services": {"services": svc},
        COMPUTE_FILTER: {"services": [s for s in svc if s["binary"] == "nova-compute"]},
        "os-migrations": {"migrations": []},
    }
    bodies.update(change)
    readings = [Reading(name, "lb", None, resource, version, 200, body, t)
                for resource, body in bodies.items()]
    readings += [Reading(name, "lb", None, "images", None, 200, {"images": [image()]}, t),
                 Reading(name, "lb", None, "image", None, 200, image(), t)]
    return readings


def clean_run() -> list[Reading]:
    return [*point("before", 1.0, "2.1"), *point("before", 1.0, "2.53"),
            *point("during", 2.0, "2.1"), *point("during", 2.0, "2.53"), *point("during", 2.0, "2.60"),
            *point("after", 3.0, "2.1"), *point("after", 3.0, "2.53"), *point("after", 3.0, "2.60")]


def test_a_clean_run_passes() -> None:
    assert judge(clean_run(), [SERVER]) == []
    check = contract_check(clean_run(), [SERVER])
    assert check.status == PASSED, check.summary
    assert "2.1, 2.53, 2.60" in check.summary


def test_a_field_dropped_at_2_1_by_the_new_release_fails() -> None:
    dropped = server("2.1")
    del dropped["hostId"]
    readings = [*point("before", 1.0, "2.1"), *point("after", 3.0, "2.1", server={"server": dropped})]
    problems = judge(readings, [SERVER])
    kinds = {p.kind for p in problems}
    assert kinds == {"schema", "shape"}
    assert any("'hostId' is a required property" in p.message for p in problems)
    assert any("field hostId dropped" in p.message and "between before" in p.message for p in problems)
    check = contract_check(readings, [SERVER])
    assert check.status == FAILED
    assert check.evidence[0].target == "lb/compute-api"


def test_a_field_shown_one_microversion_too_early_fails_its_schema() -> None:
    early = flavor("2.54")
    early["description"] = None
    problems = judge(point("after", 3.0, "2.54", flavor={"flavor": early}), [SERVER])
    assert [p.kind for p in problems] == ["schema"]
    assert "'description' was unexpected" in problems[0].message
    assert "GET flavor at 2.54" in problems[0].message


def test_uuid_service_ids_before_2_53_fail_schema_and_shape() -> None:
    uuid_svc = services("2.1", ident="00000000-0000-4000-8000-000000000002")
    readings = [*point("before", 1.0, "2.1"),
                *point("after", 3.0, "2.1", **{"os-services": {"services": uuid_svc},
                                               COMPUTE_FILTER: {"services": [uuid_svc[1]]}})]
    messages = [p.message for p in judge(readings, [SERVER])]
    assert any("services/1/id" in m and "is not of type 'integer'" in m for m in messages)
    assert any("field id changed type integer -> string" in m for m in messages)
    assert any("id changed 2 -> " in m for m in messages)  # the value too


def test_non_nova_binary_names_fail_the_schema_and_the_filter() -> None:
    agent = services("2.53", binary="compute-agent")
    problems = judge(point("before", 1.0, "2.53", **{"os-services": {"services": agent},
                                                     COMPUTE_FILTER: {"services": []}}), [SERVER])
    assert {p.kind for p in problems} == {"schema", "filter"}
    assert any("'compute-agent' does not match" in p.message for p in problems)


def test_the_filter_must_list_exactly_the_compute_rows() -> None:
    everything = point("before", 1.0, "2.1", **{COMPUTE_FILTER: {"services": services("2.1")}})
    problems = judge(everything, [SERVER])
    assert [p.kind for p in problems] == ["filter"]
    assert "compute-1/nova-compute" in problems[0].message


def test_values_of_the_same_item_must_not_change_but_volatile_fields_may() -> None:
    moved = server("2.1", host="compute-2", status="MIGRATING")
    del moved["progress"]  # Nova shows progress only in ACTIVE/BUILD: not a shape change across statuses
    moved["OS-EXT-STS:task_state"] = "migrating"
    readings = [*point("before", 1.0, "2.1"), *point("during", 2.0, "2.1", server={"server": moved})]
    assert judge(readings, [SERVER]) == []
    renamed = server("2.1")
    renamed["name"] = "something-else"
    readings = [*point("before", 1.0, "2.1"), *point("after", 3.0, "2.1", server={"server": renamed})]
    assert [p.message for p in judge(readings, [SERVER]) if p.kind == "value"] == [
        "GET server at 2.1 " + SERVER + ": name changed 'rg-server-1' -> 'something-else' between "
        "before, lb and after, lb"]


def test_an_item_listed_before_must_still_be_listed() -> None:
    readings = [*point("before", 1.0, "2.1"),
                *point("after", 3.0, "2.1", **{"flavors/detail": {"flavors": []}})]
    problems = judge(readings, [SERVER])
    assert [p.kind for p in problems] == ["missing"]
    assert "no longer lists 1" in problems[0].message


def test_untracked_servers_are_validated_but_not_compared() -> None:
    other = copy.deepcopy(server("2.1"))
    other.update(id="another", name="rollgate-traffic-1", status="BUILD")
    later = copy.deepcopy(other)
    later["name"] = "renamed"
    readings = [*point("before", 1.0, "2.1", **{"servers/detail": {"servers": [server("2.1"), other]}}),
                *point("after", 3.0, "2.1", **{"servers/detail": {"servers": [server("2.1"), later]}})]
    assert judge(readings, [SERVER]) == []


def test_errors_and_non_200_answers_fail() -> None:
    readings = [*point("before", 1.0, "2.1"),
                Reading("after", "lb", None, "server", "2.1", 500, {"computeFault": {}}, 3.0),
                Reading("after", "lb", None, "flavors", "2.1", 0, None, 3.0,
                        error="ConnectionError: refused")]
    kinds = [p.kind for p in judge(readings, [SERVER])]
    assert kinds == ["answer", "answer"]


def test_no_reading_is_skipped_not_passed() -> None:
    assert contract_check([], [SERVER]).status == SKIPPED


def test_shapes_treat_null_as_any_type_and_empty_lists_as_unknown() -> None:
    assert shape_differences(shape({"a": None, "b": []}), shape({"a": "x", "b": [{"c": 1}]})) == []
    assert shape_differences(shape({"a": 1}), shape({"a": "1"})) == ["field a changed type integer -> string"]
    assert shape_differences(shape({"a": {"b": 1}}), shape({"a": {}})) == ["field a.b dropped"]


def test_value_differences_allow_a_null_to_be_filled() -> None:
    assert value_differences("server", {"key_name": None}, {"key_name": "k"}) == []
    assert value_differences("server", {"key_name": "k"}, {"key_name": None}) == [
        "key_name changed 'k' -> None"]
    assert value_differences("os-services", {"state": "up"}, {"state": "down"}) == []


@pytest.mark.parametrize("resource", sorted(EDGES))
def test_every_resource_with_edges_has_a_schema_at_each_edge(resource: str) -> None:
    for edge in ("2.1", *EDGES[resource]):
        assert schema_for(resource, edge) is not None


class FakeSession:
    """Answers every GET 200: the version documents with each API's maximum, lists with one item."""

    def __init__(self, maxima: dict[str, str]) -> None:
        self.maxima = maxima  # URL prefix -> maximum microversion of the API there
        self.asked: list[tuple[str, str | None]] = []

    def get_endpoint(self, service_type: str, interface: str) -> str:
        return "http://lb:8774/v2.1" if service_type == "compute" else "http://lb:9292"

    def get(self, url: str, headers: dict[str, str] | None = None, **_: Any) -> Any:
        version = (headers or {}).get("X-OpenStack-Nova-API-Version")
        self.asked.append((url, version))
        prefix = next(p for p in self.maxima if url.startswith(p))
        if url.endswith("/v2.1"):
            body: Any = {"version": {"version": self.maxima[prefix]}}
        elif "/v2/images" in url:
            body = {"images": [image()]} if url.endswith("/images") else image()
        else:
            body = {"flavors": [{"id": "1"}], "servers": [{"id": SERVER, "name": "rg"}]}
        return SimpleNamespace(status_code=200, json=lambda: body, text="")


def test_the_probe_reads_before_the_new_release_once_during_and_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    session = FakeSession({"http://lb": "2.53", "http://c1": "2.60", "http://c2": "2.60"})
    releases = {"c1": "1.0", "c2": "1.0"}
    monkeypatch.setattr(contract_probe, "healthz", lambda address: {"release": releases[address[0]]})
    hosts = {name: SimpleNamespace(name=name, services={"compute-api": None, "image": None})
             for name in ("c1", "c2")}
    cloud = SimpleNamespace(state=SimpleNamespace(hosts=hosts),
                            connect=lambda: SimpleNamespace(session=session),
                            backend=SimpleNamespace(service_address=lambda host, service: (host, 1)))
    context = ProbeContext(tmp_path, SimpleNamespace(emit=lambda e: None),  # type: ignore[arg-type]
                           SimpleNamespace(cloud="minicloud"), cloud)
    probe = contract_probe.contract_probe(context)
    assert isinstance(probe, contract_probe.ContractProbe)
    with probe.around("upgrade_check", (), {}):
        pass
    for host in ("c1", "c2"):  # the second controller runs the same release: not read again
        with probe.around("replace_service", (host, "compute-api", "1.1", 10.0), {}):
            releases[host] = "1.1"
    session.maxima["http://lb"] = "2.60"
    probe.close()
    points = list(dict.fromkeys(r.point for r in probe.readings))
    assert points == ["before", "during (c1/compute-api at 1.1)", "after"]
    by_point = {p: sorted({r.version for r in probe.readings if r.point == p and r.version},
                          key=lambda v: tuple(map(int, v.split(".")))) for p in points}
    assert by_point["before"] == ["2.1", "2.53"]
    # the new release: 2.1, both maxima, and the sweep of the edges in [2.53, 2.60]
    assert by_point["during (c1/compute-api at 1.1)"] == [
        "2.1", "2.53", "2.54", "2.55", "2.58", "2.59", "2.60"]
    assert by_point["after"] == by_point["during (c1/compute-api at 1.1)"]
    assert not any(url.startswith("http://c2") for url, _ in session.asked)
    checks = probe.checks()
    assert [c.id for c in checks] == ["api.contract"]
    assert (tmp_path / "contract.json").exists()

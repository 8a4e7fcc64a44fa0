"""Versioned objects and the compute version cap (in-process, no servers)."""
from __future__ import annotations

from pathlib import Path

import pytest
from minicloud import objects
from minicloud.releases import get_release
from minicloud.rpc import ComputeAPI

from tests.minicloud.core_support import CoreCloud

UUID = "0a3d6d0c-5b5e-4c9e-9a51-2f0b6f1de001"


def make_instance(release: str, **extra: object) -> objects.MinicloudObject:
    return objects.for_release(get_release(release)).Instance(
        uuid=UUID, name="vm", vm_state="active", floating_port=20001, **extra)


def test_release_1_0_cannot_deserialize_instance_1_1() -> None:
    primitive = make_instance("1.1", description="hello").obj_to_primitive()
    assert primitive["versioned_object.version"] == "1.1"
    with pytest.raises(objects.IncompatibleObjectVersion, match=r"Version 1\.1 of Instance"):
        objects.for_release(get_release("1.0")).from_primitive(primitive)


def test_release_1_1_cannot_deserialize_instance_1_2_but_2_0_reads_1_0() -> None:
    newest = make_instance("2.0", description="d", locked=True).obj_to_primitive()
    with pytest.raises(objects.IncompatibleObjectVersion):
        objects.for_release(get_release("1.1")).from_primitive(newest)
    old = make_instance("1.0").obj_to_primitive()
    read = objects.for_release(get_release("2.0")).from_primitive(old)
    assert read.uuid == UUID
    assert type(read) is objects.for_release(get_release("2.0")).Instance  # the 1.2 class
    assert not read.obj_attr_is_set("locked")


def test_backport_drops_newer_fields_and_old_release_reads_it() -> None:
    newest = objects.for_release(get_release("2.0"))
    instance = make_instance("2.0", description="secret", locked=True)
    for target, absent in (("1.0", {"description", "locked"}), ("1.1", {"locked"})):
        primitive = newest.serialize(instance, {"Instance": target})
        assert primitive["versioned_object.version"] == target
        assert absent.isdisjoint(primitive["versioned_object.data"])
        reader = objects.for_release(get_release({"1.0": "1.0", "1.1": "1.1"}[target]))
        assert reader.from_primitive(primitive).name == "vm"


def test_nested_objects_resolve_within_the_release() -> None:
    old = objects.for_release(get_release("1.0"))
    spec = old.RequestSpec(instance_uuid=UUID, project_id="p", ignore_hosts=["compute-1"],
                           force_hosts=[], flavor=old.Flavor(id="1", name="m1.tiny", vcpus=1,
                                                             ram=512, disk=1))
    new = objects.for_release(get_release("2.0"))
    read = new.deserialize({"spec": new.serialize(old.serialize(spec))})["spec"]
    assert read.flavor.name == "m1.tiny"
    assert type(read.flavor) is new.Flavor


def test_no_oslo_messaging_import() -> None:
    """The stand-in keeps eventlet (oslo.messaging's baggage) out of every process."""
    import sys

    assert "eventlet" not in sys.modules


@pytest.mark.parametrize(("own", "level", "min_version", "expected"), [
    ("1.1", "auto", 10, ("1.0", "1.0")),
    ("1.1", "auto", 11, ("1.1", "1.1")),
    ("2.0", "auto", 11, ("1.1", "1.1")),
    ("2.0", "auto", None, ("1.2", "1.2")),
    ("2.0", "1.0", 20, ("1.0", "1.0")),
    ("2.0", None, 10, ("1.2", "1.2")),
    ("1.1+unpinned", "auto", 10, ("1.1", "1.1")),
    ("1.0", "1.1", 10, ("1.0", "1.0")),
])
def test_compute_version_cap(tmp_path: Path, own: str, level: str | None, min_version: int | None,
                             expected: tuple[str, str]) -> None:
    cloud = CoreCloud(tmp_path, release=own, upgrade_levels={"compute": level})
    config = cloud.config(release=own)
    client = ComputeAPI(config, "compute-1", "http://127.0.0.1:1", min_version=lambda: min_version)
    rpc_version, targets = client.versions()
    assert (rpc_version, targets["Instance"]) == expected

"""The comparison behind the openstack resource phases: what counts as a damaged server."""
from __future__ import annotations

from types import SimpleNamespace

from harness.clouds.openstack.resources import ServerRecord, compare, compare_allocations

HOSTS = ["compute-1", "compute-2", "compute-3"]
TINY = {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}


def record() -> ServerRecord:
    return ServerRecord("rollgate-res-1", "s1", "m1.tiny", "compute-1", dict(TINY))


def server(status: str = "ACTIVE", host: str = "compute-1", flavor: str = "m1.tiny") -> SimpleNamespace:
    return SimpleNamespace(status=status, compute_host=host, flavor={"original_name": flavor})


def test_an_intact_server_has_no_problem() -> None:
    assert compare(record(), server(), {"compute-1": dict(TINY)}, HOSTS) == []


def test_a_migrated_server_is_intact_when_its_allocation_moved_with_it() -> None:
    assert compare(record(), server(host="compute-2"), {"compute-2": dict(TINY)}, HOSTS) == []


def test_each_kind_of_damage_is_named() -> None:
    assert compare(record(), None, {}, HOSTS) == ["rollgate-res-1 (s1) is gone from the API"]
    assert "is ERROR, expected ACTIVE" in compare(record(), server("ERROR"), {"compute-1": TINY}, HOSTS)[0]
    assert "not on a known compute host" in compare(record(), server(host="ghost"), {"ghost": TINY},
                                                    HOSTS)[0]
    assert "has flavor 'm1.small'" in compare(record(), server(flavor="m1.small"), {"compute-1": TINY},
                                              HOSTS)[0]


def test_allocations_left_behind_missing_or_changed_are_problems() -> None:
    assert "holds no allocation" in compare_allocations(record(), {}, "compute-1")[0]
    stale = compare_allocations(record(), {"compute-1": dict(TINY)}, "compute-2")
    assert stale == ["rollgate-res-1: allocations on ['compute-1'], but the server is on compute-2"]
    doubled = compare_allocations(record(), {"compute-1": dict(TINY), "compute-2": dict(TINY)}, "compute-2")
    assert any("Placement holds {'VCPU': 2" in p for p in doubled)
    assert compare_allocations(record(), {"compute-3": dict(TINY)}, None) == []  # API down: amounts only

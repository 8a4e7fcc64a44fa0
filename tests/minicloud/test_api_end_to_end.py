"""The public APIs in a whole minicloud: openstacksdk boots, migrates and deletes a real instance.

Two hosts on their own loopback addresses: ``controller`` (identity, image,
compute-api, conductor, scheduler, network, datapath and a compute agent with
its hypervisor) and ``compute-2`` (a compute agent and hypervisor), so a live
migration has somewhere to go.
"""
from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.minicloud.api_support import (
    MiniCloud,
    create_database,
    random_loopback,
    sdk_connection,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

CIRROS = "3c0a4d0e-9f1c-4a55-8c36-1f0e5b5a0c01"
CONTROLLER_SERVICES = ("datapath", "network", "identity", "image", "conductor", "scheduler",
                       "compute-api", "hypervisor", "compute-agent")


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[tuple[MiniCloud, MiniCloud]]:
    controller_address = random_loopback()
    controller = MiniCloud(tmp_path / "controller", controller_address,
                           database=create_database(tmp_path / "cloud.db", "1.1"))
    compute2 = MiniCloud(tmp_path / "compute-2", random_loopback(), host="compute-2",
                         controller_address=controller_address)
    controller.root.mkdir()
    compute2.root.mkdir()
    try:
        for service in CONTROLLER_SERVICES:
            controller.start(service)
        compute2.start("hypervisor")
        compute2.start("compute-agent")
        yield controller, compute2
    finally:
        compute2.stop_all()
        controller.stop_all()


def _kv(address: str, port: int, method: str, key: str, value: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://{address}:{port}/kv/{key}", data=value, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


def _logs(*hosts: MiniCloud) -> str:
    return "\n".join(f"--- {h.host}/{s.name}\n{s.log()[-1500:]}" for h in hosts for s in h.services)


def test_boot_write_live_migrate_read_delete(two_hosts: tuple[MiniCloud, MiniCloud]) -> None:
    controller, compute2 = two_hosts
    conn = sdk_connection(controller)
    wait_until(lambda: len([s for s in conn.compute.services() if s.binary == "nova-compute"
                            and s.state == "up"]) == 2, 20, "two compute agents up",
               evidence=lambda: _logs(controller, compute2))
    server: Any = conn.compute.create_server(name="e2e", image_id=CIRROS, flavor_id="1", networks="none")
    server = conn.compute.wait_for_server(server, wait=60)
    assert server.status == "ACTIVE"
    port = int(server.metadata["dataplane_port"])
    floating_ip = server.addresses["public"][0]["addr"]
    assert _kv(floating_ip, port, "PUT", "before", b"kept")[0] in (200, 201, 204)
    source = server.compute_host
    conn.compute.live_migrate_server(server, block_migration="auto")

    def migrated() -> Any:
        current = conn.compute.get_server(server.id)
        return current if current.status == "ACTIVE" and current.compute_host != source else None

    moved = wait_until(migrated, 60, "the live migration to finish", interval=0.2,
                       evidence=lambda: _logs(controller, compute2))
    assert moved.compute_host in {"controller", "compute-2"} - {source}
    assert moved.metadata["dataplane_port"] == str(port)  # the floating port follows the instance
    assert _kv(floating_ip, port, "GET", "before") == (200, b"kept")
    migrations = [m for m in conn.compute.migrations() if m.server_id == server.id]
    assert [(m.source_compute, m.dest_compute) for m in migrations] == [(source, moved.compute_host)]
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30)
    assert server.id not in {s.id for s in conn.compute.servers()}

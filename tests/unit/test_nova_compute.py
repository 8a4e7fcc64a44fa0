"""The nova-style compute operations both clouds share (harness.clouds.nova_compute), on a fake
compute API: a migration proven by the cloud's own check, a server deleted meanwhile, the one
place the clouds differ on "deleted", enable/disable until os-services shows it, and the poll."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from openstack import exceptions as sdk_exceptions

from harness.clouds.minicloud.ops import COMPUTE_STYLE as MINICLOUD_STYLE
from harness.clouds.nova_compute import ComputeStyle, NovaCompute, poll_until
from harness.clouds.openstack.ops import COMPUTE_STYLE as OPENSTACK_STYLE
from harness.executor.ops import OperationFailed

FAST = {"settle_poll": 0.0, "settle_grace": 0.0}


@dataclass
class Server:
    id: str
    status: str
    compute_host: str | None
    task_state: str | None = None


@dataclass
class Service:
    host: str
    binary: str
    status: str = "enabled"


@dataclass
class FakeCompute:
    servers_by_id: dict[str, Server] = field(default_factory=dict)
    service_rows: list[Service] = field(default_factory=list)
    migrate_to: str | None = None  # where a live migration request moves the server
    migrations: list[str] = field(default_factory=list)

    def get_server(self, server_id: str) -> Server:
        if server_id not in self.servers_by_id:
            raise sdk_exceptions.NotFoundException("gone")
        return self.servers_by_id[server_id]

    def live_migrate_server(self, server: Server, host: Any, block_migration: str) -> None:
        self.migrations.append(server.id)
        if self.migrate_to is not None:
            server.compute_host = self.migrate_to

    def services(self) -> list[Service]:
        return self.service_rows

    def disable_service(self, service: Service, disabled_reason: str) -> None:
        service.status = "disabled"

    def enable_service(self, service: Service) -> None:
        service.status = "enabled"

    def servers(self, details: bool, all_projects: bool) -> list[Server]:
        return list(self.servers_by_id.values())


def nova(compute: FakeCompute, style: ComputeStyle, moved: list[tuple[str, str]]) -> NovaCompute:
    conn = type("Conn", (), {"compute": compute})()

    def verify(server: Any, source: str) -> str:
        moved.append((server.id, source))
        return str(server.compute_host)

    def poll(operation: str, check: Any, timeout: float) -> None:
        poll_until(operation, check, timeout, interval=0.0)

    return NovaCompute(lambda: conn, style, poll, verify, logging.getLogger("test"),
                       lambda instance: f"evidence of {instance}")


@pytest.mark.parametrize("style", [MINICLOUD_STYLE, OPENSTACK_STYLE], ids=["minicloud", "openstack"])
def test_a_migration_is_done_when_the_clouds_own_check_proves_the_new_host(style: ComputeStyle) -> None:
    compute = FakeCompute({"vm": Server("vm", "ACTIVE", "compute-1")}, migrate_to="compute-2")
    moved: list[tuple[str, str]] = []
    assert nova(compute, replace(style, **FAST), moved).live_migrate("vm", "compute-1", 5.0) == "compute-2"
    assert moved == [("vm", "compute-1")]
    assert compute.migrations == ["vm"]


def test_a_server_deleted_meanwhile_is_nothing_to_migrate() -> None:
    compute = FakeCompute({})
    assert nova(compute, MINICLOUD_STYLE, []).live_migrate("vm", "compute-1", 5.0) == "(deleted)"
    assert compute.migrations == []


def test_only_minicloud_counts_a_server_being_deleted_as_gone() -> None:
    deleting = {"vm": Server("vm", "ACTIVE", "compute-1", task_state="deleting")}
    fast = {**FAST, "migration_attempts": 1}
    assert nova(FakeCompute(dict(deleting)), replace(MINICLOUD_STYLE, **fast), []).live_migrate(
        "vm", "compute-1", 0.5) == "(deleted)"
    with pytest.raises(OperationFailed) as failed:
        nova(FakeCompute(dict(deleting)), replace(OPENSTACK_STYLE, **fast), []).live_migrate(
            "vm", "compute-1", 0.0)
    assert "still on compute-1" in str(failed.value)
    assert failed.value.evidence == "evidence of vm"


def test_a_migration_that_stays_on_its_source_is_retried_then_fails_with_the_evidence() -> None:
    compute = FakeCompute({"vm": Server("vm", "ACTIVE", "compute-1")})  # never moves
    with pytest.raises(OperationFailed) as failed:
        nova(compute, replace(MINICLOUD_STYLE, **FAST), []).live_migrate("vm", "compute-1", 5.0)
    assert compute.migrations == ["vm"] * MINICLOUD_STYLE.migration_attempts
    assert failed.value.operation == "live-migrate"


@pytest.mark.parametrize("style", [MINICLOUD_STYLE, OPENSTACK_STYLE], ids=["minicloud", "openstack"])
def test_disable_and_enable_act_on_the_clouds_compute_binary(style: ComputeStyle) -> None:
    mine, other = Service("compute-1", style.binary), Service("compute-1", "something-else")
    ops = nova(FakeCompute(service_rows=[other, mine]), style, [])
    ops.disable("compute-1", "upgrade")
    assert (mine.status, other.status) == ("disabled", "enabled")
    ops.enable("compute-1")
    assert mine.status == "enabled"
    with pytest.raises(OperationFailed, match=f"compute-2 has no {style.binary}"):
        ops.service("compute-2")


def test_poll_passes_some_failures_through_and_reports_the_others_at_the_deadline() -> None:
    errors: list[str] = []

    def broken() -> str | None:
        raise OperationFailed("inner", "stop now")

    with pytest.raises(OperationFailed, match="stop now"):
        poll_until("outer", broken, 5.0, interval=0.0, passthrough=(OperationFailed,))
    with pytest.raises(OperationFailed, match="not done after 0s: OperationFailed: inner: stop now") as late:
        poll_until("outer", broken, 0.0, interval=0.0, on_error=lambda: errors.append("dropped"),
                   evidence=lambda: "logs")
    assert late.value.evidence == "logs"
    assert errors == ["dropped"]

"""The data plane of a `rollgate up` cloud: live migration and agent restarts
under a writer lose no acknowledged write and fail no request."""
from __future__ import annotations

from typing import Any

import pytest

from harness.smoke import floating_endpoint
from tests.integration.test_minicloud_sdk import boot, settle
from tests.integration.writer import Writer, read_back

pytestmark = pytest.mark.integration


def test_live_migration_loses_no_acknowledged_write(make_cloud: Any) -> None:
    cloud = make_cloud(release="1.0", computes=2)
    conn = cloud.conn
    (server,) = boot(conn, "lm", 1)
    endpoint = floating_endpoint(server)
    source = server.compute_host
    writer = Writer(endpoint)
    writer.start()
    try:
        conn.compute.live_migrate_server(server, host=None, block_migration="auto")
        moved = settle(conn, server)
    finally:
        report = writer.stop()
    assert moved.compute_host != source
    assert report.acked, "the writer never got a write acknowledged"
    assert report.failures == [], report.failures[:5]
    assert read_back(endpoint, report.acked) == []
    print(f"\nlive migration under a writer: {len(report.acked)} acknowledged writes, "
          f"longest gap {report.longest_gap * 1000:.0f} ms (target <= 200 ms)")
    assert report.longest_gap < 2.0


def test_compute_agent_restart_does_not_interrupt_data_plane(make_cloud: Any) -> None:
    cloud = make_cloud(release="1.0", computes=1)
    (server,) = boot(cloud.conn, "agent", 1)
    endpoint = floating_endpoint(server)
    writer = Writer(endpoint)
    writer.start()
    try:
        cloud.backend.stop_service("compute-1", "compute-agent")
        cloud.backend.start_service("compute-1", "compute-agent")
        # The network agent programs the data path; restart it too.
        cloud.backend.stop_service("controller", "network")
        cloud.backend.start_service("controller", "network")
    finally:
        report = writer.stop()
    assert len(report.acked) > 20
    assert report.failures == [], report.failures[:5]
    assert read_back(endpoint, report.acked) == []

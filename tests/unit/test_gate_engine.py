"""The engine watch: an engine that goes away makes the run an ERROR, never a FAIL."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from harness.gate.engine import CHECK_ENGINE, EngineDown, EngineWatch, guard_ops, wait_for_engine
from harness.timeline import Timeline
from harness.verdict import ERROR, ERRORED, FAILED, Check, Verdict


class Switch:
    """A probe whose answer the test sets; ``raises`` makes it throw like a dead socket."""

    def __init__(self) -> None:
        self.alive = True
        self.raises = False

    def __call__(self) -> bool:
        if self.raises:
            raise ConnectionRefusedError("docker.sock")
        return self.alive


def test_no_outage_no_check(tmp_path: Path) -> None:
    with Timeline(tmp_path / "t.jsonl") as timeline:
        watch = EngineWatch(Switch(), timeline)
        assert watch.poll()
        assert watch.check() is None
        watch.raise_if_failed("anything")  # no raise


def test_outage_is_recorded_on_the_timeline_and_is_an_error(tmp_path: Path) -> None:
    probe = Switch()
    with Timeline(tmp_path / "t.jsonl") as timeline:
        watch = EngineWatch(probe, timeline)
        watch.poll()
        probe.raises = True
        assert not watch.poll()
        assert not watch.poll()  # still down: one outage, not two
        probe.raises = False
        assert watch.poll()
    events = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [e["phase"] for e in events if e["kind"] == "engine"] == ["down", "up"]
    check = watch.check()
    assert check is not None
    assert check.id == CHECK_ENGINE
    assert check.status == ERRORED
    assert "1 outage" in check.summary
    assert len(check.evidence) == 1
    start, end = check.evidence[0].window or (0, 0)
    assert end >= start


def test_engine_error_outranks_the_failures_it_caused() -> None:
    """The outage's symptoms (failed requests, a failed step) must not make the run a FAIL."""
    watch = EngineWatch(Switch())
    watch.outages.append((1.0, 2.0))
    engine = watch.check()
    assert engine is not None
    verdict = Verdict(run_id="r", scenario="s", seed=1, checks=[
        Check.failed("slo.failed_api_requests", "40 failed"), Check.failed("executor.upgrade", "x"), engine])
    assert verdict.verdict == ERROR
    assert verdict.exit_code == 2
    assert {c.status for c in verdict.checks} == {FAILED, ERRORED}


def test_guarded_ops_fail_at_once_after_an_outage() -> None:
    calls: list[str] = []

    class Ops:
        name = "ops"

        def replace_service(self, host: str) -> str:
            calls.append(host)
            return host

    watch = EngineWatch(Switch())
    ops = guard_ops(Ops(), watch)
    assert ops.replace_service("compute-1") == "compute-1"
    assert ops.name == "ops"
    watch.outages.append((1.0, None))
    with pytest.raises(EngineDown, match="replace_service"):
        ops.replace_service("compute-2")
    assert calls == ["compute-1"]


def test_an_op_that_fails_asks_the_engine_at_once() -> None:
    """The executor's call fails first; the watch must not wait for its next ping."""
    probe = Switch()

    class Ops:
        def replace_service(self) -> None:
            probe.raises = True
            raise ConnectionError("docker.sock: No such file or directory")

    watch = EngineWatch(probe, interval=3600)
    with pytest.raises(ConnectionError):
        guard_ops(Ops(), watch).replace_service()
    assert watch.failed


def test_the_watch_thread_sees_an_outage(tmp_path: Path) -> None:
    probe = Switch()
    with EngineWatch(probe, interval=0.01) as watch:
        probe.alive = False
        deadline = time.monotonic() + 5
        while not watch.failed and time.monotonic() < deadline:
            time.sleep(0.01)
    assert watch.failed


def test_wait_for_engine_until_it_is_back() -> None:
    probe = Switch()
    probe.alive = False
    threading.Timer(1.2, lambda: setattr(probe, "alive", True)).start()
    assert wait_for_engine(probe, timeout=10)
    probe.alive = False
    assert not wait_for_engine(probe, timeout=1.5)


def test_the_test_beds_services_are_watched_the_same_way_under_their_own_check() -> None:
    """openstack: MariaDB or RabbitMQ going away is the machine's failure (harness.infrastructure)."""
    from harness.clouds.openstack.gate import OpenStackGateCloud
    from harness.gate.run import CHECK_INFRASTRUCTURE

    health = {("db", "mariadb"): "healthy", ("mq", "rabbitmq"): "healthy"}
    containers = type("Containers", (), {"health": lambda self, h, s: health[(h, s)]})()
    cloud = OpenStackGateCloud(state=None, containers=containers)  # type: ignore[arg-type]
    watch = EngineWatch(cloud.infra_alive, name="test bed's MariaDB/RabbitMQ", check_id=CHECK_INFRASTRUCTURE)
    assert watch.poll()
    health[("mq", "rabbitmq")] = "paused"
    assert not watch.poll()
    health[("mq", "rabbitmq")] = "healthy"
    assert watch.poll()
    check = watch.check()
    assert check is not None
    assert (check.id, check.status) == (CHECK_INFRASTRUCTURE, ERRORED)
    assert "test bed's MariaDB/RabbitMQ was away" in check.summary
    with pytest.raises(EngineDown, match="MariaDB/RabbitMQ stopped answering; the upgrade skipped"):
        watch.raise_if_failed("the upgrade")

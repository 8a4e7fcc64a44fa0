"""Fixtures that deploy real minicloud clouds on loopback through the harness.

Every cloud a test starts is destroyed afterwards, and the test fails if any
process tagged with its run id survived the teardown.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends import procutil
from harness.backends.base import HostSpec
from harness.backends.process import ProcessBackend
from harness.clouds import minicloud
from harness.deploy import all_in_one, connect, deploy
from harness.runstate import RunState


@pytest.fixture(autouse=True)
def results_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("results")
    monkeypatch.setenv("ROLLGATE_RESULTS", str(root))
    return root


class Cloud:
    """A deployed cloud: its run state, backend and an admin sdk connection."""

    def __init__(self, state: RunState, backend: ProcessBackend) -> None:
        self.state = state
        self.backend = backend
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            self._conn = connect(self.state)
        return self._conn

    def connect(self, cloud: str = "rollgate") -> Any:
        return connect(self.state, cloud)

    def manage(self, *args: str, host: str = "controller") -> Any:
        return self.backend.manage(host, *args)


def hosts_with(release: str, computes: int, compute_releases: dict[str, str] | None = None) -> list[HostSpec]:
    """The all-in-one topology, with some computes at other releases."""
    hosts = all_in_one(release, computes)
    for spec in hosts:
        if compute_releases and spec.name in compute_releases:
            spec.services = dict.fromkeys(spec.services, compute_releases[spec.name])
    return hosts


@pytest.fixture
def make_cloud() -> Iterator[Callable[..., Cloud]]:
    """Factory: ``make_cloud(release="1.0", computes=3, hosts=None, config=None)``."""
    clouds: list[Cloud] = []

    def factory(release: str = "1.0", computes: int = 3, hosts: list[HostSpec] | None = None,
                config: dict[str, Any] | None = None) -> Cloud:
        state = RunState(run_id="t-" + secrets.token_hex(4), backend="process")
        if config:
            state.extra["config_overrides"] = config
        backend = deploy(state, hosts or all_in_one(release, computes))
        cloud = Cloud(state, backend)
        clouds.append(cloud)
        return cloud

    yield factory
    leaks = []
    for cloud in clouds:
        cloud.backend.destroy()
        leaks += procutil.tagged_pids(cloud.state.run_id)
    assert not leaks, f"processes left behind: {leaks}"


__all__ = ["Cloud", "hosts_with", "minicloud"]

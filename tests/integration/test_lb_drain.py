"""HAProxy drain on the process backend: zero failed requests while controller-1's
compute-api is drained, replaced and undrained (the docker twin: tests/e2e/test_docker_cloud.py).
The same cloud shows testinfra (``local://``) reading every service's release."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from harness.backends import procutil
from harness.deploy import connect, deploy
from harness.runstate import RunState
from harness.scenario.load import load_scenario
from tests.lb_drain_support import drain_replace_undrain

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs Debian's haproxy")]

MINIMAL = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "valid" / "minimal.yaml"


def test_drain_of_an_api_node_fails_no_request(results_dir: Path) -> None:
    state = RunState(run_id="lb-drain-process", backend="process")
    backend = deploy(state, [h.to_spec() for h in load_scenario(MINIMAL).topology.hosts])
    try:
        releases = {}
        for host in state.hosts.values():
            for service, info in host.services.items():
                if info.port is None:
                    continue  # haproxy: not a minicloud service
                tinfra = backend.testinfra_host(host.name, service)
                url = f"http://{backend.address(host.name)}:{info.port}/healthz"
                probe = ("import json,urllib.request;"
                         f"print(json.load(urllib.request.urlopen('{url}'))['release'])")
                releases[(host.name, service)] = tinfra.check_output(f'{sys.executable} -c "{probe}"')
        assert len(releases) == 18
        assert set(releases.values()) == {"1.0"}, releases
        result = drain_replace_undrain(backend, connect(state), "lb-1", "controller-1", "1.0")
    finally:
        backend.destroy()
    assert procutil.tagged_pids("lb-drain-process") == []
    assert result.failures == [], result.failures[:5]
    assert result.ok >= 60

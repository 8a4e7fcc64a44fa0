"""The gate on real OpenStack: ``rollgate run scenarios/openstack-*.yaml --backend docker``.

Keystone, Placement and Nova 2026.1 deployed in containers behind HAProxy,
rolled to 2026.2 by the executor under Locust traffic through the load
balancer, judged, and removed. Each test is one gate run (3-8 minutes on two
cores), in a subprocess exactly as a Zuul job runs it:

- the rolling upgrade PASSes: zero failed API requests through the load
  balancer (or FAILs by Nova 2026.2's own loss of a conductor reply at the
  unpin's SIGHUP and nothing else: docs/openstack.md), every service at
  2026.2 (its container and image), nova's service versions 74,
  ``nova-status upgrade check`` passing, resources intact, and the report's
  timeline with a lane per service showing its swap;
- the rollback scenario PASSes: stopped before the point of no return, rolled
  back newest step first, every service at 2026.1 and nova's versions at 72;
- the same upgrade with the load balancer's shield off (``api_drain: false``)
  FAILs, naming the requests dropped at the nova-api swap;
- MariaDB or RabbitMQ going away mid-upgrade is an ERROR
  (``harness.infrastructure``), not a FAIL, and nothing of the run is left;
- a missing image is an ERROR before anything starts.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.backends.docker_resources import LABEL_RUN, docker_client, leftovers, reap

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
NOTHING = {"containers": [], "volumes": [], "networks": []}
SERVICES = ("keystone", "placement", "glance", "neutron", "nova-api", "nova-conductor", "nova-scheduler")


def gate(scenario: Path, run_id: str, results: Path, timeout: float = 1500,
         during: Any = None) -> tuple[int, dict[str, Any], str]:
    """``rollgate run SCENARIO --backend docker``: (exit code, verdict.json, output)."""
    env = {**os.environ, "ROLLGATE_RESULTS": str(results)}
    command = [sys.executable, "-m", "harness.cli", "run", str(scenario), "--backend", "docker",
               "--run-id", run_id]
    engine = docker_client()
    try:
        with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) as process:
            watcher = None
            if during is not None:
                watcher = threading.Thread(target=during, args=(process,), daemon=True)
                watcher.start()
            output, _ = process.communicate(timeout=timeout)
            if watcher is not None:
                watcher.join(timeout=60)
    finally:
        if leftovers(engine, run_id) != NOTHING:  # a failed run must not leak into the next test
            reap(engine, run_id, root=None)
    verdict_path = results / run_id / "verdict.json"
    assert verdict_path.exists(), output[-4000:]
    return process.returncode, json.loads(verdict_path.read_text()), output


def checks_of(verdict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in verdict["checks"]}


def failing(verdict: dict[str, Any]) -> list[str]:
    return [f"{c['id']}: {c['summary']}; {[e.get('error') or e['message'] for e in c['evidence'][:3]]}"
            for c in verdict["checks"] if c["status"] not in ("passed", "skipped")]


def steps(run_dir: Path) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in (run_dir / "timeline.jsonl").read_text().splitlines() if line]
    return [e for e in events if e.get("kind") == "step" and e.get("phase") == "end"]


def conductor_dropped_a_reply_at_the_unpin(verdict: dict[str, Any], run_dir: Path) -> bool:
    """True when every failed request is the known Nova 2026.2 loss at the unpin's SIGHUP: each
    failed during unpin-rpc, nova-conductor's worker was respawned there (cotyledon logs its
    graceful exit) and a nova-compute's call to it never got its reply (MessagingTimeout)."""
    failed = checks_of(verdict)["slo.failed_api_requests"]
    if failed["status"] != "failed" or not failed["evidence"]:
        return False
    if not all("unpin-rpc" in evidence["message"] for evidence in failed["evidence"]):
        return False
    conductor = run_dir / "logs" / "controller" / "nova-conductor.log"
    computes = sorted((run_dir / "logs").glob("compute-*/nova-compute.log"))
    return (conductor.exists() and "graceful exiting of service" in conductor.read_text(errors="replace")
            and any("MessagingTimeout" in log.read_text(errors="replace") for log in computes))


def test_openstack_rolling_upgrade_passes_with_zero_failed_requests(tmp_path: Path) -> None:
    run_id = "e2e-os-upgrade"
    code, verdict, output = gate(ROOT / "scenarios" / "openstack-rolling-upgrade.yaml", run_id, tmp_path)
    checks = checks_of(verdict)
    if code == 1 and conductor_dropped_a_reply_at_the_unpin(verdict, tmp_path / run_id):
        # Nova 2026.2's finding (docs/openstack.md, "The unpin's SIGHUP lost a conductor
        # reply"): the gate is right to FAIL it. Every other promise still holds.
        assert [c["id"] for c in verdict["checks"] if c["status"] != "passed"
                and c["status"] != "skipped"] == ["slo.failed_api_requests"], failing(verdict)
    else:
        assert code == 0, (verdict["verdict"], failing(verdict), output[-3000:])
        assert verdict["verdict"] == "PASS"
        assert checks["slo.failed_api_requests"]["status"] == "passed"
    requests = verdict["counts"]
    assert sum(v for k, v in requests.items() if k.startswith("api")) > 100, requests
    assert checks["executor.upgrade"]["status"] == "passed"
    assert {s for services in verdict["releases"].values() for s in services.values()} == {"2026.2"}
    assert set(verdict["releases"]["controller"]) == set(SERVICES)
    versions = checks["openstack.service-versions"]["summary"]
    assert re.search(r"all \d+ nova services at version 74 \(2026\.2\)", versions), versions
    assert "passed" in checks["openstack.upgrade-check"]["summary"]
    assert checks["resources.intact"]["status"] == "passed"
    assert checks["resources.verify-after"]["summary"].startswith("2 resource(s) ok")
    for no_guest in ("slo.lost_writes", "slo.dataplane_gap"):  # not passed over nothing: not judged
        assert checks[no_guest]["status"] == "skipped"
        assert "fake virt driver runs no guest" in checks[no_guest]["summary"]
    forward = [(e["host"], e["service"]) for e in steps(tmp_path / run_id)
               if e["name"] == "replace-service" and e["outcome"] == "ok"]
    assert forward == [("controller", s) for s in (
        "keystone", "placement", "glance", "neutron", "nova-conductor", "nova-scheduler", "nova-api")] + [
        (f"compute-{i}", "nova-compute") for i in (1, 2, 3)]
    report = (tmp_path / run_id / "report.html").read_text()
    for service in SERVICES:  # a lane per service, each with its swap
        assert f"controller/{service}" in report
        assert f'"label":"{service} 2026.1 -\\u003e 2026.2"' in report  # its swap, in the page's JSON
    assert re.search(r"upgrade 2026\.1 -> 2026\.2", output)
    assert leftovers(docker_client(), run_id) == NOTHING


def test_openstack_rollback_from_the_point_of_no_return_passes(tmp_path: Path) -> None:
    run_id = "e2e-os-rollback"
    code, verdict, output = gate(ROOT / "scenarios" / "openstack-rollback.yaml", run_id, tmp_path)
    assert code == 0, (verdict["verdict"], failing(verdict), output[-3000:])
    checks = checks_of(verdict)
    assert checks["executor.rollback"]["summary"] == (
        "upgrade stopped before s012 on purpose and was rolled back cleanly")
    assert checks["slo.failed_api_requests"]["status"] == "passed"
    assert {s for services in verdict["releases"].values() for s in services.values()} == {"2026.1"}
    assert "at version 72 (2026.1)" in checks["openstack.service-versions"]["summary"]
    assert checks["openstack.upgrade-check"]["status"] == "passed"
    assert checks["resources.intact"]["status"] == "passed"
    ended = steps(tmp_path / run_id)
    forward = [e["step_id"] for e in ended if e["direction"] == "forward"]
    assert "point-of-no-return" not in {e["name"] for e in ended}
    assert "stopped before s012 as the scenario asks; rolling back" in output
    back = [e["service"] for e in ended if e["direction"] == "rollback" and e["name"] == "replace-service"]
    assert back == ["neutron", "glance", "placement", "keystone"]  # newest first
    assert forward[-1] == "s011"
    assert leftovers(docker_client(), run_id) == NOTHING


def test_without_the_load_balancers_drain_the_gate_fails_naming_nova_api(tmp_path: Path) -> None:
    """The hand-made run without a load balancer saw nova-api drop requests at its swap
    (FINDINGS); the gate must see that too. The same upgrade with ``api_drain: false``:
    the old nova-api is stopped while HAProxy still sends it requests, and HAProxy replays
    nothing (docs/openstack.md, "Without the load balancer's shield").

    The traffic here builds no server: with builds in the mix, the Keystone swap (the first
    one, unshielded too) can already send a build to ERROR, the health gate then rolls the
    upgrade back and nova-api's swap never comes (a FAIL too, seen in CI; not this test's
    point, which is that the gate sees what the hand-made run saw at nova-api)."""
    raw = yaml.safe_load((ROOT / "scenarios" / "openstack-rolling-upgrade.yaml").read_text())
    raw["upgrade"]["policy"]["api_drain"] = False
    raw["traffic"]["api"]["mix"] = {"list_servers": 4, "show_server": 3, "list_flavors": 2,
                                    "list_images": 2, "list_services": 1}
    raw["resources"] = {"servers": 1, "api_down": False, "boot_timeout_s": 180}
    scenario = tmp_path / "openstack-no-drain.yaml"
    scenario.write_text(yaml.safe_dump({**raw, "name": "openstack-no-drain"}))
    run_id = "e2e-os-nodrain"
    code, verdict, output = gate(scenario, run_id, tmp_path)
    assert code == 1, (verdict["verdict"], failing(verdict), output[-3000:])
    assert verdict["verdict"] == "FAIL"
    checks = checks_of(verdict)
    assert checks["slo.failed_api_requests"]["status"] == "failed", failing(verdict)
    assert not [c for c in checks.values() if c["status"] == "error"], failing(verdict)
    evidence = checks["slo.failed_api_requests"]["evidence"]
    at_swap = [e for e in evidence if "replace-service controller/nova-api" in e["message"]]
    assert at_swap, [e["message"] for e in evidence]
    assert all(e["target"].startswith("compute") for e in at_swap)
    assert leftovers(docker_client(), run_id) == NOTHING


@pytest.mark.parametrize("service", ["mariadb", "rabbitmq"])
def test_the_database_or_the_broker_going_away_mid_upgrade_is_an_error_and_leaves_nothing(
        tmp_path: Path, service: str) -> None:
    """The test bed failing is the machine's failure: ERROR (exit 2), judged no further."""
    raw = yaml.safe_load((ROOT / "scenarios" / "openstack-rollback.yaml").read_text())
    raw["resources"] = {"servers": 1, "api_down": False, "boot_timeout_s": 180}
    scenario = tmp_path / f"openstack-{service}-away.yaml"
    scenario.write_text(yaml.safe_dump({**raw, "name": f"openstack-{service}-away"}))
    run_id = f"e2e-os-{service[:6]}away"
    timeline = tmp_path / run_id / "timeline.jsonl"
    paused: list[str] = []

    def pause_it_at_the_first_swap(process: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 900
        while process.poll() is None and time.monotonic() < deadline:
            if timeline.exists() and '"name":"replace-service"' in timeline.read_text():
                engine = docker_client()
                for container in engine.containers.list(filters={"label": [f"{LABEL_RUN}={run_id}",
                                                                           f"rollgate.service={service}"]}):
                    container.pause()
                    paused.append(container.name)
                return
            time.sleep(0.5)

    code, verdict, output = gate(scenario, run_id, tmp_path, during=pause_it_at_the_first_swap)
    assert paused, output[-3000:]
    assert code == 2, (verdict["verdict"], failing(verdict), output[-3000:])
    assert verdict["verdict"] == "ERROR"
    checks = checks_of(verdict)
    assert checks["harness.infrastructure"]["status"] == "error"
    assert "MariaDB/RabbitMQ was away" in checks["harness.infrastructure"]["summary"]
    assert not [c for c in checks if c.startswith("slo.")]  # not judged: no FAIL from the machine's failure
    assert leftovers(docker_client(), run_id) == NOTHING


def test_a_missing_image_is_an_error_before_anything_starts(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.clouds import openstack as profile
    from harness.gate import GateOptions, prepare, run_gate

    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path))
    monkeypatch.setattr(profile, "openstack_tag", lambda release: f"rollgate/openstack:{release}-missing")
    options = GateOptions(backend="docker", run_id="e2e-os-noimage")
    run = prepare(ROOT / "scenarios" / "openstack-rolling-upgrade.yaml", options, "e2e-os-noimage")
    lines: list[str] = []
    verdict = run_gate(run, options, lines.append)
    assert verdict.verdict == "ERROR"
    error = next(c for c in verdict.checks if c.id == "harness.run")
    assert "image rollgate/openstack:2026.1-missing is missing" in error.summary
    assert "rollgate images build --cloud openstack" in error.summary
    assert leftovers(docker_client(), "e2e-os-noimage") == NOTHING
    assert (tmp_path / "e2e-os-noimage" / "verdict.json").exists()

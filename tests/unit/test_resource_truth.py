"""The verify phases against the API's current view and the workload's identity, the lifecycle
probe's points, and project isolation on every path (issue 11, weaknesses 3, 5 and 6)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.checks.resources import isolation_check, resource_checks
from harness.gate import lifecycle
from harness.gate.lifecycle import LifecycleProbe
from harness.isolation import Foreign, leaks
from harness.resource_views import disagreement, identity_problems, server_view, view_problems
from harness.resources import PhaseResult, Resource, ResourcePhases, ResourceSpec

SID = "11111111-2222-3333-4444-555555555555"
OTHER = "99999999-2222-3333-4444-555555555555"
RECORDED = {"name": "rollgate-res-1", "address": "127.0.10.2:20001", "flavor": "1", "image": "img"}


def body(**changes: Any) -> dict[str, Any]:
    server: dict[str, Any] = {
        "id": SID, "name": "rollgate-res-1", "status": "ACTIVE", "OS-EXT-SRV-ATTR:host": "compute-1",
        "addresses": {"public": [{"addr": "127.0.10.2", "OS-EXT-IPS:type": "floating"}]},
        "metadata": {"dataplane_port": "20001"}, "flavor": {"id": "1"}, "image": {"id": "img"}}
    server.update(changes)
    return server


# --- the API's current view ---------------------------------------------------

def test_a_view_that_says_what_was_created_has_no_problem() -> None:
    assert view_problems("r", RECORDED, server_view(body())) == []
    # the host may change (live migration); it is not compared with the create-time host
    assert view_problems("r", RECORDED, server_view(body(**{"OS-EXT-SRV-ATTR:host": "compute-3"}))) == []


@pytest.mark.parametrize(("changes", "expected"), [
    ({"addresses": {}}, "no floating address"),  # a rolled-back API that lost the address
    ({"metadata": {"dataplane_port": "20007"}}, "address '127.0.10.2:20007'"),  # corrupted by a migration
    ({"status": "ERROR"}, "status 'ERROR'"),
    ({"OS-EXT-SRV-ATTR:host": None}, "no host"),
    ({"flavor": {"id": "2"}}, "flavor '2'"),
    ({"image": {"id": "other"}}, "image 'other'"),
    ({"name": "renamed"}, "name 'renamed'"),
])
def test_a_view_that_differs_from_the_record_is_a_problem(changes: dict[str, Any], expected: str) -> None:
    problems = view_problems("r", RECORDED, server_view(body(**changes)))
    assert problems
    assert expected in " ".join(problems)


def test_list_and_show_must_agree() -> None:
    assert disagreement("r", server_view(body()), server_view(body())) == []
    differ = disagreement("r", server_view(body()), server_view(body(addresses={})))
    assert differ
    assert "address" in differ[0]


def test_the_workload_on_the_address_must_be_the_server_on_the_api_host() -> None:
    assert identity_problems("r", SID, "a:1", {"uuid": SID, "host": "compute-1"}, "compute-1") == []
    assert "not this server" in identity_problems("r", SID, "a:1", {"uuid": OTHER, "host": "c"}, None)[0]
    moved = identity_problems("r", SID, "a:1", {"uuid": SID, "host": "compute-2"}, "compute-1")
    assert moved
    assert "compute-2" in moved[0]
    assert identity_problems("r", SID, "a:1", None, "compute-1") == []  # the data read reports it


# --- verify() end to end over a fake API and data plane -------------------------

class FakeAnswer:
    def __init__(self, status: int, payload: Any) -> None:
        self.status_code = status
        self._payload = payload

    def json(self) -> Any:
        return self._payload


class FakeCompute:
    def __init__(self, server: dict[str, Any]) -> None:
        self.server = server

    def get(self, path: str, **_kw: Any) -> FakeAnswer:
        if path == "/servers/detail":
            return FakeAnswer(200, {"servers": [self.server]})
        if path == f"/servers/{SID}":
            return FakeAnswer(200, {"server": self.server})
        return FakeAnswer(404, {})


class FakeConn:
    def __init__(self, server: dict[str, Any]) -> None:
        self.compute = FakeCompute(server)


def phases_with(tmp_path: Path, server: dict[str, Any], workloads: dict[str, dict[str, Any]],
                monkeypatch: pytest.MonkeyPatch) -> ResourcePhases:
    resource = Resource("rollgate-res-1", SID, "127.0.10.2:20001", "k", "v", flavor="1", image="img",
                        host="compute-1")
    (tmp_path / "resources.json").write_text(json.dumps([resource.__dict__]))

    def http(method: str, url: str, body: bytes | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
        address, path = url.removeprefix("http://").split("/", 1)
        workload = workloads.get(address)
        if workload is None:
            raise ConnectionRefusedError(f"nothing on {address}")
        if path == "health":
            return 200, json.dumps({k: v for k, v in workload.items() if k != "kv"}).encode()
        return 200, workload.get("kv", b"v")

    monkeypatch.setattr("harness.resources._http", http)
    return ResourcePhases(tmp_path, lambda: FakeConn(server), ResourceSpec())


def test_verify_passes_when_the_api_and_the_workload_say_what_was_created(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workloads = {"127.0.10.2:20001": {"uuid": SID, "host": "compute-1"}}
    result = phases_with(tmp_path, body(), workloads, monkeypatch).verify("verify-after")
    assert result.ok, result.problems
    assert result.checked == 1


def test_verify_fails_when_the_api_lost_the_address_though_the_old_address_still_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a stale view passed: the data still reads on the recorded address.
    workloads = {"127.0.10.2:20001": {"uuid": SID, "host": "compute-1"}}
    result = phases_with(tmp_path, body(addresses={}), workloads, monkeypatch).verify("verify-after")
    assert not result.ok
    assert any("no floating address" in p for p in result.problems)


def test_verify_fails_when_another_server_answers_on_the_address_the_api_reports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workloads = {"127.0.10.2:20001": {"uuid": SID, "host": "compute-1"},
                 "127.0.10.2:20002": {"uuid": OTHER, "host": "compute-2", "kv": b"v"}}
    server = body(metadata={"dataplane_port": "20002"})  # a migration wrote another row's port
    result = phases_with(tmp_path, server, workloads, monkeypatch).verify("verify-after")
    text = " ".join(result.problems)
    assert "20002" in text
    assert "not this server" in text


def test_verify_fails_when_the_workload_is_not_on_the_host_the_api_reports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workloads = {"127.0.10.2:20001": {"uuid": SID, "host": "compute-2"}}
    result = phases_with(tmp_path, body(), workloads, monkeypatch).verify("verify-after")
    assert any("the API says 'compute-1'" in p for p in result.problems)


def test_verify_reads_resources_another_phases_object_added(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    phases = phases_with(tmp_path, body(), {"127.0.10.2:20001": {"uuid": SID, "host": "compute-1"}},
                         monkeypatch)
    (tmp_path / "resources.json").write_text("[]")  # the file is the record
    result = phases.verify("verify-after")
    assert result.problems == ["no resources were created (see the create phase)"]


def test_mixed_verify_phases_count_for_resources_intact() -> None:
    broken = PhaseResult("verify-mixed-api", problems=["r: the API reports no floating address"])
    checks = {c.id: c for c in resource_checks([PhaseResult("verify-before", checked=1), broken])}
    assert checks["resources.intact"].status == "failed"
    assert checks["resources.verify-mixed-api"].status == "failed"


# --- the lifecycle probe's points ------------------------------------------------

class RecordingPhases:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def create_more(self, phase: str, count: int = 1) -> PhaseResult:
        self.calls.append(phase)
        return PhaseResult(phase, checked=count)

    def verify(self, phase: str = "verify") -> PhaseResult:
        self.calls.append(phase)
        return PhaseResult(phase, checked=1)


def drive(probe: LifecycleProbe, operation: str, *args: Any, fail: bool = False) -> None:
    with pytest.raises(RuntimeError) if fail else _nothing(), probe.around(operation, args, {}):
        if fail:
            raise RuntimeError("step failed")


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None


def test_lifecycle_probe_creates_when_the_controllers_serve_new_and_a_new_compute_is_back() -> None:
    resources = RecordingPhases()
    results: list[Any] = []
    probe = LifecycleProbe(resources, results, {"controller-1", "controller-2"}, "1.1")  # type: ignore[arg-type]
    drive(probe, "replace_service", "controller-1", "conductor", "1.1", 10.0)
    drive(probe, "replace_service", "controller-1", "compute-api", "1.1", 10.0)
    assert resources.calls == []  # controller-2's API still runs the old release
    drive(probe, "replace_service", "controller-2", "compute-api", "1.1", 10.0)
    assert resources.calls == ["create-mixed-api", "verify-mixed-api"]
    drive(probe, "enable_compute", "compute-1")  # enabled but never upgraded: not yet
    drive(probe, "replace_service", "compute-1", "compute-agent", "1.1", 10.0)
    drive(probe, "enable_compute", "compute-1")
    drive(probe, "replace_service", "compute-2", "compute-agent", "1.1", 10.0)
    drive(probe, "enable_compute", "compute-2")  # once only
    assert resources.calls[2:] == ["create-mixed-compute", "verify-mixed-compute"]
    assert [r.phase for r in results] == resources.calls


def test_lifecycle_probe_ignores_failed_steps_and_the_rollback_to_the_old_release() -> None:
    resources = RecordingPhases()
    probe = LifecycleProbe(resources, [], {"controller-1"}, "1.1")  # type: ignore[arg-type]
    drive(probe, "replace_service", "controller-1", "compute-api", "1.1", 10.0, fail=True)
    drive(probe, "replace_service", "controller-1", "compute-api", "1.0", 10.0)  # rollback
    assert resources.calls == []


def test_lifecycle_probe_does_not_apply_to_openstack_or_reboots() -> None:
    class Upgrade:
        action = "reboot"
        to_release = "1.1"

    class Scenario:
        cloud = "minicloud"
        upgrade = Upgrade()

    context: Any = type("Ctx", (), {"scenario": Scenario(), "resources": object(), "phases": []})()
    assert lifecycle.lifecycle_probe(context) is None
    Scenario.cloud = "openstack"
    Upgrade.action = "upgrade"
    assert lifecycle.lifecycle_probe(context) is None


# --- project isolation on every path ------------------------------------------------

FOREIGN = Foreign((SID,), "admin-project", ("rollgate-res-1",), ("compute-1",))


def scoped_api(leak_index: bool = False, leak_all_tenants: bool = False, show_status: int = 404):
    """A fake compute API as the member sees it; optionally leaking on one path."""
    def request(method: str, path: str, version: str, payload: Any) -> tuple[int, Any]:
        if path.startswith("/servers/") and not path.startswith("/servers/detail"):
            return (show_status, {}) if method == "GET" and path == f"/servers/{SID}" else (404, {})
        if path == "/os-migrations":
            return 403, {}
        if "all_tenants" in path:
            return (200, {"servers": [{"id": SID}]}) if leak_all_tenants else (403, {})
        leaky = leak_index and not path.startswith("/servers/detail")
        return 200, {"servers": [{"id": "mine"}] + ([{"id": SID}] if leaky else [])}
    return request


def test_a_scoped_api_leaks_nothing() -> None:
    assert leaks(scoped_api(), FOREIGN) == []


def test_a_fix_applied_to_the_detail_listing_only_is_found_on_the_index() -> None:
    found = leaks(scoped_api(leak_index=True), FOREIGN)
    assert found
    assert all(f.startswith("GET /servers") and "/detail" not in f.split(":")[0] for f in found)
    assert any(f.startswith("GET /servers?name=rollgate-res-1") for f in found)


def test_an_unchecked_all_tenants_is_found() -> None:
    found = leaks(scoped_api(leak_all_tenants=True), FOREIGN)
    assert found
    assert all("all_tenants" in f for f in found)


def test_a_show_of_another_projects_server_must_be_404() -> None:
    found = leaks(scoped_api(show_status=403), FOREIGN)
    assert found == [f"GET /servers/{SID}: answers 403, expected 404 (another project's server)"]


def test_isolation_check_names_the_paths_that_still_leak() -> None:
    before = leaks(scoped_api(leak_index=True, leak_all_tenants=True), FOREIGN)
    after = leaks(scoped_api(leak_all_tenants=True), FOREIGN)
    failed = isolation_check(before, after, "1.1", "1.1.1")
    assert failed.status == "failed"
    assert "all_tenants" in failed.summary
    assert isolation_check(before, [], "1.1", "1.1.1").status == "passed"
    assert isolation_check([], [], "1.1", "1.1.1").status == "error"  # blind: proves nothing

"""The openstack profile's upgrade without Docker: its plan (order, point of no return,
policy validation), the executor over it, and ``OpenStackOps`` mapping each operation to
containers, one-offs, HAProxy's runtime API and openstacksdk, on small fakes."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.clouds import openstack as profile
from harness.clouds.openstack.health import check_report, nova_conf_level
from harness.clouds.openstack.ops import OpenStackOps
from harness.clouds.openstack.plan import plan_for_run
from harness.errors import UsageError, ValidationError
from harness.executor import COMPLETED, ROLLED_BACK, Executor, Journal, Plan, RollbackRefused
from harness.executor.ops import CheckReport, CloudOps, HealthReport, OperationFailed
from harness.executor.steps import PointOfNoReturn, ReplaceService
from harness.runstate import HostState, RunState, ServiceState


@pytest.fixture(autouse=True)
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path))
    return tmp_path


def run_state(release: str = "2026.1", computes: int = 3, run_id: str = "os-unit") -> RunState:
    state = RunState(run_id=run_id, backend="docker", cloud="openstack", status="up")
    state.hosts = {h.name: HostState(h.name, list(h.roles), "127.0.0.1",
                                     {s: ServiceState(release=r) for s, r in h.services.items()})
                   for h in profile.topology(release, computes)}
    state.extra["openstack"] = {"lb_ports": {"identity": 1, "placement": 2, "compute": 3, "image": 4}}
    state.save()
    return state


# --- the plan ----------------------------------------------------------------------

def replaced(plan: Plan) -> list[str]:
    return [f"{s.host_name}/{s.service}" for s in plan.steps if isinstance(s, ReplaceService)]


def test_plan_swaps_identity_and_placement_then_nova_in_its_documented_order() -> None:
    plan = plan_for_run(run_state(), "2026.2", {}, 1, "test")
    assert replaced(plan) == [
        "controller/keystone", "controller/placement", "controller/glance", "controller/neutron",
        "controller/nova-conductor", "controller/nova-scheduler", "controller/nova-api",
        "compute-1/nova-compute", "compute-2/nova-compute", "compute-3/nova-compute"]
    kinds = [s.kind for s in plan.steps]
    assert kinds[:3] == ["pre-check", "db-expand", "pin-rpc"]
    assert kinds[-2:] == ["unpin-rpc", "db-contract"]
    assert "drain-api" not in kinds  # one controller: swaps are make-before-break behind HAProxy
    assert (plan.from_release, plan.to_release) == ("2026.1", "2026.2")
    assert plan.initial_releases["controller"]["keystone"] == "2026.1"
    assert "db" not in plan.initial_releases  # MariaDB & co have no release to roll


def test_the_point_of_no_return_comes_right_before_the_first_nova_service() -> None:
    plan = plan_for_run(run_state(), "2026.2", {}, 1, "test")
    index = plan.finalize_index
    assert index is not None
    marker = plan.steps[index]
    assert isinstance(marker, PointOfNoReturn)
    assert "ServiceTooOld" in marker.reason
    assert "72" in marker.reason
    assert "74" in marker.reason
    following = next(s for s in plan.steps[index:] if isinstance(s, ReplaceService))
    assert following.service == "nova-conductor"
    assert all(s.service in ("keystone", "placement", "glance", "neutron")
               for s in plan.steps[:index] if isinstance(s, ReplaceService))


def test_plan_round_trips_and_renders_with_its_seed() -> None:
    plan = plan_for_run(run_state(), "2026.2", {"order": "random", "batch_size": 1}, 7, "test")
    assert Plan.from_json(plan.to_json()) == plan
    assert plan == plan_for_run(run_state(), "2026.2", {"order": "random", "batch_size": 1}, 7, "test")
    text = plan.render()
    assert "point-of-no-return" in text
    assert "seed 7" in text
    assert "-- computes batch 3/3" in text


def test_plan_of_two_computes_per_batch() -> None:
    plan = plan_for_run(run_state(computes=4), "2026.2", {"batch_size": 2, "max_unavailable": 2}, 0, "t")
    assert "-- computes batch 2/2" in plan.render()


@pytest.mark.parametrize(("target", "policy", "error", "message"), [
    ("2026.3", {}, UsageError, "--to 2026.3: unknown openstack release '2026.3'; valid: 2026.1, 2026.2"),
    ("1.1", {}, UsageError, "unknown openstack release '1.1'"),
    ("2026.2", {"batch_size": 0}, ValidationError, "upgrade.policy.batch_size"),
    ("2026.2", {"batch_size": 3}, ValidationError, "takes every compute host down at once"),
    ("2026.2", {"instances": "cold-migrate"}, ValidationError, "cold-migrate is not wired"),
    ("2026.2", {"roles": ["network"]}, ValidationError, "upgrade.policy.roles: the openstack profile has no "
                                                         "network host; valid: controller, compute"),
    ("2026.2", {"order": ["compute-9"]}, ValidationError, "no host 'compute-9'"),
])
def test_plan_refuses_bad_input(target: str, policy: dict[str, Any], error: type[Exception],
                                message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        plan_for_run(run_state(), target, policy, 0, "test")


def test_plan_refuses_a_downgrade() -> None:
    with pytest.raises(UsageError, match="downgrades are not supported"):
        plan_for_run(run_state("2026.2"), "2026.1", {}, 0, "test")


def test_a_host_filter_leaves_services_behind_and_skips_finalize() -> None:
    plan = plan_for_run(run_state(), "2026.2", {"hosts": ["controller", "compute-1"]}, 0, "test")
    assert plan.steps[-1].kind != "db-contract"
    assert any("no finalize" in note for note in plan.notes)


def test_cli_upgrade_validates_an_openstack_plan_before_touching_anything(results: Path) -> None:
    run_state(run_id="os-cli")
    result = CliRunner().invoke(main, ["upgrade", "os-cli", "--to", "2026.2", "--instances", "cold-migrate"])
    assert result.exit_code == 2, result.output
    assert "cold-migrate is not wired" in result.output
    assert not (results / "os-cli" / "plan.json").exists()
    result = CliRunner().invoke(main, ["rollback", "os-cli"])
    assert result.exit_code == 2
    assert "has no saved plan" in result.output


# --- the executor over the plan --------------------------------------------------------

@dataclass
class RecordingOps:
    """CloudOps that only records (the executor's view of the openstack plan)."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    fail_on: str | None = None

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> Any:
            self.calls.append((name, *args))
            if name == self.fail_on:
                raise OperationFailed(name, "as the test asks")
            return {"upgrade_check": CheckReport("ok"), "health_gate": HealthReport(True),
                    "list_instances": [], "online_data_migrations": False}.get(name)
        return call


def test_rollback_before_the_point_of_no_return_reverses_identity_and_placement(tmp_path: Path) -> None:
    plan = plan_for_run(run_state(), "2026.2", {}, 0, "test")
    index = plan.finalize_index
    assert index is not None
    # The plan as far as a crash right before the point of no return left it.
    cut = Plan.from_dict({**plan.to_dict(), "steps": [s.to_dict() for s in plan.steps[:index]]})
    journal = tmp_path / "journal"
    assert Executor(cut, RecordingOps(), Journal(journal, durable=False)).run().status == COMPLETED
    ops = RecordingOps()
    assert Executor(cut, ops, Journal(journal, durable=False)).rollback().status == ROLLED_BACK
    backs = [(c[2], c[3]) for c in ops.calls if c[0] == "replace_service"]
    assert backs == [("neutron", "2026.1"), ("glance", "2026.1"), ("placement", "2026.1"),
                     ("keystone", "2026.1")]
    final_gate = [c for c in ops.calls if c[0] == "health_gate"][-1]
    assert final_gate[1] == plan.initial_releases  # everything back at 2026.1


def test_rollback_past_the_point_of_no_return_is_refused_with_the_reason(tmp_path: Path) -> None:
    plan = plan_for_run(run_state(), "2026.2", {"auto_rollback": True}, 0, "test")
    ops = RecordingOps(fail_on="online_data_migrations")
    result = Executor(plan, ops, Journal(tmp_path / "journal", durable=False)).run()
    assert result.status == "failed"
    assert result.rollback is None
    with pytest.raises(RollbackRefused, match=r"point of no return at s0.*ServiceTooOld"):
        Executor(plan, RecordingOps(), Journal(tmp_path / "journal", durable=False)).rollback()


def test_a_failure_before_the_point_of_no_return_rolls_back_to_2026_1(tmp_path: Path) -> None:
    plan = plan_for_run(run_state(), "2026.2", {}, 0, "test")
    ops = RecordingOps()
    gate_calls = 0

    def gate(expected: Any, timeout: float) -> HealthReport:
        nonlocal gate_calls
        gate_calls += 1
        return HealthReport(gate_calls != 2, ("placement API down",))  # the gate after placement
    ops.__dict__["health_gate"] = gate
    result = Executor(plan, ops, Journal(tmp_path / "journal", durable=False)).run()
    assert result.status == ROLLED_BACK, result
    backs = [c for c in ops.calls if c[0] == "replace_service" and c[3] == "2026.1"]
    assert [c[2] for c in backs] == ["placement", "keystone"]
    assert not [c for c in ops.calls if c[0] == "replace_service" and c[2].startswith("nova-")]


# --- OpenStackOps on fakes ---------------------------------------------------------------

class FakeContainer:
    def __init__(self, cloud: FakeCloud, host: str, service: str, release: str, image: str) -> None:
        self.cloud = cloud
        self.name = f"rg-os-unit-{host}-{service}-{release}"
        self.labels = {"rollgate.host": host, "rollgate.service": service, "rollgate.release": release}
        self.status = "running"
        self.attrs: dict[str, Any] = {"Config": {"Image": image}, "State": {"ExitCode": 0}}
        topic = service.removeprefix("nova-")
        self.log = f"Starting {topic} node (version x)\n".encode()
        self.signals: list[str] = []
        self.conf = "[upgrade_levels]\ncompute = auto\n"

    def reload(self) -> None:
        pass

    def logs(self, tail: int | None = None) -> bytes:
        return self.log

    def kill(self, signal: str) -> None:
        self.signals.append(signal)
        service = self.labels["rollgate.service"]
        self.log += b"Booting worker\n" if service == "nova-api" else (
            f"Starting {service.removeprefix('nova-')} node\n".encode())

    def exec_run(self, command: list[str]) -> Any:
        return type("Result", (), {"exit_code": 0, "output": self.conf.encode()})()

    def remove(self, force: bool = False) -> None:
        self.cloud.all.remove(self)


class FakeCloud:
    """The OpenStackContainers calls OpenStackOps makes, on an in-memory set of containers."""

    def __init__(self, state: RunState) -> None:
        self.all: list[FakeContainer] = []
        self.events: list[str] = []
        self.oneoffs: list[tuple[str, str, str, str]] = []
        self.oneoff_codes: dict[str, tuple[int, str]] = {}
        self.versions: dict[tuple[str, str], int] = {}
        self.exec_codes: list[int] = []
        self.exit_on_start = False
        for host in state.hosts.values():
            for service, svc in host.services.items():
                if svc.release != profile.SYSTEM:
                    self.all.append(FakeContainer(self, host.name, service, svc.release,
                                                  profile.openstack_tag(svc.release)))
                    if service in ("nova-conductor", "nova-scheduler", "nova-compute"):
                        self.versions[(host.name, service)] = profile.NOVA_SERVICE_VERSION[svc.release]

    def containers(self, host: str, service: str) -> list[FakeContainer]:
        return [c for c in self.all if c.labels["rollgate.host"] == host
                and c.labels["rollgate.service"] == service]

    def start(self, spec: profile.ContainerSpec) -> FakeContainer:
        container = FakeContainer(self, spec.host, spec.service, spec.release, spec.image)
        self.all.append(container)
        self.events.append(f"start {spec.service}@{spec.release}")
        if self.exit_on_start:
            container.status = "exited"
            container.log = b"ServiceTooOld: This service is older (v72) than the minimum (v74)\n"
        elif spec.service.startswith("nova-") and spec.service != "nova-api":
            self.versions[(spec.host, spec.service)] = profile.NOVA_SERVICE_VERSION[spec.release]
        return container

    def retire(self, container: FakeContainer, stop_timeout: float) -> float:
        self.events.append(f"retire {container.labels['rollgate.service']}@"
                           f"{container.labels['rollgate.release']} -t {stop_timeout:g}")
        container.remove()
        return 0.1

    def run_oneoff_result(self, spec: profile.ContainerSpec, name: str, shell: str, timeout: float,
                          kind: str = "setup") -> tuple[int, str]:
        self.oneoffs.append((name, spec.image, shell, kind))
        return self.oneoff_codes.get(name, (0, ""))

    def exec_result(self, host: str, service: str, command: list[str], timeout: float = 120.0,
                    release: str | None = None) -> tuple[int, str]:
        if service == "mariadb":
            return 0, "".join(f"{h}\t{b}\t{v}\n" for (h, b), v in self.versions.items())
        if command[0] == "python":  # an HTTP check inside the container
            return 0, ""
        self.events.append(f"exec {service}@{release}: {' '.join(command)}")
        return (self.exec_codes.pop(0) if self.exec_codes else 0), "output"

    def service_containers(self) -> list[FakeContainer]:
        return list(self.all)

    def health(self, host: str, service: str) -> str:
        return "running"


class FakeHaproxy:
    """HAProxy's runtime API: a server is UP when ready and its release's container runs."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud
        self.commands: list[str] = []
        self.admin: dict[str, str] = {}

    def command(self, command: str, timeout: float = 5.0) -> str:
        self.commands.append(command)
        _, _, server, _, state = command.split()
        self.admin[server] = state
        self.cloud.events.append(f"lb {server} {state}")
        return ""

    def stats(self) -> list[dict[str, str]]:
        rows = []
        for frontend in (*profile.FRONTENDS, *profile.INTERNAL_FRONTENDS):
            for release in profile.RELEASES:
                name = profile.release_alias(frontend.service, release)
                running = any(c.status == "running" and c.labels["rollgate.release"] == release
                              for c in self.cloud.containers("controller", frontend.service))
                admin = self.admin.get(f"be_{frontend.name}/{name}", "ready")
                status = "MAINT" if admin == "maint" else "DRAIN" if admin == "drain" else (
                    "UP" if running else "MAINT (resolution)")
                rows.append({"pxname": f"be_{frontend.name}", "svname": name, "status": status, "scur": "0"})
        return rows


@dataclass
class FakeService:
    host: str
    binary: str
    state: str = "up"
    status: str = "enabled"


class FakeCompute:
    def __init__(self, hosts: list[str]) -> None:
        self.rows = [FakeService("controller", b) for b in ("nova-conductor", "nova-scheduler")]
        self.rows += [FakeService(h, "nova-compute") for h in hosts]
        self.servers_list: list[Any] = []

    def services(self) -> list[FakeService]:
        return self.rows

    def disable_service(self, service: FakeService, disabled_reason: str | None = None) -> None:
        service.status = "disabled"

    def enable_service(self, service: FakeService) -> None:
        service.status = "enabled"

    def servers(self, details: bool = True, all_projects: bool = False) -> list[Any]:
        return self.servers_list


def make_ops(state: RunState) -> tuple[OpenStackOps, FakeCloud, FakeHaproxy, FakeCompute]:
    cloud = FakeCloud(state)
    lb = FakeHaproxy(cloud)
    compute = FakeCompute([h for h in state.hosts if h.startswith("compute-")])
    conn = type("Conn", (), {"compute": compute})()
    ops = OpenStackOps(state, target_release="2026.2", cloud=cloud, lb=lb, connect=lambda: conn)
    return ops, cloud, lb, compute


def test_openstack_ops_satisfies_the_protocol() -> None:
    ops, *_ = make_ops(run_state())
    assert isinstance(ops, CloudOps)


def test_replace_api_starts_the_new_one_up_in_haproxy_then_drains_and_stops_the_old() -> None:
    state = run_state()
    ops, cloud, _lb, _ = make_ops(state)
    ops.replace_service("controller", "nova-api", "2026.2", 15.0)
    assert cloud.events == ["start nova-api@2026.2", "lb be_compute/nova-api-2026-2 ready",
                            "lb be_compute/nova-api-2026-1 drain", "lb be_compute/nova-api-2026-1 maint",
                            "retire nova-api@2026.1 -t 15"]
    assert [c.labels["rollgate.release"] for c in cloud.containers("controller", "nova-api")] == ["2026.2"]
    assert RunState.load("os-unit").hosts["controller"].services["nova-api"].release == "2026.2"
    cloud.events.clear()
    ops.replace_service("controller", "nova-api", "2026.2", 15.0)  # idempotent: nothing to start or stop
    assert cloud.events == ["lb be_compute/nova-api-2026-2 ready"]


def test_replace_nova_rpc_service_waits_for_its_service_version_and_keeps_the_compute_host() -> None:
    state = run_state()
    ops, cloud, _, _ = make_ops(state)
    ops.replace_service("compute-2", "nova-compute", "2026.2", 15.0)
    assert cloud.events == ["start nova-compute@2026.2", "retire nova-compute@2026.1 -t 15"]
    assert cloud.versions[("compute-2", "nova-compute")] == 74
    spec = profile.container_spec("compute-2", "nova-compute", "2026.2")
    assert (spec.alias, spec.environment["NOVA_HOST"], spec.volumes) == (
        "compute-2", "compute-2", {"state": "/var/lib/nova"})
    assert profile.container_spec("controller", "keystone", "2026.2").volumes == {"keys": "/var/lib/keystone"}


def test_a_new_container_that_exits_fails_the_swap_at_once_with_its_log_and_keeps_the_old() -> None:
    state = run_state()
    ops, cloud, _, _ = make_ops(state)
    cloud.exit_on_start = True
    with pytest.raises(OperationFailed, match="exited") as caught:
        ops.replace_service("controller", "nova-conductor", "2026.2", 15.0)
    assert "ServiceTooOld" in caught.value.evidence
    assert not [e for e in cloud.events if e.startswith("retire")]


def test_db_expand_and_contract_run_the_real_tools_in_one_offs_of_the_new_image() -> None:
    ops, cloud, _, _ = make_ops(run_state())
    ops.db_expand("2026.2")
    assert sorted((name, image, kind) for name, image, _, kind in cloud.oneoffs) == [
        ("keystone-expand", "rollgate/openstack:2026.2", "upgrade"),
        ("nova-sync", "rollgate/openstack:2026.2", "upgrade"),
        ("placement-sync", "rollgate/openstack:2026.2", "upgrade")]
    shells = {name: shell for name, _, shell, _ in cloud.oneoffs}
    assert shells["keystone-expand"] == ("keystone-manage db_sync --expand && "
                                         "keystone-manage db_sync --migrate")
    assert shells["nova-sync"] == "nova-manage api_db sync && nova-manage db sync"
    cloud.oneoffs.clear()
    cloud.oneoff_codes["keystone-contract"] = (1, "boom")
    with pytest.raises(OperationFailed, match="keystone-contract exited 1"):
        ops.db_contract("2026.2")
    assert cloud.oneoffs[0][2] == "keystone-manage db_sync --contract"


def test_online_data_migrations_run_until_nova_manage_exits_0() -> None:
    ops, cloud, _, _ = make_ops(run_state())
    cloud.exec_codes = [1, 0, 2]
    assert ops.online_data_migrations(50) is True
    assert ops.online_data_migrations(50) is False
    with pytest.raises(OperationFailed, match="exited 2"):
        ops.online_data_migrations(50)
    assert cloud.events[0] == ("exec nova-conductor@2026.2: "
                               "nova-manage db online_data_migrations --max-count 50")


def test_pin_checks_the_template_and_unpin_sighups_the_senders() -> None:
    ops, cloud, _, _ = make_ops(run_state())
    ops.pin_rpc_versions("auto")
    with pytest.raises(OperationFailed, match="compute = auto only"):
        ops.pin_rpc_versions("2026.1")
    cloud.containers("compute-1", "nova-compute")[0].conf = "[DEFAULT]\n"
    with pytest.raises(OperationFailed, match="compute-1/nova-compute"):
        ops.pin_rpc_versions("auto")
    ops.api_checks = {}  # no lb to ask in a unit test
    ops.unpin_rpc_versions()  # every service at 72: the minimum is unchanged, nothing to reload
    assert not [c for c in cloud.all if c.signals]
    cloud.versions = dict.fromkeys(cloud.versions, 74)
    ops.unpin_rpc_versions()
    hupped = {c.labels["rollgate.service"] for c in cloud.all if c.signals == ["SIGHUP"]}
    assert hupped == {"nova-api", "nova-conductor", "nova-scheduler"}


def test_disable_and_enable_compute_through_the_sdk() -> None:
    ops, _, _, compute = make_ops(run_state())
    ops.disable_compute("compute-1", "rollgate upgrade")
    assert [s.status for s in compute.rows if s.host == "compute-1"] == ["disabled"]
    ops.enable_compute("compute-1")
    assert [s.status for s in compute.rows if s.host == "compute-1"] == ["enabled"]


def test_health_gate_names_an_old_container_still_running_and_a_service_down() -> None:
    state = run_state()
    ops, cloud, _, compute = make_ops(state)
    ops.api_checks = {}
    expected = {"controller": {"keystone": "2026.2"}}
    cloud.start(profile.container_spec("controller", "keystone", "2026.2"))
    compute.rows[0].state = "down"
    report = ops.health_gate(expected, 0)
    assert not report.ok
    assert any("also running rg-os-unit-controller-keystone-2026.1" in p for p in report.problems)
    assert any("nova-conductor@controller" in p for p in report.problems)
    cloud.retire(cloud.containers("controller", "keystone")[0], 1)
    compute.rows[0].state = "up"
    assert ops.health_gate(expected, 0) == HealthReport(True)


NOVA_STATUS = """+-------------------------------------------+
| Upgrade Check Results                     |
+-------------------------------------------+
| Check: Cells v2                           |
| Result: Success                           |
| Details: None                             |
+-------------------------------------------+
| Check: hw_machine_type unset              |
| Result: Warning                           |
| Details: Instances found without hw_machine_type set. |
+-------------------------------------------+
"""


def test_nova_status_exit_1_with_only_the_machine_type_warning_is_a_pass_that_says_so() -> None:
    report = check_report(1, NOVA_STATUS)
    assert report.level == "ok"
    assert report.ok
    assert "hw_machine_type unset" in report.detail
    assert "counts as a pass" in report.detail
    other = NOVA_STATUS.replace("hw_machine_type unset", "Placement API        ")
    assert check_report(1, other).level == "warning"
    assert check_report(2, NOVA_STATUS.replace("Warning", "Failure")).level == "failure"
    assert not check_report(2, NOVA_STATUS).ok
    assert check_report(0, NOVA_STATUS).level == "ok"
    assert not check_report(137, "killed").ok


def test_nova_conf_level_reads_the_rendered_template() -> None:
    template = Path(__file__).resolve().parents[2] / "images" / "openstack" / "etc" / "nova.conf.tmpl"
    assert nova_conf_level(template.read_text()) == "auto"
    assert nova_conf_level("[DEFAULT]\nhost = x\n") is None


def test_without_the_api_drain_the_old_api_is_stopped_while_haproxy_still_sends_to_it() -> None:
    state = run_state()
    ops, cloud, _lb, _ = make_ops(state)
    ops.api_drain = False  # upgrade.policy.api_drain: false
    ops.replace_service("controller", "nova-api", "2026.2", 15.0)
    assert cloud.events == ["start nova-api@2026.2", "lb be_compute/nova-api-2026-2 ready",
                            "retire nova-api@2026.1 -t 15"]


@dataclass
class FakeServer:
    id: str
    status: str
    compute_host: str | None
    task_state: str | None = None


def test_listing_a_hosts_instances_waits_for_servers_still_being_scheduled(monkeypatch: pytest.MonkeyPatch
                                                                           ) -> None:
    """A server the scheduler sent to compute-2 before it was disabled has no host yet:
    listed too early, its build would die with the swap (seen under create/delete traffic)."""
    from harness.clouds.openstack import ops as openstack_ops

    monkeypatch.setattr(openstack_ops, "POLL", 0.01)
    ops, _cloud, _lb, compute = make_ops(run_state())
    landing = FakeServer("landing", "BUILD", None)
    compute.servers_list = [FakeServer("old", "ACTIVE", "compute-2"), landing,
                            FakeServer("elsewhere", "ACTIVE", "compute-1")]
    calls = {"n": 0}
    listing = compute.servers

    def servers(details: bool = True, all_projects: bool = False) -> list[Any]:
        calls["n"] += 1
        if calls["n"] == 3:  # the scheduler's choice reaches the server on the third look
            landing.compute_host = "compute-2"
        return listing(details, all_projects)

    compute.servers = servers  # type: ignore[method-assign]
    assert ops.list_instances("compute-2") == ["landing", "old"]
    assert calls["n"] >= 4

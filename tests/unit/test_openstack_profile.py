"""The openstack profile without Docker: its topology, containers, setup, catalog and load
balancer config; bad input refused with the flag and the fix before anything starts; a
missing image an ERROR naming it and the build command."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.clouds import minicloud
from harness.clouds import openstack as profile
from harness.clouds.openstack.containers import OpenStackContainers
from harness.clouds.openstack.deploy import deploy_openstack
from harness.clouds.openstack.images import OPENSTACK_RELEASES, openstack_image_specs
from harness.errors import DeployError, UsageError
from harness.images import HAPROXY_TAG
from harness.runstate import RunState
from tests.unit.test_docker_image_check import _Client, _Images


@pytest.fixture(autouse=True)
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path))
    return tmp_path


def test_releases_and_images_agree_with_the_image_builder() -> None:
    assert profile.RELEASES == OPENSTACK_RELEASES
    built = {spec.tag for spec in openstack_image_specs()}
    for release in profile.RELEASES:
        assert set(profile.needed_images(release)) <= built
    assert HAPROXY_TAG in built
    assert profile.ADMIN_PASSWORD == minicloud.ADMIN_PASSWORD  # clouds.yaml is minicloud's


def test_topology_names_every_service_and_one_compute_host_each() -> None:
    hosts = {h.name: h for h in profile.topology("2026.1", 3)}
    assert list(hosts) == ["db", "mq", "lb", "controller", "compute-1", "compute-2", "compute-3"]
    assert set(hosts["controller"].services) == {"keystone", "placement", "glance", "neutron", "nova-api",
                                                 "nova-conductor", "nova-scheduler"}
    assert hosts["controller"].services["nova-api"] == "2026.1"
    assert hosts["db"].services == {"mariadb": profile.SYSTEM}
    for host in profile.topology("2026.2", 2):
        for service, release in host.services.items():
            spec = profile.container_spec(host.name, service, release)
            assert spec.release == release
            if release != profile.SYSTEM:
                assert spec.image == f"rollgate/openstack:{release}"


def test_each_compute_has_its_host_name_its_state_volume_and_no_database() -> None:
    spec = profile.container_spec("compute-2", "nova-compute", "2026.1")
    assert spec.alias == "compute-2"
    assert spec.environment["NOVA_HOST"] == "compute-2"
    assert spec.environment["NOVA_ROLE"] == "compute"  # the entrypoint drops [database]
    assert spec.volumes == {"state": "/var/lib/nova"}
    assert spec.image == "rollgate/openstack:2026.1"
    assert spec.command == ("nova-compute",)


def test_controller_services_share_one_nova_host_and_keystone_keeps_its_keys() -> None:
    for service in profile.NOVA_SERVICES:
        spec = profile.container_spec("controller", service, "2026.2")
        assert spec.environment["NOVA_HOST"] == "controller"
    keystone = profile.container_spec("controller", "keystone", "2026.1")
    assert keystone.volumes == {"keys": "/var/lib/keystone"}
    assert keystone.command == ("rollgate-wsgi", "keystone.wsgi.api", "5000", profile.API_WORKERS)
    assert profile.container_spec("db", "mariadb", profile.SYSTEM).volumes == {"data": "/var/lib/mysql"}
    with pytest.raises(ValueError, match="no service 'swift'"):
        profile.container_spec("controller", "swift", "2026.1")


def test_only_the_load_balancer_publishes_ports() -> None:
    published = {s for h in profile.topology("2026.1", 3) for s in h.services
                 if profile.container_spec(h.name, s, h.services[s]).ports}
    assert published == {"haproxy"}
    assert profile.container_spec("lb", "haproxy", profile.SYSTEM).ports == (5000, 8778, 8774, 9292)


def test_setup_bootstraps_keystone_with_the_load_balancers_public_url() -> None:
    commands = profile.setup_commands("http://127.0.0.1:40001/v3")
    assert list(commands) == ["keystone-setup", "placement-setup", "nova-setup"]
    assert "--bootstrap-public-url http://127.0.0.1:40001/v3 " in commands["keystone-setup"]
    assert "--bootstrap-internal-url http://lb:5000/v3" in commands["keystone-setup"]
    nova = commands["nova-setup"]
    assert nova.index("api_db sync") < nova.index("map_cell0") < nova.index("create_cell") < nova.index(
        "nova-manage db sync")


def test_catalog_public_endpoints_are_the_load_balancers_loopback_ports() -> None:
    ports = {"identity": 40001, "placement": 40002, "compute": 40003, "image": 40004}
    assert profile.public_endpoints(ports) == {
        "identity": "http://127.0.0.1:40001/v3", "placement": "http://127.0.0.1:40002",
        "compute": "http://127.0.0.1:40003/v2.1", "image": "http://127.0.0.1:40004"}
    rows = {kind: (public, internal) for _, kind, public, internal in profile.catalog(ports)}
    # internal endpoints go through the lb too: its address survives a service's container swap
    assert rows["compute"] == ("http://127.0.0.1:40003/v2.1", "http://lb:8774/v2.1")
    assert rows["placement"][1] == "http://lb:8778"
    assert rows["network"] == ("http://lb:9696", "http://lb:9696")  # internal only


def test_haproxy_config_fronts_each_api_with_a_server_per_release() -> None:
    text = profile.haproxy_config("/run/rollgate/admin.sock")
    assert "stats socket /run/rollgate/admin.sock mode 600 level admin" in text
    assert "nameserver dns 127.0.0.11:53" in text
    assert "init-addr none" in text  # names resolve at run time: a release not deployed has none
    for frontend in (*profile.FRONTENDS, *profile.INTERNAL_FRONTENDS):
        assert f"frontend fe_{frontend.name}\n    bind 0.0.0.0:{frontend.port}\n" in text
        assert f"    option httpchk GET {frontend.check}\n" in text
        for release in profile.RELEASES:
            name = profile.release_alias(frontend.service, release)
            assert f"    server {name} {name}:{frontend.port} check\n" in text
    assert profile.release_alias("nova-api", "2026.2") == "nova-api-2026-2"
    assert "bind 127.0.0.1" not in text  # the lb listens in its container; Docker publishes on loopback


@pytest.mark.parametrize(("release", "computes", "problem"), [
    ("1.0", 3, "--release: unknown openstack release '1.0'; valid: 2026.1, 2026.2"),
    ("2026.1", 0, "--computes: 0 compute hosts: give 1 to 10"),
    ("2026.1", 11, "--computes: 11 compute hosts: give 1 to 10"),
])
def test_deploy_refuses_bad_input_before_touching_docker(release: str, computes: int, problem: str) -> None:
    state = RunState(run_id="os-unit", backend="docker", cloud="openstack")
    with pytest.raises(UsageError) as caught:
        deploy_openstack(state, release, computes, client=object())
    assert str(caught.value) == problem
    assert not state.directory.exists()


class _Listing:
    def __init__(self) -> None:
        self.filters: list[Any] = []

    def list(self, **kwargs: Any) -> list[Any]:
        self.filters.append(kwargs.get("filters"))
        return []

    def get(self, name: str) -> Any:
        raise docker.errors.NotFound(name)


class _BrokenNetworks(_Listing):
    def create(self, *args: Any, **kwargs: Any) -> Any:
        raise docker.errors.APIError("the engine is going away")


class _FailingEngine:
    """Images all there; creating the run network fails; listings are empty (what reap sees)."""

    def __init__(self) -> None:
        self.images = _Images(set(profile.needed_images("2026.1")))
        self.containers = _Listing()
        self.volumes = _Listing()
        self.networks = _BrokenNetworks()


def test_a_missing_image_is_an_error_naming_it_and_the_build_command() -> None:
    present = set(profile.needed_images("2026.1")) - {"rollgate/openstack:2026.1"}
    state = RunState(run_id="os-unit", backend="docker", cloud="openstack")
    with pytest.raises(DeployError) as caught:
        deploy_openstack(state, "2026.1", 3, client=_Client(present))
    message = str(caught.value)
    assert "image rollgate/openstack:2026.1 is missing" in message
    assert "`rollgate images build --cloud openstack --release 2026.1`" in message
    assert caught.value.exit_code == 2
    assert not state.directory.exists()  # nothing recorded, nothing started


def test_a_failed_deploy_reaps_the_run_by_label_and_records_it_failed(results: Path) -> None:
    engine = _FailingEngine()
    state = RunState(run_id="os-unit", backend="docker", cloud="openstack")
    with pytest.raises(DeployError, match="creating the run network rg-os-unit"):
        deploy_openstack(state, "2026.1", 3, client=engine)
    run_filter = {"label": ["rollgate.run=os-unit", "rollgate.managed=true",
                            f"rollgate.results-root={results.resolve()}"]}  # this root's objects only
    assert run_filter in engine.containers.filters  # reap listed the run's containers ...
    assert run_filter in engine.volumes.filters  # ... volumes ...
    assert run_filter in engine.networks.filters  # ... and networks, by label
    saved = RunState.load("os-unit")
    assert (saved.status, saved.cloud, saved.backend) == ("failed", "openstack", "docker")
    assert saved.extra["openstack"]["lb_ports"].keys() == {"identity", "placement", "compute", "image"}
    assert sorted(saved.hosts) == ["compute-1", "compute-2", "compute-3", "controller", "db", "lb", "mq"]


def test_all_images_present_passes_the_check() -> None:
    state = RunState(run_id="os-unit", backend="docker", cloud="openstack")
    OpenStackContainers(state, _Client(set(profile.needed_images("2026.2")))).ensure_images(
        profile.needed_images("2026.2"), profile.build_command("2026.2"))


@pytest.mark.parametrize(("args", "message"), [
    (["up", "--cloud", "openstack", "--backend", "process"],
     "--backend process: --cloud openstack runs only in Docker containers; use --backend docker"),
    (["up", "--cloud", "openstack", "--release", "1.1"],
     "--release: unknown openstack release '1.1'; valid: 2026.1, 2026.2"),
    (["up", "--cloud", "openstack", "--computes", "0"], "--computes: 0 compute hosts: give 1 to 10"),
    (["up", "--cloud", "openstack", "scenarios/rolling-upgrade.yaml"],
     "SCENARIO: --cloud openstack deploys the all-in-one topology only for now"),
    (["up", "--cloud", "openstack", "--run-id", "Bad_Id"], "run id 'Bad_Id' is invalid"),
    (["up", "--release", "2026.2"], "--release 2026.2: an openstack release; add --cloud openstack"),
    (["images", "build", "--cloud", "openstack", "--release", "1.0"],
     "--release 1.0: a release of minicloud, not of openstack; give --cloud minicloud"),
    (["images", "build", "--release", "2026.1"],
     "--release 2026.1: a release of openstack, not of minicloud; give --cloud openstack"),
])
def test_cli_bad_input_is_a_usage_error_naming_the_flag(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.parametrize("args", [
    ["reboot", "os-up"], ["fault", "os-up", "compute-1", "nova-compute", "--kill"]])
def test_minicloud_only_commands_refuse_an_openstack_run(args: list[str]) -> None:
    RunState(run_id="os-up", backend="docker", cloud="openstack", status="up").save()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "run os-up is an openstack cloud" in result.output


def test_without_the_shield_haproxy_replays_no_request() -> None:
    shielded = profile.haproxy_config("/run/rollgate/admin.sock")
    bare = profile.haproxy_config("/run/rollgate/admin.sock", shield=False)
    assert "retry-on conn-failure empty-response" in shielded
    assert "option redispatch" in shielded
    assert "retry-on" not in bare
    assert "redispatch" not in bare
    assert "    retries 0" in bare.splitlines()
    assert "timeout check 5s" in bare  # the health checks are the same either way

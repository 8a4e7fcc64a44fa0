"""On the docker backend, a scenario whose release has no image is refused before anything
is deployed, naming the file, the field and the command that builds the image."""
from __future__ import annotations

from typing import Any

import docker
import pytest

from harness.backends.docker import DockerBackend
from harness.backends.docker_resources import check_scenario_images, image_for
from harness.errors import DeployError, ValidationError
from harness.runstate import RunState
from harness.scenario.load import parse_scenario


class _Images:
    def __init__(self, present: set[str]) -> None:
        self.present = present
        self.asked: list[str] = []

    def get(self, tag: str) -> Any:
        self.asked.append(tag)
        if tag not in self.present:
            raise docker.errors.ImageNotFound(tag)
        return object()


class _Client:
    def __init__(self, present: set[str]) -> None:
        self.images = _Images(present)


ALL = {"rollgate/minicloud:1.0", "rollgate/minicloud:1.1", "rollgate/postgres:15", "rollgate/haproxy:2.6"}


def _scenario(compute_release: str = "1.0", target: str = "1.1") -> Any:
    raw = {"name": "imgs", "upgrade": {"from": "1.0", "to": target},
           "topology": {"release": "1.0", "hosts": [
               {"name": "controller-1", "roles": ["controller"]},
               {"name": "compute-1", "roles": ["compute"], "release": compute_release},
               {"name": "compute-2", "roles": ["compute"]}, {"name": "compute-3", "roles": ["compute"]},
               {"name": "db-1", "roles": ["db"]}, {"name": "lb-1", "roles": ["lb"]}]}}
    return parse_scenario(raw, "scenarios/imgs.yaml")


def test_every_image_present_passes() -> None:
    client = _Client(ALL)
    check_scenario_images(_scenario(), client)
    assert set(client.images.asked) == ALL


def test_a_host_release_without_image_names_file_field_and_build_command() -> None:
    with pytest.raises(ValidationError) as caught:
        check_scenario_images(_scenario(compute_release="1.1"), _Client(ALL - {"rollgate/minicloud:1.1"}))
    error = caught.value
    assert error.path == "scenarios/imgs.yaml"
    assert error.field == "topology.hosts[1].release"
    assert "rollgate/minicloud:1.1" in error.problem
    assert "rollgate images build --release 1.1`" in error.problem


def test_the_upgrade_target_needs_its_image_too() -> None:
    with pytest.raises(ValidationError) as caught:
        check_scenario_images(_scenario(), _Client(ALL - {"rollgate/minicloud:1.1"}))
    assert caught.value.field == "upgrade.to"


def test_a_missing_system_image_names_the_role() -> None:
    with pytest.raises(ValidationError) as caught:
        check_scenario_images(_scenario(), _Client(ALL - {"rollgate/postgres:15"}))
    assert caught.value.field == "topology.hosts[4].roles"
    assert "`rollgate images build`" in caught.value.problem


def test_a_variant_runs_in_its_release_image() -> None:
    assert image_for("compute-agent", "1.1+unpinned") == "rollgate/minicloud:1.1"
    assert image_for("postgres", "system") == "rollgate/postgres:15"


def test_the_deploy_refuses_a_missing_image_naming_it_and_the_build_command(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path))
    client = _Client(ALL | {"rollgate/base:bookworm"})
    backend = DockerBackend(RunState(run_id="imgs", backend="docker"), client=client)
    specs = [h.to_spec() for h in _scenario().topology.hosts]
    backend.ensure_images(specs)
    specs[1].services = dict.fromkeys(specs[1].services, "1.1.1")
    with pytest.raises(DeployError) as caught:
        backend.ensure_images(specs)
    message = str(caught.value)
    assert "image rollgate/minicloud:1.1.1 is missing" in message
    assert "compute-1/" in message
    assert "`rollgate images build --release 1.1.1`" in message


def test_build_hint_names_the_command_that_builds_the_image() -> None:
    from harness.backends.docker_resources import build_hint

    assert build_hint("rollgate/minicloud:1.1") == "rollgate images build --release 1.1"
    assert build_hint("rollgate/openstack:2026.2") == (
        "rollgate images build --cloud openstack --release 2026.2")
    assert build_hint("rollgate/mariadb:10.11") == "rollgate images build --cloud openstack"
    assert build_hint("rollgate/postgres:15") == "rollgate images build"

"""The image pipeline on a real Docker engine: cold or cached builds, no work the second time,
release images that know their release, and PostgreSQL / HAProxy images that start.

The first build may be cold (about 3 minutes on a 2-core machine) unless CI
built the images already; everything after it reuses them.
"""
from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.errors import RollgateError
from harness.images import (
    BASE_TAG,
    LABEL_CACHE_KEY,
    LABEL_MANAGED,
    LABEL_RELEASE,
    MINICLOUD_RELEASES,
    ImageBuilder,
    ImageSpec,
    docker_client,
    image_specs,
    minicloud_tag,
)

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
ALL_TAGS = [BASE_TAG, *(spec.tag for spec in image_specs())]
TEST_LABEL = "rollgate.test"
SESSION = uuid.uuid4().hex[:8]


def rollgate(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    engine = docker_client()
    yield engine
    for container in engine.containers.list(all=True, filters={"label": f"{TEST_LABEL}={SESSION}"}):
        container.remove(force=True, v=True)
    for image in engine.images.list(filters={"label": f"{TEST_LABEL}={SESSION}"}):
        engine.images.remove(image.id, force=True)  # tagged or not: a rebuilt probe leaves its old one
    engine.close()


@pytest.fixture(scope="module")
def first_build(client: Any) -> subprocess.CompletedProcess[str]:
    """``rollgate images build`` once: cold on a fresh machine, cached where CI built already."""
    result = rollgate("images", "build", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def image_ids(client: Any) -> dict[str, str]:
    return {tag: client.images.get(tag).id for tag in ALL_TAGS}


@pytest.mark.timeout(960)
def test_second_build_does_no_work(client: Any, first_build: subprocess.CompletedProcess[str]) -> None:
    before = image_ids(client)
    started = time.monotonic()
    second = rollgate("images", "build", timeout=300)
    seconds = time.monotonic() - started
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"all {len(ALL_TAGS)} up to date, nothing to build" in second.stdout
    for tag in ALL_TAGS:
        assert f"{tag}: up to date" in second.stdout, tag
    assert "building" not in second.stdout
    assert "Step " not in second.stdout
    assert image_ids(client) == before
    assert seconds < 60, f"a build with nothing to do took {seconds:.1f}s"


def test_every_image_is_labelled_managed_with_its_cache_key(
        client: Any, first_build: subprocess.CompletedProcess[str]) -> None:
    for tag in ALL_TAGS:
        labels = client.images.get(tag).labels
        assert labels[LABEL_MANAGED] == "true", tag
        assert len(labels[LABEL_CACHE_KEY]) == 64, tag
    listing = rollgate("images", "list", timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert "missing" not in listing.stdout
    assert all(tag in listing.stdout for tag in ALL_TAGS)


@pytest.mark.parametrize("release", MINICLOUD_RELEASES)
def test_release_image_reports_its_release(client: Any, first_build: subprocess.CompletedProcess[str],
                                           release: str) -> None:
    tag = minicloud_tag(release)
    assert client.images.get(tag).labels[LABEL_RELEASE] == release
    probe = ("import os, minicloud.releases as r, sqlalchemy, alembic, oslo_versionedobjects, psycopg2;"
             "rel = r.get_release(os.environ['MINICLOUD_RELEASE']);"
             "print(rel.label, rel.service_version)")
    output = client.containers.run(tag, ["python", "-c", probe], remove=True,
                                   labels={TEST_LABEL: SESSION}).decode()
    assert output.split()[0] == release
    assert int(output.split()[1]) > 0
    usage = client.containers.run(tag, ["python", "-m", "minicloud", "--help"], remove=True,
                                  labels={TEST_LABEL: SESSION}).decode()
    assert "compute-api" in usage


def wait_until(condition: Any, timeout: float, what: str, evidence: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} not within {timeout}s; logs:\n{evidence()}")


def test_postgres_image_serves_its_database_on_loopback(
        client: Any, first_build: subprocess.CompletedProcess[str]) -> None:
    container = client.containers.run("rollgate/postgres:15", detach=True, labels={TEST_LABEL: SESSION},
                                      ports={"5432/tcp": ("127.0.0.1", None)})

    def healthy() -> bool:
        container.reload()
        return container.attrs["State"].get("Health", {}).get("Status") == "healthy"

    wait_until(healthy, 60, "postgres healthy", lambda: container.logs().decode()[-2000:])
    binding = container.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]
    assert binding["HostIp"] == "127.0.0.1"
    code, out = container.exec_run(["psql", "-h", "127.0.0.1", "-U", "minicloud", "-d", "minicloud", "-tAc",
                                    "select current_database()"], environment={"PGPASSWORD": "minicloud"})
    assert (code, out.decode().strip()) == (0, "minicloud")


def test_haproxy_image_answers_health_and_runtime_api(
        client: Any, first_build: subprocess.CompletedProcess[str]) -> None:
    container = client.containers.run("rollgate/haproxy:2.6", detach=True, labels={TEST_LABEL: SESSION},
                                      ports={"8404/tcp": ("127.0.0.1", None)})
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"]["8404/tcp"][0]
    assert binding["HostIp"] == "127.0.0.1"
    url = f"http://127.0.0.1:{binding['HostPort']}/healthz"

    def answers() -> bool:
        try:
            return requests.get(url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(answers, 30, "haproxy /healthz", lambda: container.logs().decode()[-2000:])
    code, out = container.exec_run(["sh", "-c", "echo 'show info' | socat - /run/haproxy/admin.sock"])
    assert code == 0
    assert "Name: HAProxy" in out.decode()


def test_changed_context_rebuilds_and_unchanged_does_not(
        client: Any, first_build: subprocess.CompletedProcess[str], tmp_path: Path) -> None:
    context = tmp_path / "probe"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nLABEL {TEST_LABEL}={SESSION}\nCOPY hello.txt /hello.txt\n")
    (context / "hello.txt").write_text("one\n")
    spec = ImageSpec(f"rollgate/test-probe:{SESSION}", "probe", context)
    base_id = client.images.get(BASE_TAG).id
    lines: list[str] = []
    builder = ImageBuilder(client, cache_dir=tmp_path / "cache", progress=lines.append)
    first = builder.build_image(spec, base_id)
    again = builder.build_image(spec, base_id)
    assert (first.cached, again.cached) == (False, True)
    assert again.image_id == first.image_id
    (context / "hello.txt").write_text("two\n")
    changed = builder.build_image(spec, base_id)
    assert not changed.cached
    assert changed.image_id != first.image_id
    assert client.containers.run(spec.tag, ["cat", "/hello.txt"], remove=True,
                                 labels={TEST_LABEL: SESSION}) == b"two\n"


def test_failed_build_raises_with_the_log_tail(client: Any, first_build: subprocess.CompletedProcess[str],
                                               tmp_path: Path) -> None:
    context = tmp_path / "broken"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about-to-fail-on-purpose && false\n")
    spec = ImageSpec(f"rollgate/test-broken:{SESSION}", "probe", context)
    builder = ImageBuilder(client, cache_dir=tmp_path / "cache", progress=lambda line: None)
    with pytest.raises(RollgateError) as caught:
        builder.build_image(spec, client.images.get(BASE_TAG).id)
    message = str(caught.value)
    assert message.startswith(f"building {spec.tag} failed:")
    assert "about-to-fail-on-purpose" in message
    assert "non-zero code" in message

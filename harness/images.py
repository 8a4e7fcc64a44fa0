"""Build rollgate's Docker images offline, each only when its inputs changed.

No registry is reachable, so nothing is pulled: the base image is a Debian
root filesystem made by ``images/base/build-rootfs.sh`` (debootstrap) and
imported; every other image is built FROM it, Python wheels coming from a
wheelhouse downloaded on the host for the image's Python (3.11.2).

Each image carries the label ``rollgate.cache-key``: a hash of exactly what its
build consumes (every file of the build context, the Dockerfile among them, the
wheels, the build arguments and the parent image's id). A build whose key
matches the image already tagged does no work and says so.

The Docker SDK is used rather than the CLI: it streams the build as structured
events (steps, errors, the image id) instead of text to scrape, needs no
particular CLI version or buildx plugin (this machine's CLI is newer than the
Debian engine), and is what the docker backend uses too.
"""
from __future__ import annotations

import collections
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.clouds import minicloud
from harness.errors import RollgateError
from harness.image_inputs import (
    IMAGES_DIR,
    LOG_TAIL_LINES,
    Progress,
    Snapshot,
    compute_cache_key,
    context_files,
    context_tar,
    ensure_wheelhouse,
    minicloud_requirements,
    read_context,
    run_logged,
    unmount_below,
)

log = logging.getLogger(__name__)

MINICLOUD_RELEASES = minicloud.RELEASES  # kept equal to minicloud's RELEASE_NAMES by a test
BASE_TAG = "rollgate/base:bookworm"
POSTGRES_TAG = "rollgate/postgres:15"
HAPROXY_TAG = "rollgate/haproxy:2.6"
LABEL_MANAGED = "rollgate.managed"
LABEL_CACHE_KEY = "rollgate.cache-key"
LABEL_KIND = "rollgate.image"
LABEL_RELEASE = "rollgate.release"

BASE_BUILD_TIMEOUT = 900.0
IMAGE_BUILD_TIMEOUT = 900.0


@dataclass(frozen=True)
class ImageSpec:
    """One image rollgate builds from a directory under ``images/``."""

    tag: str
    kind: str  # "minicloud", "postgres" or "haproxy"
    directory: Path
    release: str | None = None

    @property
    def build_args(self) -> dict[str, str]:
        args = {"BASE_IMAGE": BASE_TAG}
        if self.release is not None:
            args["MINICLOUD_RELEASE"] = self.release
        return args

    @property
    def labels(self) -> dict[str, str]:
        labels = {LABEL_MANAGED: "true", LABEL_KIND: self.kind}
        if self.release is not None:
            labels[LABEL_RELEASE] = self.release
        return labels


@dataclass(frozen=True)
class BuildResult:
    """What building one image did: nothing (cached) or a build, and its cost."""

    tag: str
    image_id: str
    cache_key: str
    cached: bool
    seconds: float
    size_bytes: int


def minicloud_tag(release: str) -> str:
    """The image that runs a release; a variant (``1.1+VARIANT``) runs in its release's image."""
    return f"rollgate/minicloud:{release.partition('+')[0]}"


def image_specs(images_dir: Path = IMAGES_DIR, releases: Sequence[str] | None = None) -> list[ImageSpec]:
    """Every image a deployment needs (or only the named minicloud releases), base excluded."""
    chosen = tuple(releases) if releases else MINICLOUD_RELEASES
    unknown = [r for r in chosen if r not in MINICLOUD_RELEASES]
    if unknown:
        raise RollgateError(f"unknown minicloud release {', '.join(unknown)}; "
                            f"valid: {', '.join(MINICLOUD_RELEASES)}")
    specs = [ImageSpec(POSTGRES_TAG, "postgres", images_dir / "postgres"),
             ImageSpec(HAPROXY_TAG, "haproxy", images_dir / "haproxy")]
    specs += [ImageSpec(minicloud_tag(r), "minicloud", images_dir / "minicloud", r) for r in chosen]
    return specs


# --- the builder --------------------------------------------------------------------------------

def default_cache_dir() -> Path:
    return Path(os.environ.get("ROLLGATE_CACHE_DIR", Path.home() / ".cache" / "rollgate"))


def docker_client(timeout: float = IMAGE_BUILD_TIMEOUT) -> Any:
    """A Docker SDK client that answers, or a RollgateError saying how to get one."""
    import docker  # the docker extra; only image and docker-backend commands need it

    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except docker.errors.DockerException as exc:
        raise RollgateError(f"the Docker engine does not answer ({exc}); "
                            "run .ci/docker-setup.sh or start dockerd") from exc
    return client


_DEBOOTSTRAP_MILESTONES = ("I: Retrieving Release", "I: Resolving dependencies of required",
                           "I: Unpacking required", "I: Configuring required", "I: Unpacking the base",
                           "I: Configuring the base", "I: Base system installed")


class ImageBuilder:
    """Builds the base image and the images FROM it, skipping every one whose key is unchanged."""

    def __init__(self, client: Any, *, images_dir: Path = IMAGES_DIR, cache_dir: Path | None = None,
                 progress: Progress | None = None) -> None:
        self.client = client
        self.images_dir = images_dir
        self.cache_dir = cache_dir or default_cache_dir()
        self.progress: Progress = progress or (lambda line: log.info("%s", line))
        self._replaced: list[str] = []  # ids of images a rebuild untagged, removed at the end

    def build_all(self, releases: Sequence[str] | None = None) -> list[BuildResult]:
        """Base first, then every image FROM it; old versions of rebuilt images removed after."""
        specs = image_specs(self.images_dir, releases)
        results = [self.build_base()]
        # One read per context: every release image of this build gets the same minicloud source,
        # even while someone edits it.
        snapshots: dict[Path, Snapshot] = {}
        for spec in specs:
            if spec.directory not in snapshots:
                snapshots[spec.directory] = read_context(self._context(spec))
            results.append(self.build_image(spec, results[0].image_id, snapshots[spec.directory]))
        self._remove_replaced()
        return results

    def build_base(self) -> BuildResult:
        started = time.monotonic()
        recipe = self.images_dir / "base"
        key = compute_cache_key(read_context(context_files(recipe)), {"suite": "bookworm"}, parent_id="")
        current = self._current(BASE_TAG, key)
        if current is not None:
            return self._cached(BASE_TAG, current, key, started)
        if shutil.which("debootstrap") is None or os.geteuid() != 0:
            raise RollgateError("building the base image needs root and debootstrap "
                                "(run .ci/docker-setup.sh, which installs it)")
        self.progress(f"{BASE_TAG}: building root filesystem with debootstrap (about a minute)")
        log_path = self.cache_dir / "logs" / "base.log"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="rootfs-", dir=self.cache_dir) as scratch:
            rootfs = Path(scratch) / "rootfs"

            def milestone(line: str) -> None:
                if line.startswith(_DEBOOTSTRAP_MILESTONES):
                    self.progress(f"{BASE_TAG}:   {line[3:]}")

            try:
                run_logged("base root filesystem (debootstrap)", ["bash", str(recipe / "build-rootfs.sh"),
                            str(rootfs)], log_path, BASE_BUILD_TIMEOUT, on_line=milestone)
            finally:
                unmount_below(rootfs)
            self.progress(f"{BASE_TAG}: importing root filesystem")
            self._import_rootfs(rootfs, key)
        return self._built(BASE_TAG, key, started)

    def _import_rootfs(self, rootfs: Path, key: str) -> None:
        import docker

        repository, _, tag = BASE_TAG.partition(":")
        changes = [f"LABEL {LABEL_MANAGED}=true {LABEL_KIND}=base {LABEL_CACHE_KEY}={key}",
                   "ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]']
        with subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as tar:
            try:
                self.client.api.import_image_from_stream(tar.stdout, repository=repository, tag=tag,
                                                         changes=changes)
            except docker.errors.DockerException as exc:
                tar.kill()
                raise RollgateError(f"importing the base image failed: {exc}") from exc
            _, stderr = tar.communicate(timeout=60)
        if tar.returncode != 0:
            raise RollgateError(f"tar of the base root filesystem failed: {stderr.decode()[-2000:]}")

    def build_image(self, spec: ImageSpec, base_id: str, files: Snapshot | None = None) -> BuildResult:
        """Build one image FROM the base unless its key matches the image already tagged."""
        started = time.monotonic()
        files = files if files is not None else read_context(self._context(spec))
        key = compute_cache_key(files, spec.build_args, parent_id=base_id)
        current = self._current(spec.tag, key)
        if current is not None:
            return self._cached(spec.tag, current, key, started)
        self.progress(f"{spec.tag}: building ({len(files)} files in the context)")
        self._docker_build(spec, files, key)
        return self._built(spec.tag, key, started)

    def _context(self, spec: ImageSpec) -> dict[str, Path]:
        if spec.kind != "minicloud":
            return context_files(spec.directory)
        wheelhouse = ensure_wheelhouse(minicloud_requirements(self.images_dir), self.cache_dir, self.progress)
        source = {name: path for name, path in context_files(spec.directory, "src/").items()
                  if name not in ("src/Dockerfile", "src/.dockerignore")}
        wheels = {f"wheels/{p.name}": p for p in wheelhouse.iterdir() if p.suffix in (".whl", ".txt")}
        return {"Dockerfile": spec.directory / "Dockerfile", **source, **wheels}

    def _docker_build(self, spec: ImageSpec, files: Snapshot, key: str) -> None:
        import docker

        log_path = self.cache_dir / "logs" / (spec.tag.replace("/", "_").replace(":", "_") + ".log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        error = ""
        try:
            with log_path.open("w") as log_file:
                events = self.client.api.build(
                    fileobj=context_tar(files), custom_context=True, tag=spec.tag, rm=True, forcerm=True,
                    pull=False, decode=True, buildargs=spec.build_args,
                    labels={**spec.labels, LABEL_CACHE_KEY: key}, timeout=int(IMAGE_BUILD_TIMEOUT))
                for line, event_error in _build_lines(events):
                    log_file.write(line + "\n")
                    tail.append(line)
                    error = error or event_error
                    if line.startswith("Step "):
                        self.progress(f"{spec.tag}:   {line[:100]}")
        except (docker.errors.DockerException, OSError) as exc:
            error = error or str(exc)
        if error:
            raise RollgateError(f"building {spec.tag} failed: {error.strip()}\n"
                                f"--- last lines of {log_path} ---\n" + "\n".join(tail))

    def _current(self, tag: str, key: str) -> Any | None:
        """The image tagged ``tag`` if it was built from exactly these inputs."""
        import docker

        try:
            image = self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            return None
        if (image.labels or {}).get(LABEL_CACHE_KEY) == key:
            return image
        self._replaced.append(image.id)
        return None

    def _cached(self, tag: str, image: Any, key: str, started: float) -> BuildResult:
        seconds = time.monotonic() - started
        self.progress(f"{tag}: up to date (cache key {key[:12]}), no work")
        return BuildResult(tag, image.id, key, True, seconds, int(image.attrs.get("Size", 0)))

    def _built(self, tag: str, key: str, started: float) -> BuildResult:
        image = self.client.images.get(tag)
        seconds = time.monotonic() - started
        size = int(image.attrs.get("Size", 0))
        self.progress(f"{tag}: built in {seconds:.1f}s ({image.short_id}, {size / 1e6:.0f} MB)")
        return BuildResult(tag, image.id, key, False, seconds, size)

    def _remove_replaced(self) -> None:
        """Remove the images that rebuilds untagged (newest first, so children go before the old base)."""
        import docker

        for image_id in reversed(self._replaced):
            try:
                self.client.images.remove(image_id, noprune=False)
            except docker.errors.APIError as exc:  # still used by a container, or tagged elsewhere
                log.debug("keeping replaced image %s: %s", image_id, exc)
        self._replaced.clear()


def _build_lines(events: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """(log line, error) pairs from the engine's build event stream."""
    for event in events:
        if "error" in event:
            detail = event.get("errorDetail", {}).get("message") or event["error"]
            yield f"ERROR: {detail}", str(detail)
        for line in str(event.get("stream", "")).splitlines():
            if line.strip():
                yield line.rstrip(), ""

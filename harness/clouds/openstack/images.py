"""Build the real-OpenStack images offline: one per release, plus MariaDB and RabbitMQ.

A separate module so that ``harness.images`` (minicloud, PostgreSQL, HAProxy)
stays as it is: this one only adds image kinds and reuses its builder, cache
keys and labels.

The release images install Keystone, Placement and Nova from wheels that the
host prepares for the image's Python (3.11.2):

- ``pip download`` for the image's interpreter and platform resolves the
  markers as the image will (``python_full_version < "3.11.3"`` can pull
  ``async-timeout``, FINDINGS) and takes only wheels;
- only if that fails because some project publishes no wheel, ``pip wheel``
  with the host's Python builds them first (same Debian, same glibc), and the
  download is repeated, finding those wheels too.

2026.1 is pinned by the stable/2026.1 upper-constraints (unconstrained, pip
takes oslo.policy 6, which breaks placement 15). No stable/2026.2 constraints
exist yet, so 2026.2 is pinned by ``requirements-2026.2.lock``, made once from
an unconstrained resolution by :func:`resolve_lock` and kept in the tree, so
that a rebuild months later installs the same thing.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import RollgateError
from harness.image_inputs import (
    BOOTSTRAP_WHEELS,
    IMAGE_PYTHON,
    IMAGES_DIR,
    WHEEL_DOWNLOAD_TIMEOUT,
    WHEEL_PLATFORMS,
    Progress,
    Snapshot,
    context_files,
    read_context,
    run_logged,
)
from harness.images import BASE_TAG, HAPROXY_TAG, BuildResult, ImageBuilder, ImageSpec

OPENSTACK_RELEASES = ("2026.1", "2026.2")
MARIADB_TAG = "rollgate/mariadb:10.11"
RABBITMQ_TAG = "rollgate/rabbitmq:3.10"
UPPER_CONSTRAINTS = {"2026.1": "upper-constraints-2026.1.txt"}
# pip evaluates environment markers with the interpreter it runs on (the host's
# 3.11.7), not the --python-version it targets, so a dependency that only the
# image's 3.11.2 needs is never downloaded: redis requires async-timeout for
# python_full_version < "3.11.3" (FINDINGS). Such projects are named here and
# downloaded too (pinned by the release's constraints); the image's pip, which
# evaluates markers correctly, installs them.
IMAGE_ONLY_REQUIREMENTS = ("async-timeout",)
# A wheel built on the host from an sdist is tagged linux_x86_64 (or py3-none-any).
OPENSTACK_WHEEL_PLATFORMS = (*WHEEL_PLATFORMS, "linux_x86_64")
_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-.+\.whl$")


def openstack_tag(release: str) -> str:
    return f"rollgate/openstack:{release}"


def lock_path(release: str, images_dir: Path = IMAGES_DIR) -> Path:
    return images_dir / "openstack" / f"requirements-{release}.lock"


@dataclass(frozen=True)
class OpenStackImageSpec(ImageSpec):
    """An image of the openstack profile; the release goes in as OPENSTACK_RELEASE."""

    @property
    def build_args(self) -> dict[str, str]:
        args = {"BASE_IMAGE": BASE_TAG}
        if self.release is not None:
            args["OPENSTACK_RELEASE"] = self.release
        return args


def openstack_image_specs(images_dir: Path = IMAGES_DIR,
                          releases: Sequence[str] | None = None) -> list[OpenStackImageSpec]:
    """MariaDB, RabbitMQ, HAProxy (the profile's load balancer, the same image minicloud's
    ``lb`` uses) and one image per chosen release (all by default), base excluded."""
    chosen = tuple(releases) if releases else OPENSTACK_RELEASES
    unknown = [r for r in chosen if r not in OPENSTACK_RELEASES]
    if unknown:
        raise RollgateError(f"unknown OpenStack release {', '.join(unknown)}; "
                            f"valid: {', '.join(OPENSTACK_RELEASES)}")
    root = images_dir / "openstack"
    specs = [OpenStackImageSpec(MARIADB_TAG, "mariadb", root / "mariadb"),
             OpenStackImageSpec(RABBITMQ_TAG, "rabbitmq", root / "rabbitmq"),
             OpenStackImageSpec(HAPROXY_TAG, "haproxy", images_dir / "haproxy")]
    specs += [OpenStackImageSpec(openstack_tag(r), "openstack", root, r) for r in chosen]
    return specs


def release_requirements(release: str, images_dir: Path = IMAGES_DIR) -> list[str]:
    """The top-level projects of a release (``requirements-<release>.txt``), comments dropped."""
    path = images_dir / "openstack" / f"requirements-{release}.txt"
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def release_constraints(release: str, images_dir: Path = IMAGES_DIR) -> Path:
    """What pins a release: its upper-constraints, else its lock (which must exist)."""
    if release in UPPER_CONSTRAINTS:
        return images_dir / "openstack" / UPPER_CONSTRAINTS[release]
    lock = lock_path(release, images_dir)
    if not lock.exists():
        raise RollgateError(f"{lock} is missing: make it with "
                            f"`python benchmarks/openstack_images_bench.py --resolve-lock {release}`")
    return lock


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]


def _prepare_wheels(requirements: Sequence[str], constraints: Path | None, target: Path,
                    log_dir: Path, progress: Progress) -> None:
    """Download wheels for the image's Python into ``target``; build on the host what has none.

    Every project of 2026.1 and 2026.2 publishes wheels today, so the direct
    download usually suffices, and the host build (about two minutes) runs only when it fails.
    """
    constrain = ["-c", str(constraints)] if constraints else []
    platforms = [arg for platform in OPENSTACK_WHEEL_PLATFORMS for arg in ("--platform", platform)]
    built = target / "built"

    def download(what: str, log_name: str) -> None:
        run_logged(what, _pip("download", "-q", "--dest", str(target), "--find-links", str(built),
                              "--python-version", IMAGE_PYTHON, "--implementation", "cp", "--abi", "cp311",
                              *platforms, "--only-binary=:all:", *constrain, *requirements,
                              *IMAGE_ONLY_REQUIREMENTS, *BOOTSTRAP_WHEELS),
                   log_dir / f"{target.name}-{log_name}.log", WHEEL_DOWNLOAD_TIMEOUT)

    progress(f"wheelhouse: downloading wheels for Python {IMAGE_PYTHON}: {', '.join(requirements)}")
    try:
        download("openstack wheel download (image Python)", "download")
        return
    except RollgateError as exc:
        progress(f"wheelhouse: some project has no wheel ({str(exc).splitlines()[-1][:120]}); "
                 "building wheels on the host")
    run_logged("openstack wheel build (host)",
               _pip("wheel", "-q", "-w", str(built), *constrain, *requirements),
               log_dir / f"{target.name}-wheel.log", WHEEL_DOWNLOAD_TIMEOUT)
    download("openstack wheel download after host build (image Python)", "download-after-build")
    shutil.rmtree(built)


def wheel_pins(wheelhouse: Path, exclude: Sequence[str] = BOOTSTRAP_WHEELS) -> list[str]:
    """``name==version`` for every wheel in a directory, sorted; what a resolved install holds."""
    pins = []
    for wheel in sorted(wheelhouse.glob("*.whl")):
        match = _WHEEL_NAME.match(wheel.name)
        if match is None:
            raise RollgateError(f"{wheel}: not a wheel file name")
        name = match["name"].replace("_", "-").lower()
        if name not in exclude:
            pins.append(f"{name}=={match['version']}")
    return sorted(pins)


def resolve_lock(release: str, images_dir: Path, cache_dir: Path, progress: Progress) -> Path:
    """Resolve a release without constraints for the image's Python and write its lock."""
    requirements = release_requirements(release, images_dir)
    scratch = cache_dir / "openstack-wheels" / f"resolve-{release}"
    shutil.rmtree(scratch, ignore_errors=True)
    _prepare_wheels(requirements, None, scratch, cache_dir / "logs", progress)
    lock = lock_path(release, images_dir)
    header = (f"# OpenStack {release} as resolved for Python {IMAGE_PYTHON} ({', '.join(requirements)}),\n"
              "# written by harness.clouds.openstack.images.resolve_lock; used as the constraints of the\n"
              "# release's image. Delete and re-resolve to move to newer libraries.\n")
    pins = wheel_pins(scratch)
    lock.write_text(header + "".join(f"{pin}\n" for pin in pins))
    shutil.rmtree(scratch, ignore_errors=True)
    progress(f"{lock}: {len(pins)} pins written")
    return lock


def ensure_openstack_wheelhouse(release: str, images_dir: Path, cache_dir: Path, progress: Progress) -> Path:
    """The wheelhouse of a release, downloaded once per (requirements, constraints, Python)."""
    requirements = release_requirements(release, images_dir)
    constraints = release_constraints(release, images_dir)
    recipe = "\n".join([IMAGE_PYTHON, *OPENSTACK_WHEEL_PLATFORMS, *requirements, *IMAGE_ONLY_REQUIREMENTS,
                        constraints.read_text()])
    target = cache_dir / "openstack-wheels" / f"{release}-{hashlib.sha256(recipe.encode()).hexdigest()[:16]}"
    if (target / ".complete").exists():
        progress(f"wheelhouse {release}: cached ({target})")
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _prepare_wheels(requirements, constraints, partial, cache_dir / "logs", progress)
    (partial / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    shutil.copyfile(constraints, partial / "constraints.txt")
    (partial / ".complete").write_text(recipe)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    return target


class OpenStackImageBuilder(ImageBuilder):
    """The image builder of ``harness.images``, taught the openstack profile's image kinds."""

    def build_openstack(self, releases: Sequence[str] | None = None) -> list[BuildResult]:
        """Base (if needed), MariaDB, RabbitMQ and the release images; unchanged ones cost nothing."""
        specs = openstack_image_specs(self.images_dir, releases)
        base = self.build_base()
        results = [base]
        for spec in specs:
            snapshot: Snapshot = read_context(self._context(spec))
            results.append(self.build_image(spec, base.image_id, snapshot))
        self._remove_replaced()
        return results

    def _context(self, spec: ImageSpec) -> dict[str, Path]:
        if spec.kind != "openstack":
            return super()._context(spec) if spec.kind == "minicloud" else context_files(spec.directory)
        assert spec.release is not None
        wheelhouse = ensure_openstack_wheelhouse(spec.release, self.images_dir, self.cache_dir, self.progress)
        files = {name: path for name, path in context_files(spec.directory).items()
                 if name == "Dockerfile" or name.startswith(("etc/", "bin/"))}
        wheels = {f"wheels/{p.name}": p for p in wheelhouse.iterdir() if p.suffix in (".whl", ".txt")}
        return {**files, **wheels}

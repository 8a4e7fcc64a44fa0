"""Benchmark: building the openstack profile's images offline, with time and size per image.

    .venv/bin/python benchmarks/openstack_images_bench.py [--release 2026.1 ...] [--cold]
    .venv/bin/python benchmarks/openstack_images_bench.py --resolve-lock 2026.2

Prints one line per image (tag, built or cached, seconds, MB) and the time to
prepare each release's wheelhouse. Target from issue 7: <= 3 min per release
image on this machine. ``--cold`` drops the release images and their
wheelhouses first, so the figures include the wheel download; without it an
unchanged image costs nothing (its cache key matches) and says so.

``--resolve-lock RELEASE`` writes images/openstack/requirements-RELEASE.lock
from an unconstrained resolution for the image's Python (run once per
release that has no upper-constraints; the lock is kept in the tree).
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.clouds.openstack.images import (
    OPENSTACK_RELEASES,
    OpenStackImageBuilder,
    ensure_openstack_wheelhouse,
    openstack_tag,
    resolve_lock,
)
from harness.image_inputs import IMAGES_DIR
from harness.images import default_cache_dir, docker_client

TARGET_SECONDS_PER_RELEASE = 180.0


def drop_cold(client: object, releases: list[str], cache_dir: Path) -> None:
    """Remove the release images and wheelhouses so the next build pays every cost."""
    import docker

    for release in releases:
        try:
            client.images.remove(openstack_tag(release), force=True)  # type: ignore[attr-defined]
        except docker.errors.ImageNotFound:
            pass
        for wheelhouse in (cache_dir / "openstack-wheels").glob(f"{release}-*"):
            shutil.rmtree(wheelhouse)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", action="append", choices=OPENSTACK_RELEASES)
    parser.add_argument("--cold", action="store_true", help="drop release images and wheelhouses first")
    parser.add_argument("--resolve-lock", choices=OPENSTACK_RELEASES)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache_dir = default_cache_dir()
    progress = print
    if args.resolve_lock:
        started = time.monotonic()
        lock = resolve_lock(args.resolve_lock, IMAGES_DIR, cache_dir, progress)
        print(f"lock {lock} resolved in {time.monotonic() - started:.1f}s")
        return 0
    releases = args.release or list(OPENSTACK_RELEASES)
    client = docker_client()
    if args.cold:
        drop_cold(client, releases, cache_dir)
    wheel_seconds: dict[str, float] = {}
    for release in releases:
        started = time.monotonic()
        ensure_openstack_wheelhouse(release, IMAGES_DIR, cache_dir, progress)
        wheel_seconds[release] = time.monotonic() - started
    builder = OpenStackImageBuilder(client, cache_dir=cache_dir, progress=lambda line: None)
    started = time.monotonic()
    results = builder.build_openstack(releases)
    total = time.monotonic() - started
    print(f"\n{'image':32} {'state':7} {'seconds':>8} {'MB':>6}")
    for result in results:
        state = "cached" if result.cached else "built"
        print(f"{result.tag:32} {state:7} {result.seconds:8.1f} {result.size_bytes / 1e6:6.0f}")
    for release, seconds in wheel_seconds.items():
        print(f"wheelhouse {release}: {seconds:.1f}s")
    print(f"all images: {total:.1f}s")
    slow = [r for r in results if r.tag.startswith("rollgate/openstack:") and not r.cached
            and r.seconds + wheel_seconds.get(r.tag.rsplit(':', 1)[1], 0.0) > TARGET_SECONDS_PER_RELEASE]
    for result in slow:
        print(f"OVER TARGET: {result.tag} took more than {TARGET_SECONDS_PER_RELEASE:.0f}s with its wheels")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())

"""``rollgate images build`` and ``rollgate images list``: the docker backend's images."""
from __future__ import annotations

import time
from typing import Any

import click

from harness.images import (
    BASE_TAG,
    LABEL_CACHE_KEY,
    LABEL_KIND,
    LABEL_MANAGED,
    LABEL_RELEASE,
    MINICLOUD_RELEASES,
    ImageBuilder,
    docker_client,
    image_specs,
)


@click.group()
def images() -> None:
    """Build and list the images the docker backend deploys (offline, cached)."""


@images.command("build")
@click.option("--release", "releases", multiple=True, type=click.Choice(MINICLOUD_RELEASES),
              help="Build only this minicloud release's image (repeatable; default: every release). "
                   "The base, PostgreSQL and HAProxy images are always brought up to date.")
def build(releases: tuple[str, ...]) -> None:
    """Build every image whose inputs changed; a build with no change does no work."""
    started = time.monotonic()
    builder = ImageBuilder(docker_client(), progress=click.echo)
    results = builder.build_all(releases or None)
    built = [r for r in results if not r.cached]
    seconds = time.monotonic() - started
    if built:
        click.echo(f"images: built {len(built)} ({', '.join(r.tag for r in built)}), "
                   f"{len(results) - len(built)} up to date, in {seconds:.1f}s")
    else:
        click.echo(f"images: all {len(results)} up to date, nothing to build ({seconds:.1f}s)")


def managed_images(client: Any) -> list[dict[str, Any]]:
    """One row per tag of every image labelled ``rollgate.managed=true``."""
    rows = []
    for image in client.images.list(filters={"label": f"{LABEL_MANAGED}=true"}):
        labels = image.labels or {}
        for tag in image.tags or ["<none>"]:
            rows.append({"tag": tag, "id": image.short_id.removeprefix("sha256:"),
                         "kind": labels.get(LABEL_KIND, "?"), "release": labels.get(LABEL_RELEASE, ""),
                         "size_mb": round(int(image.attrs.get("Size", 0)) / 1e6),
                         "created": str(image.attrs.get("Created", ""))[:19],
                         "cache_key": labels.get(LABEL_CACHE_KEY, "")[:12]})
    return sorted(rows, key=lambda row: str(row["tag"]))


@images.command("list")
def list_command() -> None:
    """Show rollgate's images, and the ones a deployment needs that are missing."""
    rows = managed_images(docker_client())
    present = {row["tag"] for row in rows}
    click.echo(f"{'TAG':<28} {'KIND':<10} {'RELEASE':<8} {'ID':<13} {'SIZE':>7}  {'CREATED':<19}  CACHE KEY")
    for row in rows:
        click.echo(f"{row['tag']:<28} {row['kind']:<10} {row['release']:<8} {row['id']:<13} "
                   f"{row['size_mb']:>4} MB  {row['created']:<19}  {row['cache_key']}")
    expected = [(BASE_TAG, "base", ""), *((s.tag, s.kind, s.release or "") for s in image_specs())]
    for tag, kind, release in expected:
        if tag not in present:
            click.echo(f"{tag:<28} {kind:<10} {release:<8} missing: run `rollgate images build`")


COMMANDS = (images,)

"""``rollgate images build`` and ``rollgate images list``: the docker backend's images."""
from __future__ import annotations

import time
from typing import Any

import click

from harness import clouds
from harness.errors import UsageError
from harness.images import (
    BASE_TAG,
    LABEL_CACHE_KEY,
    LABEL_KIND,
    LABEL_MANAGED,
    LABEL_RELEASE,
    docker_client,
)


@click.group()
def images() -> None:
    """Build and list the images the docker backend deploys (offline, cached)."""


CLOUD_RELEASES = {name: profile.releases for name, profile in clouds.registry().items()}


@images.command("build")
@click.option("--cloud", type=click.Choice(sorted(CLOUD_RELEASES)), default=clouds.DEFAULT_CLOUD,
              show_default=True,
              help="Whose images: minicloud's (base, PostgreSQL, HAProxy, a release image each) or "
                   "real OpenStack's (base, MariaDB, RabbitMQ, HAProxy, a release image each; the "
                   "first build downloads about 60 MB of wheels per release).")
@click.option("--release", "releases", multiple=True,
              type=click.Choice([r for releases in CLOUD_RELEASES.values() for r in releases]),
              help="Build only this release's image of the chosen cloud (repeatable; default: every "
                   "release). The other images of the cloud are always brought up to date.")
def build(cloud: str, releases: tuple[str, ...]) -> None:
    """Build every image whose inputs changed; a build with no change does no work."""
    wrong = [r for r in releases if r not in CLOUD_RELEASES[cloud]]
    if wrong:
        other = next(c for c, known in CLOUD_RELEASES.items() if wrong[0] in known)
        raise UsageError(f"--release {wrong[0]}: a release of {other}, not of {cloud}; give --cloud {other}, "
                         f"or one of {', '.join(CLOUD_RELEASES[cloud])}")
    started = time.monotonic()
    results = clouds.profile(cloud).build_images(docker_client(), releases or None, click.echo)
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
    expected = [(BASE_TAG, "base", "", "rollgate images build"),
                *((s.tag, s.kind, s.release or "", profile.build_hint(s.release))
                  for profile in clouds.registry().values() for s in profile.image_specs())]
    for tag, kind, release, command in expected:
        if tag not in present:
            present.add(tag)
            click.echo(f"{tag:<28} {kind:<10} {release:<8} missing: run `{command}`")


COMMANDS = (images,)

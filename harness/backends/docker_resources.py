"""Docker resources of a run: names, labels, the run network, published ports,
image checks and reaping by label.

Why by label: ``rollgate up`` may be killed with SIGKILL mid-deploy, before it
records anything. Every container, network and volume carries
``rollgate.run=<id>``, ``rollgate.results-root=<resolved results root>`` and
``rollgate.managed=true`` from the moment it is created, so ``rollgate down ID``
(and ``down --all``, which takes this results root's runs only) find them through
the Docker API alone, with or without ``run.json`` (``harness.ownership``).
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import socket
from collections.abc import Iterable
from typing import Any

from harness.errors import DeployError, ValidationError
from harness.images import HAPROXY_TAG, POSTGRES_TAG, minicloud_tag
from harness.ownership import LABEL_ROOT, Owner, root_tag, within

LOG = logging.getLogger(__name__)

LABEL_RUN = "rollgate.run"
LABEL_MANAGED = "rollgate.managed"
LABEL_HOST = "rollgate.host"
LABEL_SERVICE = "rollgate.service"
LABEL_RELEASE = "rollgate.release"

#: floating ports one run publishes: minicloud allocates only these (host config
#: ``floating_ports``); the same numbers on 127.0.0.1 and in the network host, so the
#: floating ``ip:port`` the API reports is reachable as is.
FLOATING_BLOCK = 50
FLOATING_FIRST, FLOATING_LAST = 20000, 29999

#: services that are not minicloud's, and the image each runs
SYSTEM_IMAGES = {"postgres": POSTGRES_TAG, "haproxy": HAPROXY_TAG}


def run_labels(run_id: str, **extra: str) -> dict[str, str]:
    """The labels of everything a run creates: managed, its run id and its results root."""
    return {LABEL_MANAGED: "true", LABEL_RUN: run_id, LABEL_ROOT: root_tag(), **extra}


def owner_of(labels: dict[str, str]) -> Owner:
    """Whose a labelled object is (root None: made by an older rollgate, no root label)."""
    return Owner(labels.get(LABEL_ROOT), labels.get(LABEL_RUN, ""))


def resource_name(run_id: str, *parts: str) -> str:
    """``rg-<run>-<host>-<service>``: readable in ``docker ps``, unique per run."""
    return "-".join(("rg", run_id, *parts))


def image_for(service: str, release: str) -> str:
    """The image a service runs: a variant (``1.1+VARIANT``) runs its release's image."""
    return SYSTEM_IMAGES.get(service) or minicloud_tag(release)


def label_filter(run_id: str | None, root: str | None = None) -> dict[str, list[str]]:
    """Docker API filter for one run's resources, or for every rollgate run's; of the results
    root ``root`` only, or of any root (and of none: an older rollgate's) when None."""
    labels = [f"{LABEL_RUN}={run_id}" if run_id else LABEL_RUN, f"{LABEL_MANAGED}=true"]
    if root is not None:
        labels.append(f"{LABEL_ROOT}={root}")
    return {"label": labels}


def docker_client() -> Any:
    """A Docker SDK client that answers (DeployError naming the fix otherwise)."""
    from harness.images import docker_client as images_client

    return images_client(timeout=120)


def engine_probe(client: Any, timeout: float = 3.0) -> Any:
    """A cheap liveness test of the engine behind ``client``: a callable that pings with a
    short timeout (the run's own client waits minutes on a hung engine) and never raises."""
    import docker

    probe = docker.from_env(timeout=int(timeout), version=client.api.api_version)

    def alive() -> bool:
        try:
            # A fresh connection each time: a stopping dockerd removes its socket at once
            # but keeps answering on connections it already has, for as long as it takes
            # to stop every container.
            probe.api.close()
            return bool(probe.ping())
        except Exception:
            return False

    return alive


# -- the run network -------------------------------------------------------------------------

def create_network(client: Any, run_id: str) -> tuple[str, str]:
    """One user-defined bridge network per run, on a free 10.199-10.254 /24; (name, prefix)."""
    import docker

    name = resource_name(run_id)
    try:
        existing = client.networks.get(name)
        subnet = existing.attrs["IPAM"]["Config"][0]["Subnet"]
        return name, subnet.rsplit(".", 1)[0]
    except docker.errors.NotFound:
        pass
    start = int(hashlib.sha256(run_id.encode()).hexdigest(), 16)
    last_error = ""
    for attempt in range(56 * 256):
        value = (start + attempt) % (56 * 256)
        prefix = f"10.{199 + value // 256}.{value % 256}"
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
            subnet=f"{prefix}.0/24", gateway=f"{prefix}.1")])
        try:
            client.networks.create(name, driver="bridge", ipam=ipam, labels=run_labels(run_id),
                                   check_duplicate=True)
            return name, prefix
        except docker.errors.APIError as exc:
            last_error = str(exc)
            if "overlap" not in last_error.lower():
                raise DeployError(f"creating the run network {name}: {exc}") from exc
    raise DeployError(f"no free /24 for the run network: {last_error}")  # pragma: no cover


# -- published ports -------------------------------------------------------------------------

def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int, taken: Iterable[int] = ()) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1 (the kernel's ephemeral choice)."""
    held: list[socket.socket] = []
    ports: list[int] = []
    avoid = set(taken)
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
            port = sock.getsockname()[1]
            if port not in avoid:
                ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def floating_block(run_id: str, busy: Iterable[tuple[int, int]] = ()) -> tuple[int, int]:
    """A block of FLOATING_BLOCK ports in 20000-29999 free on 127.0.0.1 (stable per run id)."""
    blocks = (FLOATING_LAST - FLOATING_FIRST + 1) // FLOATING_BLOCK
    start = int(hashlib.sha256(run_id.encode()).hexdigest(), 16)
    avoided = set(busy)
    for attempt in range(blocks):
        first = FLOATING_FIRST + ((start + attempt) % blocks) * FLOATING_BLOCK
        block = (first, first + FLOATING_BLOCK - 1)
        if block not in avoided and all(_free(p) for p in range(block[0], block[1] + 1)):
            return block
    raise DeployError("no free block of floating ports in 20000-29999 on 127.0.0.1")


def busy_floating_blocks(client: Any) -> set[tuple[int, int]]:
    """Blocks other docker runs reserved (their containers may not publish them yet)."""
    blocks = set()
    for container in client.containers.list(all=True, filters=label_filter(None)):
        value = container.labels.get("rollgate.floating")
        if value:
            first, last = value.split("-")
            blocks.add((int(first), int(last)))
    return blocks


# -- images ----------------------------------------------------------------------------------

def missing_images(client: Any, needed: dict[str, str]) -> dict[str, str]:
    """Of ``needed`` (image -> who needs it), the images the engine does not have."""
    import docker

    missing = {}
    for image, user in needed.items():
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing[image] = user
    return missing


def build_hint(image: str) -> str:
    if image.startswith("rollgate/minicloud:"):
        return f"rollgate images build --release {image.partition(':')[2]}"
    if image.startswith("rollgate/openstack:"):
        return f"rollgate images build --cloud openstack --release {image.partition(':')[2]}"
    if image.startswith(("rollgate/mariadb:", "rollgate/rabbitmq:")):
        return "rollgate images build --cloud openstack"
    return "rollgate images build"


def check_scenario_images(scenario: Any, client: Any) -> None:
    """Every release of the scenario (hosts and upgrade target) has its image, or a
    ValidationError naming the file, the field and the command that builds it."""
    needed: dict[str, str] = {}
    for index, host in enumerate(scenario.topology.hosts):
        where = f"topology.hosts[{index}]"
        for service, release in host.releases.items():
            needed.setdefault(image_for(service, release),
                              f"{where}.release ({host.name}/{service} {release})")
        if "db" in host.roles:
            needed.setdefault(POSTGRES_TAG, f"{where}.roles (db)")
        if "lb" in host.roles:
            needed.setdefault(HAPROXY_TAG, f"{where}.roles (lb)")
    upgrade = getattr(scenario, "upgrade", None)
    if upgrade is not None and upgrade.to_release:
        needed.setdefault(minicloud_tag(upgrade.to_release), f"upgrade.to ({upgrade.to_release})")
    for image, where in missing_images(client, needed).items():
        field, _, detail = where.partition(" ")
        raise ValidationError(scenario.path, field,
                              f"release {detail} has no image {image} on the docker backend; "
                              f"build it with `{build_hint(image)}`")


# -- reaping ---------------------------------------------------------------------------------

def reap(client: Any, run_id: str | None, rounds: int = 3, *, root: str | None,
         nested: bool = False) -> dict[str, int]:
    """Remove every container, volume and network of a run (or of every run) of the results
    root ``root`` (of every root, an older rollgate's unlabelled ones included, when None) by
    label (with ``nested``, also the roots below ``root``: a matrix's or a catalog's runs).
    ``root`` is required so that every caller says whose objects it may remove.

    Repeated until a listing finds nothing (at most ``rounds``): a create request a
    killed ``rollgate up`` had in flight completes in the engine after the first listing.
    """
    counts = {"containers": 0, "volumes": 0, "networks": 0}
    for _ in range(rounds):
        found = _reap_once(client, run_id, root, nested)
        for kind, count in found.items():
            counts[kind] += count
        if not any(found.values()):
            break
    return counts


def _reap_once(client: Any, run_id: str | None, root: str | None, nested: bool) -> dict[str, int]:
    import docker

    counts = {"containers": 0, "volumes": 0, "networks": 0}
    # A prefix is no Docker filter: with ``nested``, list every root's and keep those below ``root``.
    filters = label_filter(run_id, None if nested else root)

    def mine(items: list[Any]) -> list[Any]:
        return [i for i in items if not nested or within(_labels_of(i).get(LABEL_ROOT), root, nested)]

    # Dependent containers (sharing a netns) first, then their anchors.
    containers = mine(client.containers.list(all=True, filters=filters))

    def remove(container: Any) -> int:
        try:
            container.remove(force=True, v=True)
            return 1
        except docker.errors.NotFound:
            return 0
        except docker.errors.APIError as exc:
            LOG.warning("removing container %s: %s", container.name, exc)
            return 0

    # Services (joined to an anchor's netns) first, then the anchors; in parallel, as
    # each removal waits on the engine (stop, unmount, docker-proxy exits).
    for anchors in (False, True):
        batch = [c for c in containers if (c.labels.get(LABEL_SERVICE) == "netns") == anchors]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="reap") as pool:
            counts["containers"] += sum(pool.map(remove, batch))
    for volume in mine(client.volumes.list(filters=filters)):
        try:
            volume.remove(force=True)
            counts["volumes"] += 1
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            LOG.warning("removing volume %s: %s", volume.name, exc)
    for network in mine(client.networks.list(filters=filters)):
        try:
            network.remove()
            counts["networks"] += 1
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            LOG.warning("removing network %s: %s", network.name, exc)
    return counts


def leftovers(client: Any, run_id: str | None, root: str | None = None) -> dict[str, list[str]]:
    """What of a run still exists (tests and ``down`` assert it is nothing); of any root
    unless ``root`` is given."""
    filters = label_filter(run_id, root)
    return {
        "containers": [c.name for c in client.containers.list(all=True, filters=filters)],
        "volumes": [v.name for v in client.volumes.list(filters=filters)],
        "networks": [n.name for n in client.networks.list(filters=filters)],
    }


def owners(client: Any) -> dict[Owner, int]:
    """Every rollgate run with an object in Docker (any root), and how many objects it has."""
    found: dict[Owner, int] = {}
    filters = label_filter(None)
    for listing in (client.containers.list(all=True, filters=filters, ignore_removed=True),
                    client.volumes.list(filters=filters), client.networks.list(filters=filters)):
        for item in listing:
            owner = owner_of(_labels_of(item))
            found[owner] = found.get(owner, 0) + 1
    return found


def _labels_of(item: Any) -> dict[str, str]:
    """A container's, volume's or network's labels (containers keep theirs under Config)."""
    attrs = item.attrs or {}
    labels = attrs.get("Labels") if "Labels" in attrs else (attrs.get("Config") or {}).get("Labels")
    return dict(labels or {})

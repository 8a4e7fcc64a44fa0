"""The openstack profile: real Keystone, Placement and Nova (fake virt driver) in containers.

What each service is (image, command, environment, network name, ports,
volumes), where it lives in the run's topology, how the cloud is set up
(database syncs, cell mapping) and how the load balancer fronts it. Pure data
and text: nothing here talks to Docker or to the cloud, so all of it is
unit-tested; ``harness.clouds.openstack.containers`` creates the containers and
``harness.clouds.openstack.deploy`` runs the deployment in order.

Topology of a run (host -> containers, one per service):

- ``db``: mariadb (named volume on /var/lib/mysql); ``mq``: rabbitmq;
- ``lb``: haproxy in front of keystone, placement, nova-api and the Glance
  stand-in, its frontends published on 127.0.0.1 only (the catalog's public
  endpoints);
- ``controller``: keystone (fernet and credential keys on a named volume, so a
  container of the next release keeps validating tokens), placement, glance
  and neutron stand-ins, nova-api, nova-conductor, nova-scheduler;
- ``compute-1`` ... ``compute-N``: nova-compute (``fake.FakeDriverWithoutFakeNodes``),
  each with its own host name and a named volume on /var/lib/nova (its
  ``compute_id``), so it can be swapped to the next release.

Inside the run network the services reach each other through the load balancer
too (``http://lb:5000/v3``, the catalog's internal endpoints), and the harness
reaches the cloud only through it. Why not by the services' own names
(``keystone:5000``, as at first): a rolling upgrade replaces a service's
container, so its address changes, and nova 2026.1 (eventlet) caches DNS
answers for their TTL (600 s from Docker's DNS): after the keystone swap its
computes kept connecting to the old keystone's address (ECONNREFUSED, a live
migration failed). The load balancer's address never changes, and it drains
the old container properly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.backends.base import HostSpec
from harness.errors import ValidationError
from harness.images import HAPROXY_TAG

RELEASES = ("2026.1", "2026.2")  # kept equal to harness.clouds.openstack.images.OPENSTACK_RELEASES by a test
DEFAULT_RELEASE = "2026.1"
MAX_COMPUTES = 10  # each nova-compute is ~100 MB and a few seconds of CPU at start
MARIADB_TAG = "rollgate/mariadb:10.11"
RABBITMQ_TAG = "rollgate/rabbitmq:3.10"
SYSTEM = "system"  # the release label of infrastructure services (their image has one version)

ADMIN_PASSWORD = "rollgate-admin"  # equal to minicloud's: the same clouds.yaml shape serves both
SERVICE_PASSWORD = "rollgate-service"
DB_PASSWORD = "rollgate-db"
RABBIT_PASSWORD = "rollgate-rabbit"
REGION = "RegionOne"
STANDIN_IMAGE_ID = "5e7a0d1e-0000-4000-8000-00000000c1a0"  # served by bin/rollgate-standin
API_WORKERS = "2"  # gunicorn workers per API: enough for a gate's traffic on two cores
#: the APIs served by ``rollgate-wsgi`` (gunicorn, API_WORKERS sync workers: one request each)
GUNICORN_SERVICES = ("keystone", "placement", "nova-api")

#: services of each host kind, in start order
CONTROLLER_SERVICES = ("keystone", "placement", "glance", "neutron", "nova-api", "nova-conductor",
                       "nova-scheduler")
NOVA_SERVICES = ("nova-api", "nova-conductor", "nova-scheduler")
#: service -> the port it listens on inside the run network
PORTS = {"keystone": 5000, "placement": 8778, "glance": 9292, "neutron": 9696, "nova-api": 8774}
#: nova's ``SERVICE_VERSION`` of each release (nova/objects/service.py): what a nova service
#: writes into its row of the ``services`` table when it starts (FINDINGS: 72 -> 74).
NOVA_SERVICE_VERSION = {"2026.1": 72, "2026.2": 74}


@dataclass(frozen=True)
class Frontend:
    """One load-balancer frontend: a public API, the service behind it and its health check."""

    name: str  # catalog type: identity, placement, compute, image
    service: str
    port: int
    check: str  # path of the HTTP health check (no authentication needed)
    path: str = ""  # suffix of the public endpoint URL


FRONTENDS = (
    Frontend("identity", "keystone", 5000, "/v3", "/v3"),
    Frontend("placement", "placement", 8778, "/"),
    Frontend("compute", "nova-api", 8774, "/", "/v2.1"),
    Frontend("image", "glance", 9292, "/v2/images"),
)
#: frontends of the load balancer the services use among themselves only (not published)
INTERNAL_FRONTENDS = (Frontend("network", "neutron", 9696, "/v2.0/networks"),)
#: the load balancer's name on the run network: every internal endpoint goes through it
LB_ALIAS = "lb"
INTERNAL_IDENTITY_URL = f"http://{LB_ALIAS}:5000/v3"


@dataclass(frozen=True)
class ContainerSpec:
    """One service container: what the docker layer needs to create it."""

    host: str  # the run's host (run.json), e.g. controller, compute-2
    service: str
    image: str
    release: str
    command: tuple[str, ...] | None
    alias: str  # its name on the run network (and its host name)
    environment: dict[str, str] = field(default_factory=dict)
    ports: tuple[int, ...] = ()  # inner ports published on 127.0.0.1 (at ports given at create time)
    volumes: dict[str, str] = field(default_factory=dict)  # volume key -> mount path
    config: str | None = None  # for haproxy: the run directory's file mounted at /etc/rollgate


def check_release(release: str) -> str | None:
    """None when valid, else what is wrong and what would be valid."""
    if release not in RELEASES:
        return f"unknown openstack release {release!r}; valid: {', '.join(RELEASES)}"
    return None


UPGRADE_ROLES = ("controller", "compute")  # the roles an openstack upgrade rolls


def check_policy(instances: str, roles: tuple[str, ...], label: str) -> None:
    """Refuse (ValidationError naming ``label`` and the field) an upgrade policy the profile does
    not wire: a scenario's ``upgrade.policy`` and ``rollgate upgrade``'s policy alike."""
    if instances == "cold-migrate":
        raise ValidationError(label, "upgrade.policy.instances", "cold-migrate is not wired for the "
                              "openstack profile; valid: live-migrate, leave")
    unknown = [r for r in roles if r not in UPGRADE_ROLES]
    if unknown:
        raise ValidationError(label, "upgrade.policy.roles", f"the openstack profile has no "
                              f"{', '.join(unknown)} host; valid: {', '.join(UPGRADE_ROLES)}")


def check_computes(computes: int) -> str | None:
    if not 1 <= computes <= MAX_COMPUTES:
        return f"{computes} compute hosts: give 1 to {MAX_COMPUTES}"
    return None


def openstack_tag(release: str) -> str:
    return f"rollgate/openstack:{release}"


def build_command(release: str) -> str:
    """The command that builds every image a cloud at ``release`` needs."""
    return f"rollgate images build --cloud openstack --release {release}"


def needed_images(release: str) -> dict[str, str]:
    """image -> what needs it, for a cloud at ``release``."""
    return {openstack_tag(release): f"keystone, placement and nova at {release}",
            MARIADB_TAG: "the database (host db)", RABBITMQ_TAG: "the message bus (host mq)",
            HAPROXY_TAG: "the load balancer (host lb)"}


def release_alias(alias: str, release: str) -> str:
    """The network name of one release's container of a service (``nova-api-2026-2``).

    Every service container answers to its service's name (``nova-api``, what the
    services use among themselves) and to this per-release name, which is also its
    HAProxy server's name: during a rolling upgrade the old and the new container
    of a service run side by side, and the load balancer must address each of
    them, to drain the old one while the new one takes over.
    """
    return f"{alias}-{release.replace('.', '-')}"


def compute_names(computes: int) -> list[str]:
    return [f"compute-{index}" for index in range(1, computes + 1)]


def topology(release: str, computes: int) -> list[HostSpec]:
    """The run's hosts and the release of each service (what run.json records)."""
    hosts = [HostSpec("db", ("db",), {"mariadb": SYSTEM}), HostSpec("mq", ("mq",), {"rabbitmq": SYSTEM}),
             HostSpec("lb", ("lb",), {"haproxy": SYSTEM}),
             HostSpec("controller", ("controller",), dict.fromkeys(CONTROLLER_SERVICES, release))]
    hosts += [HostSpec(name, ("compute",), {"nova-compute": release}) for name in compute_names(computes)]
    return hosts


def environment(**extra: str) -> dict[str, str]:
    """What bin/rollgate-openstack-entrypoint renders the config files from."""
    return {"DB_HOST": "mariadb", "DB_PASSWORD": DB_PASSWORD, "RABBIT_HOST": "rabbitmq",
            "RABBIT_PASSWORD": RABBIT_PASSWORD, "KEYSTONE_URL": INTERNAL_IDENTITY_URL,
            "SERVICE_PASSWORD": SERVICE_PASSWORD, "REGION": REGION, **extra}


def container_spec(host: str, service: str, release: str) -> ContainerSpec:
    """The container of ``service`` on ``host`` at ``release``."""
    image = openstack_tag(release)
    if service == "mariadb":
        return ContainerSpec(host, service, MARIADB_TAG, SYSTEM, None, "mariadb",
                             {"MARIADB_PASSWORD": DB_PASSWORD}, volumes={"data": "/var/lib/mysql"})
    if service == "rabbitmq":
        return ContainerSpec(host, service, RABBITMQ_TAG, SYSTEM, None, "rabbitmq",
                             {"RABBITMQ_PASSWORD": RABBIT_PASSWORD})
    if service == "haproxy":
        return ContainerSpec(host, service, HAPROXY_TAG, SYSTEM,
                             ("haproxy", "-W", "-db", "-f", "/etc/rollgate/haproxy.cfg"), LB_ALIAS,
                             ports=tuple(f.port for f in FRONTENDS), config="haproxy.cfg")
    if service == "keystone":
        return ContainerSpec(host, service, image, release,
                             ("rollgate-wsgi", "keystone.wsgi.api", "5000", API_WORKERS), service,
                             environment(), volumes={"keys": "/var/lib/keystone"})
    if service == "placement":
        return ContainerSpec(host, service, image, release,
                             ("rollgate-wsgi", "placement.wsgi.api", "8778", API_WORKERS), service,
                             environment())
    if service in ("glance", "neutron"):
        return ContainerSpec(host, service, image, release,
                             ("rollgate-standin", service, str(PORTS[service])), service, environment())
    if service == "nova-api":
        # --preload: gunicorn imports nova once, in its master, and forks the workers from it.
        # The unpin's SIGHUP replaces every worker at once (gunicorn stops the old ones right
        # after spawning the new): without preload each new worker imports nova for 10-20 s
        # first, and nothing accepts meanwhile (timeouts, then 503s through HAProxy: seen).
        # Forked workers are ready at once and compute the compute RPC cap afresh on first
        # use (nova.compute.rpcapi's router is lazy; the master never serves a request).
        return ContainerSpec(host, service, image, release,
                             ("rollgate-wsgi", "nova.wsgi.osapi_compute", "8774", API_WORKERS), service,
                             environment(NOVA_HOST=host, GUNICORN_CMD_ARGS="--preload"))
    if service in ("nova-conductor", "nova-scheduler"):
        # One Nova host name for the controller's services, whatever container runs them:
        # a container of the next release takes over the same service record.
        return ContainerSpec(host, service, image, release, (service,), service, environment(NOVA_HOST=host))
    if service == "nova-compute":
        return ContainerSpec(host, service, image, release, ("nova-compute",), host,
                             environment(NOVA_HOST=host, NOVA_ROLE="compute"),
                             volumes={"state": "/var/lib/nova"})
    raise ValueError(f"the openstack profile has no service {service!r}")


def setup_commands(public_identity_url: str) -> dict[str, str]:
    """One-off setup, each in its own container (shell text; run in parallel).

    Keystone's bootstrap registers the identity endpoint, the public one being
    the load balancer's; nova's cells (cell0, cell1) are mapped before its schema sync.
    """
    return {
        "keystone-setup": "keystone-manage db_sync && "
                          "keystone-manage fernet_setup --keystone-user root --keystone-group root && "
                          "keystone-manage credential_setup --keystone-user root --keystone-group root && "
                          f"keystone-manage bootstrap --bootstrap-password {ADMIN_PASSWORD} "
                          f"--bootstrap-public-url {public_identity_url} "
                          f"--bootstrap-internal-url {INTERNAL_IDENTITY_URL} "
                          f"--bootstrap-admin-url {INTERNAL_IDENTITY_URL} "
                          f"--bootstrap-region-id {REGION}",
        "placement-setup": "placement-manage db sync",
        "nova-setup": "nova-manage api_db sync && nova-manage cell_v2 map_cell0 && "
                      "nova-manage cell_v2 create_cell --name=cell1 --verbose && nova-manage db sync",
    }


#: One-offs of a rolling upgrade, each run in a container of the NEW release while the old
#: services run: name -> (the service whose container it is made like, shell). Expand: keystone's
#: expand and migrate (the old keystone keeps working until contract), placement's and nova's
#: schema syncs (additive: the old placement and nova run on them; FINDINGS).
UPGRADE_EXPAND = {
    "keystone-expand": ("keystone", "keystone-manage db_sync --expand && keystone-manage db_sync --migrate"),
    "placement-sync": ("placement", "placement-manage db sync"),
    "nova-sync": ("nova-conductor", "nova-manage api_db sync && nova-manage db sync"),
}
#: Contract: only keystone has one (placement and nova migrate in one step); the old keystone
#: cannot run after it.
UPGRADE_CONTRACT = {"keystone-contract": ("keystone", "keystone-manage db_sync --contract")}
#: nova's pre-upgrade check, run with the NEW release's code as nova documents (``nova-status``).
UPGRADE_CHECK = ("nova-status", ("nova-conductor", "nova-status upgrade check"))

#: which setup a service waits for before it starts
SETUP_OF = {"keystone": "keystone-setup", "placement": "placement-setup"}


def public_endpoints(lb_ports: dict[str, int]) -> dict[str, str]:
    """Catalog type -> public URL: the load balancer's port on 127.0.0.1."""
    return {f.name: f"http://127.0.0.1:{lb_ports[f.name]}{f.path}" for f in FRONTENDS}


def catalog(lb_ports: dict[str, int]) -> list[tuple[str, str, str, str]]:
    """(service name, type, public URL, internal URL) of every service but identity.

    Internal (and admin) URLs are the load balancer's name on the run network
    (``http://lb:8778``): what Nova and Placement use among themselves (see the
    module docstring for why not the services' own names). The Neutron stand-in
    has an internal frontend only (nothing outside the cloud calls it); its
    public URL is the internal one.
    """
    public = public_endpoints(lb_ports)
    lb = f"http://{LB_ALIAS}"
    return [("placement", "placement", public["placement"], f"{lb}:8778"),
            ("nova", "compute", public["compute"], f"{lb}:8774/v2.1"),
            ("glance", "image", public["image"], f"{lb}:9292"),
            ("neutron", "network", f"{lb}:9696", f"{lb}:9696")]


def haproxy_config(socket_path: str, shield: bool = True) -> str:
    """haproxy.cfg of the lb: one frontend per public API, one server per release of its service.

    A server per release (``server nova-api-2026-1 nova-api-2026-1:8774``), each
    found by its per-release network name (``release_alias``) through Docker's
    DNS at run time (``resolvers``, ``init-addr none``): HAProxy starts before
    the services exist, a release that runs no container has a server without
    an address (in maintenance, skipped), and when an upgrade starts the next
    release's container beside the old one, its server comes up by its own
    health check while the old one is drained by name through the runtime API.
    Chosen over ``server-template`` on the shared name (which slot is which
    container is up to DNS order) and over the runtime API's ``add server``
    (dynamic servers take no ``resolvers`` in HAProxy 2.6): static, printable,
    and the same config at every step of an upgrade.
    """
    lines = [
        "global",
        f"    stats socket {socket_path} mode 600 level admin expose-fd listeners",
        "    stats timeout 10s",
        "    maxconn 4096",
        "resolvers docker",
        "    nameserver dns 127.0.0.11:53",
        "    hold valid 1s",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        # A sync gunicorn worker answers a health check only when its current request is
        # done, and keystone validates the token of every request, even of GET /v3 (65 ms
        # median, 300 ms p90 at load 12 here). Without `timeout check`, a check may take
        # `inter` (1 s was the whole budget), two slow ones in a row marked the only server
        # DOWN and HAProxy answered 503 for seconds to a server that was only busy. A check
        # is to find a dead server, not a busy one: 5 s to answer, 3 misses in a row.
        "    timeout check 5s",
        # requests beyond a server's maxconn wait here (the default is `timeout connect`)
        "    timeout queue 60s",
        "    timeout client 1h",  # the harness's lb never closes an idle client (see haproxy.py)
        "    timeout server 120s",  # nova's boot and keystone under load take tens of seconds
        "    timeout http-keep-alive 1h",
        "    option http-keep-alive",
        # The shield of a swap (with the executor's drain): a request a stopping server
        # refused or closed unanswered is replayed on another. ``shield=False`` (a scenario's
        # ``api_drain: false``) leaves it out: the load balancer then passes on what a swap
        # does to requests, as in the hand-made run without one (FINDINGS: nova-api resets).
        *(["    retries 2", "    option redispatch", "    retry-on conn-failure empty-response"]
          if shield else ["    retries 0"]),
        # A server whose name resolves (its container was just created) is UP at once, before
        # any check, and got requests it refused (503 after the retries, at the nova-api swap
        # of an upgrade under traffic) until its first check marked it DOWN. `observe layer4`:
        # a connection it refuses counts as a failed check, so such a server is DOWN at its
        # first refusal (a server UP for a while needs `fall` of them, checks then every 1s).
        # no libc lookup at start: a release not deployed has no name yet, and the libc
        # resolver would wait for the host's DNS on every such server before HAProxy listens
        "    default-server inter 1s fall 3 rise 1 observe layer4 error-limit 1 on-error fail-check"
        " resolvers docker init-addr none",
    ]
    for frontend in (*FRONTENDS, *INTERNAL_FRONTENDS):
        lines += [
            f"frontend fe_{frontend.name}",
            f"    bind 0.0.0.0:{frontend.port}",
            f"    default_backend be_{frontend.name}",
            f"backend be_{frontend.name}",
            "    balance roundrobin",
            f"    option httpchk GET {frontend.check}",
            "    http-check expect status 200-399",
        ]
        if frontend.service in GUNICORN_SERVICES:
            # As many connections as gunicorn has workers; the rest queue in HAProxy, not in the
            # worker's listen backlog: a health check (not subject to maxconn) waits for one
            # request at most, and a request whose client gave up leaves the queue unserved.
            lines.append(f"    default-server maxconn {API_WORKERS}")
        lines += [f"    server {name} {name}:{frontend.port} check"
                  for name in (release_alias(frontend.service, release) for release in RELEASES)]
    return "\n".join(lines) + "\n"

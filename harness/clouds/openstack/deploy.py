"""Bring an openstack cloud up on Docker, in order, or leave nothing behind.

Order (docs/openstack.md, FINDINGS): MariaDB, RabbitMQ and the load balancer
first; the one-off setups (keystone, placement, nova) in parallel; each
service starts as soon as its own setup is done; the catalog is made through
the load balancer once Keystone answers, and before any Nova service starts
(nova-conductor exits with 401 without its service user); then Nova; then the
readiness the harness relies on: every nova-compute up, a resource provider
per compute, every compute mapped to the cell (``discover_hosts`` until
``list_hosts`` has them all). Every wait polls with a timeout and, when
it runs out, the last error and the logs; no fixed sleeps.

All-or-nothing: on any failure, Ctrl-C included, every container, network
and volume of the run is removed before the error propagates.
"""
from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from harness.backends import docker_resources as res
from harness.clouds import minicloud
from harness.clouds import openstack as profile
from harness.clouds.openstack.containers import SOCKET_DIR, OpenStackContainers
from harness.clouds.openstack.setup import computes_up, create_catalog, create_flavor, resource_providers
from harness.deploy import connect
from harness.errors import DeployError, RollgateError, UsageError
from harness.runstate import HostState, RunState, ServiceState
from harness.waiting import http_ok, in_a_row, wait_until

LOG = logging.getLogger(__name__)

#: seconds; generous: this runs on a shared 2-core machine (imports take 5-20 s per process)
INFRA_TIMEOUT = 180.0
SETUP_TIMEOUT = 420.0
API_TIMEOUT = 240.0
COMPUTE_TIMEOUT = 300.0


class MemorySampler:
    """The peak of ``sample()`` (the sum of the run's containers' RSS), sampled every ``interval``
    seconds; ``peak_at``: when, in seconds after the start."""

    def __init__(self, sample: Callable[[], int], interval: float = 2.0) -> None:
        self.sample = sample
        self.interval = interval
        self.peak = 0
        self.peak_at = 0.0
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                now = self.sample()
            except Exception as exc:  # the engine is busy or the run is being removed
                LOG.debug("rss sample: %s", exc)
                continue
            if now > self.peak:
                self.peak, self.peak_at = now, time.monotonic() - self._started


def deploy_openstack(state: RunState, release: str, computes: int,
                     client: Any | None = None, shield: bool = True) -> OpenStackContainers:
    """Deploy the openstack profile at ``release`` with ``computes`` computes; the run's containers.
    ``shield=False``: the load balancer replays no request (``openstack.haproxy_config``)."""
    for flag, problem in (("--release", profile.check_release(release)),
                          ("--computes", profile.check_computes(computes))):
        if problem:
            raise UsageError(f"{flag}: {problem}")
    cloud = OpenStackContainers(state, client or res.docker_client())
    cloud.ensure_images(profile.needed_images(release), profile.build_command(release))  # before anything
    lb_ports = dict(zip((f.name for f in profile.FRONTENDS), res.free_ports(len(profile.FRONTENDS)),
                        strict=True))
    state.cloud, state.backend, state.status = "openstack", "docker", "deploying"
    state.hosts = {h.name: HostState(h.name, list(h.roles), "127.0.0.1",
                                     {s: ServiceState(release=r) for s, r in h.services.items()})
                   for h in profile.topology(release, computes)}
    state.endpoints = profile.public_endpoints(lb_ports)
    info: dict[str, Any] = {"release": release, "computes": computes, "lb_ports": lb_ports, "phases": {}}
    state.extra["openstack"] = info
    state.save()
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="os-deploy")
    try:
        with MemorySampler(cloud.memory_rss) as sampler:
            _deploy(cloud, state, lb_ports, pool, info["phases"], started, shield)
        info["peak_rss_bytes"] = sampler.peak
        state.status = "up"
        state.extra["deploy_seconds"] = round(time.monotonic() - started, 1)
        state.save()
        return cloud
    except BaseException as exc:
        LOG.error("deploy of %s failed (%s); removing everything it created", state.run_id,
                  type(exc).__name__)
        pool.shutdown(wait=False, cancel_futures=True)
        _clean_up(cloud, state)
        if isinstance(exc, (RollgateError, KeyboardInterrupt, SystemExit)):
            raise
        raise DeployError(f"deploy of {state.run_id} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        pool.shutdown(wait=False)


def _clean_up(cloud: OpenStackContainers, state: RunState) -> None:
    """Remove the run; a second Ctrl-C (or SIGTERM) must not stop the cleanup halfway. A
    cleanup that fails (the engine went away) is logged with the command that finishes it,
    and the deploy's own error is the one that propagates."""
    main = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)
                } if main else {}
    try:
        counts = cloud.destroy()
        LOG.info("removed %s", ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    except Exception as exc:
        LOG.error("cleanup of %s failed (%s: %s); finish it with `rollgate down %s`",
                  state.run_id, type(exc).__name__, exc, state.run_id)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        state.status = "failed"
        state.save()


def _deploy(cloud: OpenStackContainers, state: RunState, lb_ports: dict[str, int],
            pool: ThreadPoolExecutor, phases: dict[str, float], started: float, shield: bool) -> None:
    """The order of the module docstring; each service at the release run.json gives it."""
    def phase(name: str) -> None:
        phases[name] = round(time.monotonic() - started, 1)
        LOG.info("%s: %s at t+%.1fs", state.run_id, name, phases[name])

    def spec(host: str, service: str) -> profile.ContainerSpec:
        return profile.container_spec(host, service, state.hosts[host].services[service].release)

    setups: dict[str, Future[None]] = {}

    def stopped() -> str | None:
        """Why waiting longer is pointless: a setup failed, or a service exited."""
        for future in setups.values():
            if future.done() and future.exception() is not None:
                return str(future.exception())
        return cloud.first_exited()

    def wait(what: str, check: Callable[[], object], timeout: float, interval: float = 1.0,
             logs_of: tuple[str, str] | None = None) -> None:
        evidence = (lambda: cloud.logs(*logs_of)) if logs_of else None
        wait_until(check, timeout=timeout, interval=interval, what=what, abort=stopped, evidence=evidence)

    def finished(name: str) -> Callable[[Future[None]], None]:
        return lambda _: phase(f"{name} finished")  # in the pool's thread: when it really finished

    def setup_done(name: str) -> None:
        wait(f"setup {name}", setups[name].done, SETUP_TIMEOUT, interval=0.5)
        setups[name].result()

    cloud.create_network()
    lb_dir = cloud.config_dir("lb")
    lb_dir.mkdir(parents=True, exist_ok=True)
    (lb_dir / "haproxy.cfg").write_text(profile.haproxy_config(f"{SOCKET_DIR}/admin.sock", shield))
    cloud.start(spec("db", "mariadb"))
    cloud.start(spec("mq", "rabbitmq"))
    cloud.start(spec("lb", "haproxy"), {f.port: lb_ports[f.name] for f in profile.FRONTENDS})
    for host, service in (("db", "mariadb"), ("mq", "rabbitmq")):
        wait(f"{service} healthy", functools.partial(_is_healthy, cloud, host, service), INFRA_TIMEOUT,
             logs_of=(host, service))
    phase("mariadb and rabbitmq healthy")

    public = profile.public_endpoints(lb_ports)
    for name, shell in profile.setup_commands(public["identity"]).items():
        like = spec("controller", "keystone" if name == "keystone-setup" else "placement")
        setups[name] = pool.submit(cloud.run_oneoff, like, name, shell, SETUP_TIMEOUT)
        setups[name].add_done_callback(finished(name))
    _write_clouds_yaml(state, public["identity"].removesuffix("/v3"))

    setup_done("keystone-setup")
    cloud.start(spec("controller", "keystone"))
    setup_done("placement-setup")
    for service in ("placement", "glance", "neutron"):
        cloud.start(spec("controller", service))
    # three 2xx in a row: a catalog call got 503 right after keystone's first answer
    wait("keystone answering through the load balancer",
         in_a_row(functools.partial(http_ok, public["identity"], 5), 3), API_TIMEOUT,
         interval=0.5, logs_of=("controller", "keystone"))
    phase("keystone answers")
    state.extra["openstack"]["catalog_calls"] = create_catalog(connect(state), lb_ports)
    phase("catalog made")

    setup_done("nova-setup")
    nova = [("controller", s) for s in profile.NOVA_SERVICES]
    nova += [(h.name, "nova-compute") for h in state.hosts.values() if "compute" in h.roles]
    for future in [pool.submit(cloud.start, spec(host, service)) for host, service in nova]:
        future.result(timeout=120)
    phase("nova started")
    computes = [h.name for h in state.hosts.values() if "compute" in h.roles]
    conn = connect(state)  # a fresh connection: the first one cached the catalog before it was made
    for frontend in profile.FRONTENDS:
        url = f"http://127.0.0.1:{lb_ports[frontend.name]}{frontend.check}"
        wait(f"{frontend.service} answering through the load balancer", functools.partial(http_ok, url, 5),
             API_TIMEOUT, logs_of=("controller", frontend.service))
    wait(f"nova-compute up on {', '.join(computes)}", lambda: computes_up(conn, computes), COMPUTE_TIMEOUT,
         logs_of=("controller", "nova-conductor"))
    phase("computes up")
    wait(f"resource providers of {', '.join(computes)} in Placement",
         lambda: resource_providers(conn, computes), COMPUTE_TIMEOUT, logs_of=(computes[0], "nova-compute"))
    # After the providers: a compute's service row (up) comes before its compute node record,
    # and discover_hosts maps only hosts with a record; run once, too early, it left compute-3
    # unmapped and the first server scheduled there went ERROR (HostMappingNotFound).
    wait(f"{', '.join(computes)} mapped to a cell", functools.partial(_mapped, cloud, computes),
         COMPUTE_TIMEOUT, interval=2.0, logs_of=("controller", "nova-conductor"))
    create_flavor(conn)
    phase("computes mapped and in Placement")


def _mapped(cloud: OpenStackContainers, computes: list[str]) -> bool:
    """``discover_hosts`` (idempotent), then every compute is in ``list_hosts``."""
    cloud.exec("controller", "nova-conductor", ["nova-manage", "cell_v2", "discover_hosts", "--verbose"])
    listed = cloud.exec("controller", "nova-conductor", ["nova-manage", "cell_v2", "list_hosts"])
    missing = [h for h in computes if f" {h} " not in listed]
    if missing:
        raise AssertionError(f"not mapped to a cell yet: {', '.join(missing)}")
    return True


def _is_healthy(cloud: OpenStackContainers, host: str, service: str) -> bool:
    return cloud.health(host, service) == "healthy"


def _write_clouds_yaml(state: RunState, identity_url: str) -> None:
    """The same clouds.yaml as minicloud's (clouds ``rollgate`` and ``rollgate-demo``)."""
    import yaml

    path = state.directory / "clouds.yaml"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(minicloud.clouds_yaml(identity_url), sort_keys=False))
    tmp.replace(path)


def service_health(state: RunState, client: Any | None = None) -> dict[tuple[str, str], str]:
    """(host, service) -> its container's state (running, healthy, exited, missing); for a
    service behind the load balancer, ``ok`` or ``bad`` from its API there."""
    cloud = OpenStackContainers(state, client or res.docker_client())
    lb_ports: dict[str, int] = state.extra.get("openstack", {}).get("lb_ports", {})
    fronted = {f.service: f"http://127.0.0.1:{lb_ports[f.name]}{f.check}"
               for f in profile.FRONTENDS if f.name in lb_ports}
    health = {}
    for host in state.hosts.values():
        for service in host.services:
            status = cloud.health(host.name, service)
            if status == "running" and service in fronted:
                try:
                    status = "ok" if http_ok(fronted[service], timeout=3) else "bad"
                except OSError as exc:
                    status = f"bad ({type(exc).__name__})"
            health[(host.name, service)] = status
    return health

"""``OpenStackOps``: the executor's ``CloudOps`` for the openstack profile (real Keystone,
Placement and Nova on Docker, from ``rollgate up --cloud openstack``).

Interface::

    ops = OpenStackOps(state, target_release="2026.2")   # a deployed openstack run
    Executor(plan, ops, journal, timeline).run()         # plan: harness.clouds.openstack.plan

What each operation does (the real tools, in FINDINGS' order):

- ``upgrade_check``: ``nova-status upgrade check`` in a one-off of the target
  image. Exit 1 whose only warning is ``hw_machine_type unset`` (libvirt-only:
  the fake driver has no machine type) is a pass, and the report says so.
- ``db_expand``: one-offs of the NEW image, in parallel, while the old services
  run: ``keystone-manage db_sync --expand`` then ``--migrate``; ``placement-manage
  db sync``; ``nova-manage api_db sync`` then ``db sync``.
- ``pin_rpc_versions``: checks that every nova service runs with
  ``[upgrade_levels] compute = auto`` (the nova.conf template sets it from the start).
- ``replace_service``: start the new release's container (same host name,
  volumes and network name), wait until it is ready, drain the old one's HAProxy
  server (API services; not with ``api_drain=False``, the policy's switch that
  shows what the drain protects against), ``docker stop -t stop_timeout`` the
  old one (SIGTERM, then SIGKILL) and remove it, its log kept.
- ``drain_api`` / ``undrain_api``: every fronted API container on the host,
  through HAProxy's runtime API.
- ``disable_compute``, ``enable_compute``, ``list_instances``, ``live_migrate``:
  openstacksdk as the admin, through the load balancer; a migration is done when
  the server is ACTIVE elsewhere and its Placement allocation followed it.
- ``unpin_rpc_versions``: SIGHUP to nova-api, nova-conductor and nova-scheduler
  (they recompute the compute RPC version from the services' minimum).
- ``online_data_migrations``: ``nova-manage db online_data_migrations
  --max-count N`` in the conductor at the target release (exit 1: more to do).
- ``db_contract``: ``keystone-manage db_sync --contract`` in a one-off of the new image.
- ``health_gate``: ``harness.clouds.openstack.health`` (what it polls for).

"Ready" for a new container, polled, never slept: an API service's HAProxy
server is UP by its own health check; a nova RPC service (conductor, scheduler,
compute) logged ``Starting <topic> node`` and wrote its release's service
version into its row of nova's ``services`` table (its start reached the
database, through the conductor for a compute); the Neutron stand-in answers
inside its container. A container that exits while waited on fails the
operation at once, with its last log lines.
"""
from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable
from typing import Any

from harness.backends import docker_resources as res
from harness.clouds import openstack as profile
from harness.clouds.nova_compute import AdminConnection, ComputeStyle, NovaCompute, poll_until
from harness.clouds.openstack.containers import OpenStackContainers
from harness.clouds.openstack.health import (
    NOVA_RPC,
    POLL,
    OpenStackHealthGate,
    check_report,
    nova_conf_level,
    nova_service_versions,
    tail,
)
from harness.clouds.openstack.lb import FRONTED, ReleaseServers
from harness.executor.ops import CheckReport, OperationFailed
from harness.runstate import RunState

log = logging.getLogger("harness.clouds.openstack.ops")

#: seconds; a release's service imports for 5-60 s on a loaded 2-core machine
SERVICE_READY_TIMEOUT = 300.0
ONEOFF_TIMEOUT = 600.0
LB_DRAIN_TIMEOUT = 60.0
SERVICE_CHANGE_TIMEOUT = 60.0
LB_UP_TIMEOUT = 60.0
#: HTTP services -> the path that answers without a token (the load balancer's checks)
HTTP_CHECK = {**{f.service: f.check for f in profile.FRONTENDS}, "neutron": "/v2.0/networks"}
#: what reads ``[upgrade_levels]`` and sends to computes: reloaded to drop the pin
COMPUTE_RPC_SENDERS = ("nova-api", "nova-conductor", "nova-scheduler")
#: what each sender logs when a SIGHUP has reloaded it
RELOAD_MARK = {"nova-api": "Booting worker", "nova-conductor": "Starting conductor node",
               "nova-scheduler": "Starting scheduler node"}
NOVA_SERVICES = ("nova-api", *NOVA_RPC)
SCHEDULE_TIMEOUT = 60.0  # a server the scheduler is placing gets its host within seconds
#: OpenStack's side of the shared nova-style compute operations (harness.clouds.nova_compute):
#: nova-compute, 60 s for a status change, a migrating server re-read every POLL / 2 and "not
#: started yet" for 5 s (a loaded 2-core machine), only a 404 means a server is gone.
COMPUTE_STYLE = ComputeStyle(binary="nova-compute", listing="`compute service list`",
                             change_timeout=SERVICE_CHANGE_TIMEOUT, settle_poll=POLL / 2, settle_grace=5.0,
                             gone_when_deleting=False)


def _count(container: Any, mark: str) -> int:
    return int(container.logs().decode(errors="replace").count(mark))


class OpenStackOps(AdminConnection, OpenStackHealthGate):
    """The operations of a rolling upgrade, done on a deployed openstack run."""

    def __init__(self, state: RunState, client: Any | None = None, *, target_release: str,
                 cloud: Any | None = None, lb: Any | None = None,
                 connect: Callable[[], Any] | None = None, api_drain: bool = True) -> None:
        self.state = state
        self.target_release = target_release
        self.api_drain = api_drain  # False: the old API server is stopped while HAProxy still uses it
        self.cloud: Any = cloud or OpenStackContainers(state, client or res.docker_client())
        if lb is None:
            from harness.backends.haproxy import RuntimeAPI

            lb = RuntimeAPI(self.cloud.runtime_dir("lb") / "admin.sock")
        self.lb = ReleaseServers(lb)
        self._connect = connect or self._default_connect
        self._conn: Any = None
        controllers = [n for n, h in state.hosts.items() if "controller" in h.roles]
        if not controllers:
            raise ValueError(f"run {state.run_id} has no controller host")
        self.controller = controllers[0]
        self.computes = tuple(n for n, h in state.hosts.items() if "compute" in h.roles)
        lb_ports: dict[str, int] = state.extra.get("openstack", {}).get("lb_ports", {})
        self.api_checks = {f.service: f"http://127.0.0.1:{lb_ports[f.name]}{f.check}"
                           for f in profile.FRONTENDS if f.name in lb_ports}
        self.nova = NovaCompute(self.conn, COMPUTE_STYLE, self._wait, self._verify_moved, log)

    # --- plumbing ---------------------------------------------------------

    def _wait(self, operation: str, check: Callable[[], str | None], timeout: float,
              evidence: Callable[[], str] = lambda: "", interval: float = POLL) -> None:
        """Poll ``check`` (None = done, else what is still wrong) until ``timeout``; an
        OperationFailed ends the wait at once, another exception drops the connection."""
        poll_until(operation, check, timeout, interval=interval, evidence=evidence,
                   on_error=self.reset_conn, passthrough=(OperationFailed,))

    def _oneoffs(self, operation: str, commands: dict[str, tuple[str, str]], release: str) -> None:
        """Run one-offs of ``release``'s image in parallel; OperationFailed naming each that failed."""
        def run(name: str, like: str, shell: str) -> tuple[str, int, str, float]:
            started = time.monotonic()
            spec = profile.container_spec(self.controller, like, release)
            code, output = self.cloud.run_oneoff_result(spec, name, shell, ONEOFF_TIMEOUT, kind="upgrade")
            return name, code, output, time.monotonic() - started

        with concurrent.futures.ThreadPoolExecutor(len(commands), thread_name_prefix="os-oneoff") as pool:
            results = list(pool.map(lambda item: run(item[0], *item[1]), commands.items()))
        failed = [(name, code, output) for name, code, output, _ in results if code != 0]
        for name, code, _, took in results:
            log.info("%s: %s (%s) exited %d after %.1fs", operation, name, release, code, took)
        if failed:
            raise OperationFailed(operation, ", ".join(f"{n} exited {c}" for n, c, _ in failed),
                                  "\n".join(f"--- {n}\n{tail(o)}" for n, _, o in failed))

    # --- pre-check and schema -----------------------------------------------

    def upgrade_check(self) -> CheckReport:
        name, (like, shell) = profile.UPGRADE_CHECK
        spec = profile.container_spec(self.controller, like, self.target_release)
        code, output = self.cloud.run_oneoff_result(spec, name, shell, ONEOFF_TIMEOUT, kind="upgrade")
        report = check_report(code, output)
        log.info("upgrade check (%s): %s", self.target_release, report.detail.splitlines()[0])
        return report

    def db_expand(self, release: str) -> None:
        self._oneoffs("db-expand", profile.UPGRADE_EXPAND, release)

    def db_contract(self, release: str) -> None:
        self._oneoffs("db-contract", profile.UPGRADE_CONTRACT, release)

    def online_data_migrations(self, max_count: int) -> bool:
        command = ["nova-manage", "db", "online_data_migrations", "--max-count", str(max_count)]
        code, output = self.cloud.exec_result(self.controller, "nova-conductor", command, ONEOFF_TIMEOUT,
                                              release=self.target_release)
        if code not in (0, 1):
            raise OperationFailed("online-migrations", f"`{' '.join(command)}` exited {code}", tail(output))
        return bool(code == 1)

    # --- RPC pin --------------------------------------------------------------

    def _nova_containers(self, services: tuple[str, ...]) -> list[tuple[str, str, Any]]:
        """(host, service, container) of every running container of ``services``."""
        found = []
        for host, known in self.state.hosts.items():
            for service in known.services:
                if service in services:
                    found += [(host, service, c) for c in self.cloud.containers(host, service)
                              if c.status == "running"]
        return found

    def pin_rpc_versions(self, level: str) -> None:
        if level != "auto":
            raise OperationFailed("pin-rpc", f"level {level!r}: the openstack profile pins compute RPC "
                                  "with [upgrade_levels] compute = auto only (images/openstack/etc/"
                                  "nova.conf.tmpl); a fixed level needs a template change")
        wrong = []
        for host, service, container in self._nova_containers(NOVA_SERVICES):
            result = container.exec_run(["cat", "/etc/nova/nova.conf"])
            seen = nova_conf_level((result.output or b"").decode(errors="replace"))
            if seen != level:
                wrong.append(f"{host}/{service} ({container.name}): compute = {seen}")
        if wrong:
            raise OperationFailed("pin-rpc", "[upgrade_levels] is not compute = auto in: " + "; ".join(wrong))

    def unpin_rpc_versions(self) -> None:
        """SIGHUP: each sender drops its cached minimum service version (FINDINGS). Done when
        each has reloaded: gunicorn booted new nova-api workers, and the conductor and the
        scheduler started their service again (nova 2026.2's cotyledon respawns its worker,
        2026.1's oslo.service restarts the service in place: both log ``Starting <topic> node``).

        Only when a row of nova's ``services`` table is at the target's version: before
        that, the minimum the senders computed has not changed and there is nothing to
        drop (the inverse of ``pin_rpc_versions``, which changed nothing). It matters:
        nova 2026.1's conductor logs ``Caught SIGHUP, handling`` and never starts its
        service again (seen in the e2e test's rollback), as it ignores SIGTERM."""
        target = profile.NOVA_SERVICE_VERSION[self.target_release]
        if target not in self.service_versions().values():
            log.info("unpin: no nova service at %s (version %d) yet; the senders' minimum is "
                     "unchanged, nothing to reload", self.target_release, target)
            return
        targets = self._nova_containers(COMPUTE_RPC_SENDERS)
        before = {c.name: _count(c, RELOAD_MARK[service]) for _, service, c in targets}
        for host, service, container in targets:
            log.info("SIGHUP %s/%s (%s)", host, service, container.name)
            container.kill(signal="SIGHUP")

        def reloaded() -> str | None:
            for host, service, container in targets:
                container.reload()
                if container.status != "running":
                    raise OperationFailed("unpin-rpc", f"{host}/{service} exited after SIGHUP",
                                          tail(container.logs(tail=30).decode(errors="replace")))
                if _count(container, RELOAD_MARK[service]) <= before[container.name]:
                    return f"{host}/{service} has not reloaded yet (no new {RELOAD_MARK[service]!r})"
            return self._api_problem("nova-api") or self._nova_services_problem()

        self._wait("unpin-rpc", reloaded, SERVICE_READY_TIMEOUT)

    # --- services -------------------------------------------------------------

    def replace_service(self, host: str, service: str, release: str, stop_timeout: float) -> None:
        spec = profile.container_spec(host, service, release)
        existing = self.cloud.containers(host, service)
        new = [c for c in existing if c.labels.get(res.LABEL_RELEASE) == release]
        old = [c for c in existing if c.labels.get(res.LABEL_RELEASE) != release]
        for stale in [c for c in new if c.status != "running"]:  # left by a crash: start afresh
            stale.remove(force=True)
            new.remove(stale)
        started = time.monotonic()
        container = new[0] if new else self.cloud.start(spec)
        self._wait_ready(host, service, release, container)
        ready = time.monotonic() - started
        for previous in old:
            previous_release = previous.labels.get(res.LABEL_RELEASE, "?")
            drained = 0.0
            if service in FRONTED and previous.status == "running" and self.api_drain:
                drained = self.lb.drain(service, previous_release, LB_DRAIN_TIMEOUT)
            stopped = self.cloud.retire(previous, stop_timeout)
            log.info("%s/%s: %s ready in %.1fs; %s drained in %.1fs, stopped in %.1fs", host, service,
                     release, ready, previous_release, drained, stopped)
        self.state.hosts[host].services[service].release = release
        self.state.save()

    def _wait_ready(self, host: str, service: str, release: str, container: Any) -> None:
        def exited() -> str | None:
            container.reload()
            if container.status in ("exited", "dead"):
                return f"{container.name} exited (code {container.attrs.get('State', {}).get('ExitCode')})"
            return None

        def logs() -> str:
            return tail(container.logs(tail=40).decode(errors="replace"), 40)

        def ready() -> str | None:
            stopped = exited()
            if stopped:
                raise OperationFailed("replace-service", f"{host}/{service} -> {release}: {stopped}", logs())
            if service in NOVA_RPC:
                return self._nova_started(host, service, release, container)
            if service in HTTP_CHECK:
                return self._answers_inside(host, service, release)
            return None

        self._wait("replace-service", ready, SERVICE_READY_TIMEOUT, logs)
        if service in FRONTED:  # its own health check passes in HAProxy before the old one drains
            try:
                self.lb.wait_up(service, release, LB_UP_TIMEOUT, abort=exited)
            except OperationFailed as exc:
                raise OperationFailed("replace-service", f"{host}/{service} -> {release}: {exc.problem}",
                                      logs()) from exc

    def _answers_inside(self, host: str, service: str, release: str) -> str | None:
        """The service's HTTP check, asked inside its container (before HAProxy is told)."""
        url = f"http://127.0.0.1:{profile.PORTS[service]}{HTTP_CHECK[service]}"
        probe = ["python", "-c", f"import urllib.request as u; u.urlopen({url!r}, timeout=3)"]
        code, output = self.cloud.exec_result(host, service, probe, 15, release=release)
        return None if code == 0 else f"{host}/{service} {release} not answering {url}: {tail(output, 1)}"

    def _nova_started(self, host: str, service: str, release: str, container: Any) -> str | None:
        topic = NOVA_RPC[service]
        if f"Starting {topic} node" not in container.logs().decode(errors="replace"):
            return f"{host}/{service} {release} has not logged 'Starting {topic} node' yet"
        want = profile.NOVA_SERVICE_VERSION[release]
        seen = self.service_versions().get((host, service))
        return None if seen == want else f"{host}/{service} service version is {seen}, not {want} yet"

    def service_versions(self) -> dict[tuple[str, str], int]:
        return nova_service_versions(self.cloud)

    # --- load balancer ----------------------------------------------------------

    def _fronted_on(self, host: str) -> list[tuple[str, str]]:
        """(service, release) of every running fronted container on ``host``."""
        return [(service, c.labels.get(res.LABEL_RELEASE, ""))
                for service in self.state.hosts[host].services if service in FRONTED
                for c in self.cloud.containers(host, service) if c.status == "running"]

    def drain_api(self, host: str) -> None:
        for service, release in self._fronted_on(host):
            self.lb.drain(service, release, LB_DRAIN_TIMEOUT)

    def undrain_api(self, host: str) -> None:
        for service, release in self._fronted_on(host):
            self.lb.wait_up(service, release, SERVICE_READY_TIMEOUT)

    # --- computes ---------------------------------------------------------------

    def _compute_service(self, host: str) -> Any:
        return self.nova.service(host)

    def disable_compute(self, host: str, reason: str) -> None:
        self.nova.disable(host, reason)

    def enable_compute(self, host: str) -> None:
        self.nova.enable(host)

    def _servers(self) -> list[Any]:
        return self.nova.servers()

    def list_instances(self, host: str) -> list[str]:
        """Servers on ``host``, once every server still being scheduled has a host.

        Disabling a compute stops new placements on it, not the ones already decided:
        a server the scheduler sent to ``host`` just before has no host yet, lands there
        after a plain listing, and its build dies with the swapped nova-compute (seen:
        ERROR under the traffic's create/delete cycles). So the servers in BUILD with
        no host are waited for (bounded), then the host's servers are listed."""
        unplaced = {s.id for s in self._servers() if s.status == "BUILD" and not s.compute_host}

        def placed() -> str | None:
            waiting = [s.id for s in self._servers() if s.id in unplaced
                       and s.status == "BUILD" and not s.compute_host]
            return f"{len(waiting)} server(s) still being scheduled: {', '.join(waiting[:3])}" if waiting \
                else None

        if unplaced:
            try:
                self._wait("list-instances", placed, SCHEDULE_TIMEOUT)
            except OperationFailed as exc:  # a stuck scheduler is the health gate's to report
                log.warning("%s", exc)
        return sorted(s.id for s in self._servers() if s.compute_host == host)

    def live_migrate(self, instance: str, source: str, timeout: float) -> str:
        return self.nova.live_migrate(instance, source, timeout)

    def _verify_moved(self, server: Any, source: str) -> str:
        """Its Placement allocation followed it to the new host's resource provider."""
        target = str(server.compute_host)

        def allocated() -> str | None:
            where = self.allocation_hosts(server.id)
            return None if where == [target] else f"{server.id}'s allocation is on {where}, not [{target}]"

        self._wait("live-migrate", allocated, SERVICE_CHANGE_TIMEOUT)
        log.info("live-migrated %s: %s -> %s", server.id, source, target)
        return target

    def allocation_hosts(self, server_id: str) -> list[str]:
        """Names of the resource providers holding the server's Placement allocation."""
        placement = self.conn().placement
        names = {p.id: p.name for p in placement.resource_providers()}
        answer = placement.get(f"/allocations/{server_id}", microversion="1.28").json()
        return sorted(names.get(rp, rp) for rp in answer.get("allocations", {}))

    def cold_migrate(self, instance: str, source: str, timeout: float) -> str:
        raise OperationFailed("cold-migrate", "not wired for the openstack profile; use instances: "
                              "live-migrate (the fake driver live-migrates) or leave")

    def reboot_host(self, host: str, timeout: float) -> None:
        raise OperationFailed("reboot-host", "rolling reboots are not wired for the openstack profile")

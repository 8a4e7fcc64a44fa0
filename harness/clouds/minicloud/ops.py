"""``MinicloudOps``: the executor's ``CloudOps`` for a minicloud on any backend.

Interface (for the executor, ``rollgate upgrade`` and ``rollgate run``)::

    ops = MinicloudOps(backend, state, scenario)   # a deployed run + its scenario
    Executor(plan, ops, journal, timeline).run()

``backend`` is any ``harness.backends.base.Backend`` (process or Docker): the
ops reach hosts only through it (``replace_service``, ``reboot_host``,
``manage(..., release=)``, ``update_host_config``, ``signal_service``,
``lb_api``, ``address``, ``logs``). ``state`` is the run's ``RunState`` (hosts,
roles, services, ``clouds.yaml`` in its directory). ``scenario`` supplies the
upgrade's target release (the release ``unpin`` caps at and the code that runs
online data migrations); ``target_release=`` overrides it (a resumed run takes
it from its saved plan). Everything else is looked up in the cloud, as an
operator would: ``/healthz`` of each service, ``os-services`` and servers
through openstacksdk (via the load balancer when there is one), the data path
of each instance through its floating address.

Every method is idempotent and waits (poll with a timeout) until its effect is
visible, raising ``OperationFailed`` with the evidence otherwise; see
``harness.executor.ops``. The health gate's probes live in
``harness.clouds.minicloud.health``.
"""
from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

from harness.backends.base import Backend
from harness.clouds.minicloud import COMPUTE_BINARY
from harness.clouds.minicloud.health import CloudProbe, data_path_health, floating_endpoint, healthz
from harness.clouds.nova_compute import AdminConnection, ComputeStyle, NovaCompute, poll_until
from harness.executor.ops import CheckReport, ExpectedReleases, HealthReport, OperationFailed
from harness.runstate import RunState
from harness.scenario import DATA_PLANE_SERVICES, ROLE_SERVICES, Scenario

log = logging.getLogger("harness.clouds.minicloud.ops")

#: services that send RPC to compute agents: they honour ``upgrade_levels.compute``.
COMPUTE_RPC_SENDERS = ("conductor",)
#: minicloud services (haproxy and other system services are not minicloud's).
MINICLOUD_SERVICES = frozenset(s for services in ROLE_SERVICES.values() for s in services)
POLL = 0.1
SERVICE_READY_TIMEOUT = 30.0
LB_TIMEOUT = 30.0
#: minicloud's side of the shared nova-style compute operations (harness.clouds.nova_compute):
#: its agent's binary, 30 s for a status change, a migrating server re-read every POLL and
#: "not started yet" for 3 s, a server being deleted counts as gone.
COMPUTE_STYLE = ComputeStyle(binary=COMPUTE_BINARY, listing="os-services",
                             change_timeout=SERVICE_READY_TIMEOUT, settle_poll=POLL, settle_grace=3.0,
                             gone_when_deleting=True)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.splitlines()[-lines:])


#: controller services behind the load balancer that the plan does not drain for (RPC over HTTP)
LB_RPC_SERVICES = ("conductor", "scheduler")


class MinicloudOps(AdminConnection):
    """The operations of a rolling upgrade, done on a deployed minicloud."""

    def __init__(self, backend: Backend, state: RunState, scenario: Scenario | None = None, *,
                 target_release: str | None = None,
                 connect: Callable[[], Any] | None = None) -> None:
        if target_release is None and scenario is not None and scenario.upgrade is not None:
            target_release = scenario.upgrade.to_release
        if target_release is None:
            raise ValueError("MinicloudOps needs the upgrade's target release (scenario or target_release=)")
        self.backend = backend
        self.state = state
        self.target_release = target_release
        self._connect = connect or self._default_connect
        self._conn: Any = None
        self.services: dict[str, tuple[str, ...]] = {
            name: tuple(s for s in host.services if s in MINICLOUD_SERVICES)
            for name, host in state.hosts.items()}
        self.computes = tuple(n for n, h in state.hosts.items() if "compute" in h.roles)
        self.lb_hosts = tuple(n for n, h in state.hosts.items() if "lb" in h.roles)
        self.api_drain = scenario is None or scenario.upgrade is None or scenario.upgrade.policy.api_drain
        controllers = [n for n, h in state.hosts.items() if "conductor" in h.services]
        if not controllers:
            raise ValueError(f"run {state.run_id} has no host with a conductor: nowhere to run manage")
        self.manage_host = controllers[0]
        self.probe = CloudProbe(self.services, self.computes, backend.service_address, self.conn,
                                self.reset_conn)
        self.nova = NovaCompute(self.conn, COMPUTE_STYLE, self._wait, self._verify_moved, log,
                                self._migration_evidence)

    # --- plumbing ---------------------------------------------------------

    def _manage(self, operation: str, *args: str, release: str | None = None,
                ok: tuple[int, ...] = (0,)) -> Any:
        result = self.backend.manage(self.manage_host, *args, release=release, timeout=120.0)
        if result.rc not in ok:
            raise OperationFailed(operation, f"manage {' '.join(args)} exited {result.rc}",
                                  _tail((result.stderr + "\n" + result.stdout).strip()))
        return result

    def _healthz(self, host: str, service: str) -> dict[str, Any] | None:
        try:
            return healthz(self.backend.service_address(host, service))
        except Exception:
            return None

    def _wait(self, operation: str, check: Callable[[], str | None], timeout: float,
              evidence: Callable[[], str] = lambda: "") -> None:
        """Poll ``check`` (None = done, else what is still wrong) until ``timeout``; every
        exception is a problem to wait out (an OperationFailed too)."""
        poll_until(operation, check, timeout, interval=POLL, evidence=evidence)

    # --- pre-check and schema -----------------------------------------------

    def upgrade_check(self) -> CheckReport:
        result = self.backend.manage(self.manage_host, "status", "upgrade-check", timeout=120.0)
        level = {0: "ok", 1: "warning"}.get(result.rc, "failure")
        return CheckReport(level, (result.stdout + result.stderr).strip())

    def db_expand(self, release: str) -> None:
        self._manage("db-expand", "db", "expand", release=release)

    def db_contract(self, release: str) -> None:
        self._manage("db-contract", "db", "contract", release=release)

    def online_data_migrations(self, max_count: int) -> bool:
        result = self._manage("online-migrations", "db", "online-data-migrations",
                              "--max-count", str(max_count), release=self.target_release, ok=(0, 1))
        return bool(result.rc == 1)

    def db_version(self) -> dict[str, str]:
        """``{"expand": rev, "contract": rev}`` as ``manage db version`` reports them."""
        result = self._manage("db-version", "db", "version")
        heads = {}
        for line in result.stdout.splitlines():
            key, _, value = line.partition(":")
            if key in ("expand", "contract"):
                heads[key] = value.strip()
        return heads

    # --- RPC pin ------------------------------------------------------------

    def pin_rpc_versions(self, level: str) -> None:
        self._set_upgrade_level(level, "pin-rpc")

    def unpin_rpc_versions(self) -> None:
        """Cap at the target release: every compute speaks it once the pin comes off."""
        self._set_upgrade_level(self.target_release, "unpin-rpc")

    def _set_upgrade_level(self, level: str, operation: str) -> None:
        for host, services in self.services.items():
            senders = [s for s in services if s in COMPUTE_RPC_SENDERS]
            if not senders:
                continue
            self.backend.update_host_config(host, {"upgrade_levels": {"compute": level}})
            for service in senders:
                self._reload(host, service, level, operation)

    def _reload(self, host: str, service: str, level: str, operation: str) -> None:
        """SIGHUP where the service reloads on it (its /healthz shows the level), else restart."""
        answer = self._healthz(host, service)
        if answer is not None and answer.get("upgrade_levels", {}).get("compute") == level:
            return
        if answer is not None and "upgrade_levels" in answer:
            self.backend.signal_service(host, service, signal.SIGHUP)

            def reloaded() -> str | None:
                now = self._healthz(host, service)
                seen = None if now is None else now.get("upgrade_levels", {}).get("compute")
                return None if seen == level else f"{host}/{service} upgrade_levels.compute is {seen}"

            self._wait(operation, reloaded, SERVICE_READY_TIMEOUT,
                       lambda: _tail(self.backend.logs(host, service)))
            return
        # Code without SIGHUP reload (or not answering): a graceful restart at its release.
        release = (answer or {}).get("release") or self.state.hosts[host].services[service].release
        drained = bool(self.lb_hosts) and "controller" in self.state.hosts[host].roles
        if drained:
            self.drain_api(host)
        self.backend.replace_service(host, service, release, 15.0)
        if drained:
            self.undrain_api(host)

    # --- services -------------------------------------------------------------

    def replace_service(self, host: str, service: str, release: str, stop_timeout: float) -> None:
        answer = self._healthz(host, service)
        if answer is not None and answer.get("release") == release:
            log.info("%s/%s already runs %s: nothing to replace", host, service, release)
            return
        # The load balancer fronts the conductors and schedulers too (haproxy.FRONTENDS), and
        # the plan drains a controller only for its API swap: a build cast to a conductor that
        # was being stopped came back 502 (a traffic server in ERROR, seen in CI). With another
        # controller to take the traffic, drain this one first, as for the API.
        drained = (service in LB_RPC_SERVICES and self.api_drain and bool(self.lb_hosts)
                   and sum(1 for s in self.services.values() if service in s) > 1)
        if drained:
            self.drain_api(host)
        try:
            self.backend.replace_service(host, service, release, stop_timeout)
        except Exception as exc:
            raise OperationFailed("replace-service", f"{host}/{service} -> {release}: {exc}",
                                  _tail(self.backend.logs(host, service))) from exc
        if drained:  # (after a failed swap it stays drained: the rollback's swap undrains it)
            self.undrain_api(host)

        def runs_release() -> str | None:
            now = self._healthz(host, service)
            seen = None if now is None else now.get("release")
            return None if seen == release else f"{host}/{service} /healthz reports {seen}"

        self._wait("replace-service", runs_release, SERVICE_READY_TIMEOUT,
                   lambda: _tail(self.backend.logs(host, service)))

    # --- load balancer ----------------------------------------------------------

    def _lb_call(self, operation: str, action: Callable[[Any], object]) -> None:
        for lb in self.lb_hosts:
            try:
                action(self.backend.lb_api(lb))
            except OperationFailed:
                raise
            except Exception as exc:
                raise OperationFailed(operation, f"load balancer {lb}: {exc}") from exc

    def drain_api(self, host: str) -> None:
        self._lb_call("drain-api", lambda lb: lb.drain(host, timeout=LB_TIMEOUT))

    def undrain_api(self, host: str) -> None:
        def undrain(lb: Any) -> None:
            lb.undrain(host)

            def up() -> str | None:
                down = {k: v for k, v in lb.status(host).items() if not v.startswith("UP")}
                return None if not down else f"{host} in haproxy: {down}"

            self._wait("undrain-api", up, LB_TIMEOUT)

        self._lb_call("undrain-api", undrain)

    # --- computes ---------------------------------------------------------------

    def _agent(self, host: str) -> Any:
        return self.nova.service(host)

    def disable_compute(self, host: str, reason: str) -> None:
        self.nova.disable(host, reason)

    def enable_compute(self, host: str) -> None:
        self.nova.enable(host)

    def list_instances(self, host: str) -> list[str]:
        return sorted(s.id for s in self.nova.servers(host))

    def live_migrate(self, instance: str, source: str, timeout: float) -> str:
        return self.nova.live_migrate(instance, source, timeout)

    def _verify_moved(self, server: Any, source: str) -> str:
        """The instance answers on its data path from its new host."""
        endpoint = floating_endpoint(server)
        if endpoint is None:
            raise OperationFailed("live-migrate", f"{server.id} has no data path address after moving")
        self._wait("live-migrate", lambda: None if data_path_health(endpoint) else "no answer",
                   SERVICE_READY_TIMEOUT)
        log.info("live-migrated %s: %s -> %s", server.id, source, server.compute_host)
        return str(server.compute_host)

    def _migration_evidence(self, instance: str) -> str:
        try:
            rows = [m for m in self.conn().compute.migrations() if m.server_id == instance]
            return "\n".join(f"migration {m.id}: {m.source_compute} -> {m.dest_compute} {m.status}"
                             for m in rows[-5:])
        except Exception as exc:
            return f"(os-migrations unavailable: {exc})"

    def cold_migrate(self, instance: str, source: str, timeout: float) -> str:
        raise OperationFailed("cold-migrate", "minicloud has no cold migration (no resize/migrate "
                              "action); use instances: live-migrate or leave")

    def reboot_host(self, host: str, timeout: float) -> None:
        on_host = self.list_instances(host) if host in self.computes else []
        try:
            self.backend.reboot_host(host)
        except Exception as exc:
            raise OperationFailed("reboot-host", f"{host}: {exc}") from exc

        def back() -> str | None:
            down = [s for s in self.services.get(host, ()) if self._healthz(host, s) is None]
            if down:
                return f"{host}: {', '.join(down)} not answering /healthz"
            if host in self.computes and self._agent(host).state != "up":
                return f"{host}/compute-agent not up in os-services"
            for server_id in on_host:
                server = self.conn().compute.get_server(server_id)
                endpoint = floating_endpoint(server)
                if server.status != "ACTIVE" or endpoint is None:
                    return f"server {server_id} is {server.status}"
                data_path_health(endpoint)
            return None

        self._wait("reboot-host", back, timeout, lambda: "\n".join(
            f"--- {s}\n{_tail(self.backend.logs(host, s), 5)}" for s in self.services.get(host, ())))

    # --- health gate ------------------------------------------------------------

    def health_gate(self, expected: ExpectedReleases, timeout: float) -> HealthReport:
        deadline = time.monotonic() + timeout
        self.probe.begin()
        while True:
            problems = self.probe.problems(expected)
            if not problems:
                return HealthReport(True)
            # A problem the cloud will not mend (CloudProbe.terminal: a server stuck in ERROR, a
            # data path broken while every service is healthy) fails the gate now: waiting out the
            # timeout only delays the verdict (issue 11, fail fast).
            if self.probe.terminal or time.monotonic() >= deadline:
                return HealthReport(False, tuple(problems))
            time.sleep(POLL * 2)

    def releases(self) -> dict[str, dict[str, str | None]]:
        """host -> service -> the release its /healthz reports now (None: not answering)."""
        out: dict[str, dict[str, str | None]] = {}
        for host, services in self.services.items():
            for service in services:
                answer = self._healthz(host, service)
                out.setdefault(host, {})[service] = None if answer is None else answer.get("release")
        return out

    def expected_everywhere(self, release: str) -> Mapping[str, Mapping[str, str]]:
        """Every upgradable service at ``release`` (hypervisor and datapath never change)."""
        return {h: {s: release for s in services if s not in DATA_PLANE_SERVICES}
                for h, services in self.services.items()
                if any(s not in DATA_PLANE_SERVICES for s in services)}

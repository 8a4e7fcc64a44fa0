"""The openstack profile's health gate and what it reads: nova's service versions, its
``nova-status upgrade check`` report and its rendered ``[upgrade_levels]``.

``OpenStackHealthGate`` is the part of ``OpenStackOps`` that judges the cloud
(split out to keep each module readable): it polls until each service's only
running container is at the expected release and image, MariaDB, RabbitMQ and
HAProxy run, the four APIs answer through the load balancer, every nova service
is up and no server is in ERROR.
"""
from __future__ import annotations

import configparser
import re
import time
from typing import Any

from harness.backends import docker_resources as res
from harness.clouds import openstack as profile
from harness.executor.ops import CheckReport, ExpectedReleases, HealthReport, OperationFailed
from harness.runstate import RunState
from harness.waiting import http_ok

POLL = 1.0  # seconds between passes of the gate, and OpenStackOps' poll interval
#: nova services with an RPC server and a row in ``services``: service -> topic
NOVA_RPC = {"nova-conductor": "conductor", "nova-scheduler": "scheduler", "nova-compute": "compute"}
SYSTEM_SERVICES = (("db", "mariadb"), ("mq", "rabbitmq"), ("lb", "haproxy"))
#: nova-status's check that only libvirt can pass (the fake driver has no machine type)
MACHINE_TYPE_CHECK = "hw_machine_type unset"


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.splitlines()[-lines:])


def nova_service_versions(cloud: Any) -> dict[tuple[str, str], int]:
    """(host, binary) -> ``version`` of nova's ``services`` rows (not deleted), read from MariaDB
    through ``cloud`` (an ``OpenStackContainers``)."""
    query = "SELECT host, `binary`, version FROM nova.services WHERE deleted = 0"
    code, output = cloud.exec_result("db", "mariadb", ["mariadb", "-N", "-B", "-e", query], 30)
    if code != 0:
        raise OperationFailed("service-versions", f"mariadb exited {code}", tail(output))
    versions = {}
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].strip().isdigit():
            versions[(parts[0], parts[1])] = int(parts[2])
    return versions


def check_report(code: int, output: str) -> CheckReport:
    """``nova-status upgrade check``'s exit code and table as a ``CheckReport``.

    0 success, 1 warning, 2 failure (nova's convention). Exit 1 whose only
    warning is ``hw_machine_type unset`` is ``ok``: that check inspects
    libvirt guests' machine types, which the fake driver does not have.
    """
    results = re.findall(r"\|\s*Check:\s*(.+?)\s*\|\s*\n\s*\|\s*Result:\s*(\w+)", output)
    warnings = [name for name, result in results if result.lower() == "warning"]
    failures = [name for name, result in results if result.lower() == "failure"]
    summary = f"nova-status upgrade check exited {code}; {len(results)} checks"
    if code == 0:
        return CheckReport("ok", f"{summary}, all passed")
    if code == 1 and warnings == [MACHINE_TYPE_CHECK]:
        return CheckReport("ok", f"{summary}: passed. The only warning is {MACHINE_TYPE_CHECK!r}, a "
                                 "libvirt-only check the fake virt driver cannot satisfy (no machine "
                                 "type), so exit 1 counts as a pass here")
    if code == 1:
        return CheckReport("warning", f"{summary}; warnings: {', '.join(warnings) or '?'}\n{tail(output)}")
    return CheckReport("failure", f"{summary}; failures: {', '.join(failures) or '?'}\n{tail(output, 40)}")


def nova_conf_level(text: str) -> str | None:
    """``[upgrade_levels] compute`` of a rendered nova.conf (None when unset)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(text)
    return parser.get("upgrade_levels", "compute", fallback=None)


class OpenStackHealthGate:
    """The health gate of ``OpenStackOps``, a mixin: it reads the ops' run state, containers,
    load-balancer checks and admin connection."""

    state: RunState
    cloud: Any
    computes: tuple[str, ...]
    api_checks: dict[str, str]
    _conn: Any

    def conn(self) -> Any:
        raise NotImplementedError

    def _servers(self) -> list[Any]:
        raise NotImplementedError

    # --- health gate ------------------------------------------------------------

    def health_gate(self, expected: ExpectedReleases, timeout: float) -> HealthReport:
        deadline = time.monotonic() + timeout
        while True:
            problems = self.problems(expected)
            if not problems:
                return HealthReport(True)
            if time.monotonic() >= deadline:
                return HealthReport(False, tuple(problems))
            time.sleep(POLL)

    def problems(self, expected: ExpectedReleases) -> list[str]:
        """Everything that keeps the cloud from being healthy at ``expected`` now (one line each)."""
        problems: list[str] = []
        listing = self.cloud.service_containers()  # one engine call for the whole pass
        for host, services in expected.items():
            for service, release in services.items():
                mine = [c for c in listing if c.labels.get(res.LABEL_HOST) == host
                        and c.labels.get(res.LABEL_SERVICE) == service]
                problems += self._container_problems(host, service, release, mine)
        for host, service in SYSTEM_SERVICES:
            if host in self.state.hosts and self.cloud.health(host, service) not in ("running", "healthy"):
                problems.append(f"{host}/{service} is {self.cloud.health(host, service)}")
        for service in self.api_checks:
            problem = self._api_problem(service)
            if problem:
                problems.append(problem)
        for probe in (self._nova_services_problem, self._servers_problem):
            try:
                problem = probe()
            except Exception as exc:
                self._conn = None
                problem = f"{probe.__name__.strip('_')}: {type(exc).__name__}: {exc}"
            if problem:
                problems.append(problem)
        return problems

    def _container_problems(self, host: str, service: str, release: str, containers: list[Any]) -> list[str]:
        running = [c for c in containers if c.status == "running"]
        at = [c for c in running if c.labels.get(res.LABEL_RELEASE) == release]
        problems = []
        if not at:
            problems.append(f"{host}/{service}: no running container at {release}")
        for container in at:
            image = container.attrs.get("Config", {}).get("Image")
            if image != profile.openstack_tag(release):
                problems.append(f"{host}/{service}: {container.name} runs {image}, not "
                                f"{profile.openstack_tag(release)}")
        others = [c.name for c in running if c not in at]
        if others:
            problems.append(f"{host}/{service}: also running {', '.join(others)}")
        return problems

    def _api_problem(self, service: str) -> str | None:
        url = self.api_checks.get(service)
        if url is None:
            return None
        try:
            return None if http_ok(url, timeout=5) else f"{service} API through the lb: not 2xx ({url})"
        except OSError as exc:
            return f"{service} API through the lb: {exc} ({url})"

    def _nova_services_problem(self) -> str | None:
        rows = [s for s in self.conn().compute.services() if s.binary in NOVA_RPC]
        down = [f"{s.binary}@{s.host}" for s in rows if s.state != "up"]
        missing = [h for h in self.computes
                   if not any(s.host == h and s.binary == "nova-compute" for s in rows)]
        if down or missing:
            return f"nova services down: {', '.join(down)}" + (
                f"; no nova-compute on {', '.join(missing)}" if missing else "")
        return None

    def _servers_problem(self) -> str | None:
        broken = [s.id for s in self._servers() if s.status == "ERROR"]
        return f"servers in ERROR: {', '.join(broken)}" if broken else None

    def releases(self) -> dict[str, dict[str, list[str]]]:
        """host -> service -> the releases of its running containers now."""
        out: dict[str, dict[str, list[str]]] = {}
        for host, known in self.state.hosts.items():
            for service, svc in known.services.items():
                if svc.release == profile.SYSTEM:
                    continue
                out.setdefault(host, {})[service] = sorted(
                    c.labels.get(res.LABEL_RELEASE, "?") for c in self.cloud.containers(host, service)
                    if c.status == "running")
        return out

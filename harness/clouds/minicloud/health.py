"""What "healthy" means for a minicloud, seen from outside: the health gate's probes.

Split from ``minicloud_ops`` so that each stays small. Every probe is one
black-box look (``/healthz`` of a service, ``os-services``, the server list,
a data path's ``GET /health``) and returns the problems it saw, one line
each; ``CloudProbe.problems`` runs them all once. The health gate polls that
until it comes back empty or its timeout runs out, and then reports the last
problems seen: the evidence of why the gate failed.

Fail fast (issue 11): some problems the cloud will not mend by waiting, and
the probe says which (``CloudProbe.terminal``), so the gate fails on them at
once instead of at its timeout (30 s forward, 30 s more in the rollback):

- a server seen in ERROR in ``TERMINAL_POLLS`` passes in a row;
- a server's data path broken (refused, timed out, or no address) for
  ``DATA_PATH_GRACE`` seconds while every service answered ``/healthz`` with
  its expected release and every compute agent was up: the agents that could
  repair it are running and have had several re-syncs to do so. Any service
  problem restarts that clock: a restart in progress is waited for in full.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.clouds.minicloud import COMPUTE_BINARY

#: per-request timeout of every probe: a hung service is a problem, not a wait.
PROBE_TIMEOUT = 2.0
#: passes in a row a server must be seen in ERROR before it is a terminal problem
TERMINAL_POLLS = 3
#: seconds a data path may stay broken while every service is healthy before it is a terminal
#: problem: minicloud's network agent re-syncs the datapath every 2 s and a compute agent restarts
#: its workloads when it starts, so this is four re-syncs. Measured: the health gates of 70 clean
#: catalog runs (a loaded machine) all settled within 0.9 s.
DATA_PATH_GRACE = 8.0
#: data paths probed at once (a pass with broken ones costs one timeout, not one per server)
DATA_PATH_WORKERS = 8


def get_json(url: str, timeout: float = PROBE_TIMEOUT) -> Any:
    """GET ``url`` and decode its JSON body (raises on transport errors and non-2xx)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def healthz(location: tuple[str, int], timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """The ``/healthz`` answer of the service at ``(ip, port)`` (raises when it does not answer).

    The location comes from ``backend.service_address``: the host's own
    address on the process backend, a published 127.0.0.1 port on Docker.
    """
    ip, port = location
    answer = get_json(f"http://{ip}:{port}/healthz", timeout)
    if not isinstance(answer, dict):
        raise ValueError(f"/healthz answered {answer!r}")
    return answer


def floating_endpoint(server: Any) -> str | None:
    """``ip:port`` of a server's data path: its public address + ``metadata.dataplane_port``."""
    port = (server.metadata or {}).get("dataplane_port")
    if not port:
        return None
    for addresses in (server.addresses or {}).values():
        for entry in addresses:
            if entry.get("addr"):
                return f"{entry['addr']}:{port}"
    return None


def data_path_health(endpoint: str, timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """The workload's ``GET /health`` through its floating address."""
    answer = get_json(f"http://{endpoint}/health", timeout)
    if not isinstance(answer, dict):
        raise ValueError(f"/health answered {answer!r}")
    return answer


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"unreachable ({exc.reason})"
    return f"{type(exc).__name__}: {exc}"


class CloudProbe:
    """One pass of every health check of a deployed minicloud.

    ``services`` maps host -> every minicloud service it runs; ``locate``
    resolves (host, service) to the (ip, port) the harness reaches it on
    (the backend's ``service_address``);
    ``conn`` returns an openstacksdk connection (through the load balancer
    when the topology has one, so "the API answers" is checked there).
    """

    def __init__(self, services: Mapping[str, tuple[str, ...]], computes: tuple[str, ...],
                 locate: Callable[[str, str], tuple[str, int]], conn: Callable[[], Any],
                 reset_conn: Callable[[], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.services = services
        self.computes = computes
        self.locate = locate
        self.conn = conn
        self.reset_conn = reset_conn
        self.clock = clock
        #: problems of the last pass the cloud will not mend by itself (see the module's doc): the
        #: health gate fails on them without waiting out its timeout.
        self.terminal: set[str] = set()
        self._errors: dict[str, int] = {}  # server in ERROR -> passes in a row
        self._broken: dict[str, float] = {}  # server id -> when its data path was first seen broken
                                              # with every service healthy (since then)

    def begin(self) -> None:
        """Forget what earlier passes saw: a new health gate starts its own clocks."""
        self.terminal, self._errors, self._broken = set(), {}, {}

    def problems(self, expected: Mapping[str, Mapping[str, str]]) -> list[str]:
        """Every problem seen now; empty when the cloud is healthy with these releases."""
        found = self.service_problems(expected)
        try:
            agents, errors, paths = self.api_problems()
        except Exception as exc:  # the API itself is down or failing: one problem, new token next time
            self.reset_conn()
            found.append(f"compute API through the load balancer: {_describe(exc)}")
            agents, errors, paths = [], [], {}
        settled = not found and not agents
        found += agents + errors + list(paths.values())
        self._judge(errors, paths, settled)
        return found

    def _judge(self, errors: list[str], paths: dict[str, str], settled: bool) -> None:
        """Which of this pass's problems are terminal, from how long they have lasted."""
        self._errors = {p: self._errors.get(p, 0) + 1 for p in errors}
        now = self.clock()
        self._broken = {server: self._broken.get(server, now) for server in paths} if settled else {}
        self.terminal = {p for p, passes in self._errors.items() if passes >= TERMINAL_POLLS}
        self.terminal |= {paths[server] for server, since in self._broken.items()
                          if now - since >= DATA_PATH_GRACE}

    def service_problems(self, expected: Mapping[str, Mapping[str, str]]) -> list[str]:
        """Every service answers ``/healthz``; the listed ones with their expected release."""
        found = []
        for host, services in self.services.items():
            for service in services:
                want = expected.get(host, {}).get(service)
                try:
                    answer = healthz(self.locate(host, service))
                except Exception as exc:
                    found.append(f"{host}/{service}: /healthz {_describe(exc)}")
                    continue
                if want is not None and answer.get("release") != want:
                    found.append(f"{host}/{service}: runs {answer.get('release')}, expected {want}")
        return found

    def api_problems(self) -> tuple[list[str], list[str], dict[str, str]]:
        """Compute agents up, no server in ERROR, every ACTIVE server's data path answering:
        (agent problems, servers in ERROR, server id -> its data path's problem)."""
        conn = self.conn()
        agents_found = []
        agents = {s.host: s for s in conn.compute.services() if s.binary == COMPUTE_BINARY}
        for host in self.computes:
            agent = agents.get(host)
            if agent is None:
                agents_found.append(f"{host}/compute-agent: not in os-services")
            elif agent.state != "up":
                agents_found.append(f"{host}/compute-agent: os-services state {agent.state}")
        errors, active = [], []
        for server in conn.compute.servers(details=True, all_projects=True):
            if server.status == "ERROR":
                fault = (server.fault or {}).get("message", "") if isinstance(server.fault, dict) else ""
                errors.append(f"server {server.id} ({server.name}) is in ERROR {fault}".rstrip())
            elif server.status == "ACTIVE":
                active.append(server)
        paths: dict[str, str] = {}
        if active:
            with ThreadPoolExecutor(min(DATA_PATH_WORKERS, len(active))) as pool:
                for server, problem in zip(active, pool.map(self._data_path_problem, active), strict=True):
                    if problem is not None:
                        paths[str(server.id)] = problem
        return agents_found, errors, paths

    def _data_path_problem(self, server: Any) -> str | None:
        endpoint = floating_endpoint(server)
        if endpoint is None:
            return f"server {server.id} ({server.name}): ACTIVE without a data path address"
        try:
            data_path_health(endpoint)
        except Exception as exc:
            return f"server {server.id} ({server.name}): data path {endpoint} {_describe(exc)}"
        return None

"""The cloud of a gate run with ``cloud: openstack``: real Keystone, Placement and Nova.

The same surface (``harness.clouds.base.DeployedCloud``) as ``GateCloud``
(minicloud), so ``harness.gate.run`` reads as one sequence of stages for
both: deployed by ``deploy_openstack`` (all or nothing), operated by ``OpenStackOps``, resources checked by
``OpenStackResourcePhases`` (servers, flavors, Placement allocations), the
API-down phase stops nova-api. What differs is how the end state is read:

- releases: the release label of each service's running container, checked
  against the image it runs (a service with no container, or two, is said);
- ``openstack.service-versions``: nova's ``services`` table, every row at the
  expected release's service version (72 for 2026.1, 74 for 2026.2), read
  from MariaDB, the value old and new services negotiate the RPC pin from;
- ``openstack.upgrade-check``: ``nova-status upgrade check`` of the release the
  cloud ends at, run in its conductor (exit 1 with only the libvirt
  machine-type warning is a pass, and the check's summary says so).

MariaDB and RabbitMQ are the test bed, not the cloud under test: their
containers are watched for the whole run (``infra_alive``), and a run during
which either stopped answering is an ERROR (``harness.infrastructure``), not a
FAIL, like the Docker engine going away.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends import docker_resources as res
from harness.clouds import openstack as profile
from harness.clouds.nova_compute import wait_compute_api
from harness.clouds.openstack.containers import OpenStackContainers
from harness.clouds.openstack.deploy import deploy_openstack
from harness.clouds.openstack.health import check_report, nova_service_versions
from harness.clouds.openstack.ops import OpenStackOps
from harness.clouds.openstack.resources import OpenStackResourcePhases
from harness.deploy import connect
from harness.executor.ops import CloudOps
from harness.resources import ResourceSpec
from harness.runstate import RunState
from harness.scenario import Scenario
from harness.timeline import Timeline
from harness.verdict import Check, Evidence, Releases

LOG = logging.getLogger(__name__)

CHECK_SERVICE_VERSIONS = "openstack.service-versions"
CHECK_UPGRADE_CHECK = "openstack.upgrade-check"
#: the test bed's services: their failure is the machine's, not the cloud's
INFRASTRUCTURE = (("db", "mariadb"), ("mq", "rabbitmq"))
UPGRADE_CHECK_TIMEOUT = 300.0
NO_DATAPLANE = ("no data plane: nova's fake virt driver runs no guest "
                "(instance state and Placement allocations are the resource checks)")


@dataclass
class OpenStackGateCloud:
    state: RunState
    containers: OpenStackContainers
    _probe: Any = None
    _stopped: list[Any] = field(default_factory=list)  # nova-api containers the API-down phase stopped

    # --- what the gate drives ---------------------------------------------------

    def ops(self, scenario: Scenario) -> CloudOps:
        assert scenario.upgrade is not None
        ops: CloudOps = OpenStackOps(self.state, self.containers.client,
                                     target_release=scenario.upgrade.to_release,
                                     api_drain=scenario.upgrade.policy.api_drain)
        return ops

    def connect(self) -> Any:
        return connect(self.state)

    def connect_demo(self) -> Any:
        return connect(self.state, "rollgate-demo")

    def resource_phases(self, run_dir: Path, spec: ResourceSpec,
                        timeline: Timeline) -> OpenStackResourcePhases:
        computes = [n for n, h in self.state.hosts.items() if "compute" in h.roles]
        return OpenStackResourcePhases(run_dir, self.connect, spec, computes, timeline)

    def compute_api_url(self) -> str:
        return self.state.endpoints.get("compute", "")

    def stop_compute_api(self) -> list[str]:
        """Stop nova-api (the controller's only compute API); return what was stopped."""
        stopped = []
        for container in self.containers.containers("controller", "nova-api"):
            if container.status == "running":
                container.stop(timeout=15)
                self._stopped.append(container)
                stopped.append(f"controller/nova-api ({container.name})")
        return stopped

    def start_compute_api(self) -> None:
        """Start nova-api again and wait until the public API answers 5 times in a row."""
        while self._stopped:
            self._stopped.pop(0).start()
        wait_compute_api(self.connect(), timeout=240.0, interval=0.5)  # nova-api imports for tens of s

    # --- the machine under the cloud ------------------------------------------------

    def engine_alive(self) -> bool:
        if self._probe is None:
            self._probe = res.engine_probe(self.containers.client)
        return bool(self._probe())

    def infra_alive(self) -> bool:
        """MariaDB and RabbitMQ both running and healthy (their own Docker health checks)."""
        return all(self.containers.health(host, service) == "healthy" for host, service in INFRASTRUCTURE)

    # --- the end state ----------------------------------------------------------------

    def no_dataplane(self) -> str | None:
        return NO_DATAPLANE

    def final_releases(self) -> Releases:
        """host -> service -> the release its one running container is at (and runs the image
        of); ``down`` without one, ``a+b`` with two."""
        releases: Releases = {}
        for host, known in sorted(self.state.hosts.items()):
            for service, svc in sorted(known.services.items()):
                if svc.release == profile.SYSTEM:
                    continue
                running = [c for c in self.containers.containers(host, service) if c.status == "running"]
                labels = sorted(c.labels.get(res.LABEL_RELEASE, "?") for c in running)
                wrong = [c.name for c in running if c.attrs.get("Config", {}).get("Image")
                         != profile.openstack_tag(c.labels.get(res.LABEL_RELEASE, "?"))]
                releases.setdefault(host, {})[service] = (
                    "down" if not labels else "+".join(labels) + (" (wrong image)" if wrong else ""))
        return releases

    def end_checks(self, expected: str) -> list[Check]:
        """Nova's service versions and ``nova-status upgrade check``, at ``expected``."""
        versions = nova_service_versions(self.containers)
        return [versions_check(versions, expected), self._upgrade_check(expected)]

    def _upgrade_check(self, expected: str) -> Check:
        """``nova-status upgrade check`` in the nova-conductor container running at the end,
        whichever release it is at (a failed upgrade or rollback can end at the other one:
        that is the cloud's state to report, not a reason for the harness to fail)."""
        running = [c for c in self.containers.containers("controller", "nova-conductor")
                   if c.status == "running"]
        releases = sorted(c.labels.get(res.LABEL_RELEASE, "?") for c in running)
        if len(releases) != 1:
            found = " and ".join(releases) or "none"
            return Check.failed(CHECK_UPGRADE_CHECK, f"not run: nova-conductor containers running at "
                                f"the end: {found} (one at {expected} was expected)",
                                [Evidence(f"running nova-conductor: {found}",
                                          target="controller/nova-conductor")])
        command = ["nova-status", "upgrade", "check"]
        code, output = self.containers.exec_result("controller", "nova-conductor", command,
                                                   UPGRADE_CHECK_TIMEOUT, release=releases[0])
        report = check_report(code, output)
        summary = report.detail.splitlines()[0] + ("" if releases[0] == expected else (
            f" (run in the {releases[0]} conductor; {expected} was expected)"))  # releases.final fails on it
        if report.ok:
            return Check.passed(CHECK_UPGRADE_CHECK, summary)
        return Check.failed(CHECK_UPGRADE_CHECK, summary,
                            [Evidence(report.detail[-3000:], target="nova-status")])

    def destroy(self) -> None:
        counts = self.containers.destroy()
        LOG.info("removed %s", ", ".join(f"{n} {kind}" for kind, n in counts.items()))
        self.state.status = "down"
        self.state.save()


def versions_check(versions: dict[tuple[str, str], int], release: str) -> Check:
    """Every row of nova's ``services`` table at ``release``'s service version."""
    want = profile.NOVA_SERVICE_VERSION[release]
    if not versions:
        return Check.failed(CHECK_SERVICE_VERSIONS, "nova's services table has no row")
    wrong = {k: v for k, v in versions.items() if v != want}
    if wrong:
        return Check.failed(CHECK_SERVICE_VERSIONS, f"{len(wrong)} of {len(versions)} nova service(s) "
                            f"not at version {want} ({release})",
                            [Evidence(f"{binary}@{host}: version {v}", target=f"{host}/{binary}")
                             for (host, binary), v in sorted(wrong.items())])
    return Check.passed(CHECK_SERVICE_VERSIONS,
                        f"all {len(versions)} nova services at version {want} ({release})")


def open_openstack(state: RunState, scenario: Scenario) -> OpenStackGateCloud:
    """Deploy the scenario's openstack cloud at its source release (all-or-nothing); the backend
    is Docker (``harness.gate.run.prepare`` refuses a backend the profile does not list)."""
    assert scenario.upgrade is not None
    computes = len(scenario.topology.with_role("compute"))
    # api_drain: false turns the load balancer's shield of a swap off too (no replayed requests)
    containers = deploy_openstack(state, scenario.upgrade.from_release, computes,
                                  shield=scenario.upgrade.policy.api_drain)
    return OpenStackGateCloud(state, containers)


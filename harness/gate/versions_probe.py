"""The versions probe: every service's ``/healthz`` next to the services table, around the upgrade.

Reads (``harness.checks.versions`` judges them): **before** (started when the
probe is made, during traffic's baseline; the executor's first operation waits
for it), **during** (after the first replacement of
each registered service to each release: the first conductor, scheduler and
compute agent of the new release, say; which services register is learnt from
the table, not assumed) and **after** (once the executor and any rollback are
done). The table comes from the cloud's admin CLI (``service list --json``,
run through the backend on a controller, at the release that controller's
conductor runs), as an operator would read it.

A table read takes a few hundred milliseconds (a CLI process), so the reads
during the upgrade run in a background thread and the executor does not wait
for them. ``/healthz`` is read before and after the table: a service whose
answer changed meanwhile (it restarted) is left out of that reading, and while
a row disagrees with its service's answer the probe re-reads for up to
``SETTLE_S`` (registration follows the first heartbeat). Before an
operation that runs the admin CLI itself starts, a read in flight is waited for
(two CLIs writing the same config file at once could collide).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from harness import clouds
from harness.checks.versions import VersionReading, disagreements, versions_check
from harness.clouds.minicloud.health import healthz
from harness.gate.probes import PROBE_FACTORIES, ProbeContext, StepProbe
from harness.verdict import Check

LOG = logging.getLogger(__name__)

#: executor operations that run the admin CLI themselves: a table read in flight finishes first
CLI_OPERATIONS = frozenset({"upgrade_check", "db_expand", "db_contract", "online_data_migrations",
                            "db_version"})
#: the service whose host runs the admin CLI, and whose release the CLI runs at
CLI_SERVICE = "conductor"
CLI_TIMEOUT_S = 60.0
READ_TIMEOUT_S = 90.0
#: how long a disagreement between /healthz and the table may last before it is recorded
SETTLE_S = 5.0
SETTLE_POLL_S = 1.0


class VersionsProbe(StepProbe):
    name = "versions"

    def __init__(self, context: ProbeContext) -> None:
        self.context = context
        state = context.cloud.state
        self.services = [(h.name, s) for h in state.hosts.values() for s in h.services
                         if s != "haproxy"]
        controllers = [h.name for h in state.hosts.values() if CLI_SERVICE in h.services]
        self.cli_host = controllers[0] if controllers else None
        self.readings: list[VersionReading] = []
        self.registered: set[str] = set()  # binaries seen in the services table
        self.read_after: set[tuple[str, str]] = set()  # (service, release) read after a replacement
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="versions-probe")
        # The first read starts now, in the background: it is done during traffic's baseline, before
        # the executor's first operation (which waits for it).
        self._pending: list[concurrent.futures.Future[None]] = [self._pool.submit(self._read, "before")]
        self._closed = False

    # --- when ---------------------------------------------------------------

    def around(self, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> contextlib.AbstractContextManager[None]:
        return self._around(operation, args, kwargs)

    @contextlib.contextmanager
    def _around(self, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[None]:
        if operation in CLI_OPERATIONS or not self.readings:
            self._wait_pending()
        yield
        service = args[1] if len(args) > 1 else kwargs.get("service")
        release = args[2] if len(args) > 2 else kwargs.get("release")
        if operation != "replace_service" or service not in self.registered:
            return
        key = (str(service), str(release))
        if key not in self.read_after:
            self.read_after.add(key)
            point = f"during (first {service} at {release})"
            self._pending.append(self._pool.submit(self._read, point))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wait_pending()
        self._pool.shutdown(wait=True)
        self._read("after")

    def checks(self) -> list[Check]:
        upgrade = self.context.scenario.upgrade
        source = upgrade.from_release if upgrade else None
        target = upgrade.to_release if upgrade else None
        self._save()
        return [versions_check(self.readings, source, target)]

    def _wait_pending(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            try:
                future.result(timeout=READ_TIMEOUT_S)
            except Exception:  # _read records its own failures; a timeout is only logged
                LOG.exception("versions probe: a table read did not finish")

    # --- what -------------------------------------------------------------------

    def _healthz_all(self) -> dict[tuple[str, str], tuple[str, int]]:
        backend = self.context.cloud.backend

        def ask(host_service: tuple[str, str]) -> tuple[str, int] | None:
            try:
                answer = healthz(backend.service_address(*host_service))
                return str(answer["release"]), int(answer["version"])
            except Exception:  # not answering (stopped, restarting): nothing to compare
                return None

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, self.services))
        return {key: answer for key, answer in zip(self.services, answers, strict=True) if answer is not None}

    def _read(self, point: str) -> None:
        t = time.monotonic()
        try:
            reading = self._settled_reading(point, t)
            self.registered |= {str(row.get("binary")) for row in reading.table}
        except Exception as exc:
            LOG.warning("versions probe: %s: %s", point, exc)
            reading = VersionReading(point, t, error=f"{type(exc).__name__}: {exc}"[:300])
        self.readings.append(reading)
        self.context.timeline.emit({"kind": "probe", "probe": self.name, "point": point,
                                    "rows": len(reading.table), "answers": len(reading.healthz),
                                    "error": reading.error, "seconds": round(time.monotonic() - t, 3)})

    def _settled_reading(self, point: str, t: float) -> VersionReading:
        """/healthz, the table, /healthz again; re-read while a row disagrees, for up to SETTLE_S
        (a restarted service registers on its heartbeat, a moment after it answers /healthz)."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            first = self._healthz_all()
            table = self._table(first)
            second = self._healthz_all()
            steady = {k: v for k, v in first.items() if second.get(k) == v}
            if not disagreements(steady, table) or time.monotonic() >= deadline:
                return VersionReading(point, t, steady, table)
            time.sleep(SETTLE_POLL_S)

    def _table(self, answers: dict[tuple[str, str], tuple[str, int]]) -> list[dict[str, Any]]:
        if self.cli_host is None:
            raise RuntimeError(f"no host runs a {CLI_SERVICE}: nowhere to run the admin CLI")
        release = answers.get((self.cli_host, CLI_SERVICE), (None, 0))[0]
        result = self.context.cloud.backend.manage(self.cli_host, "service", "list", "--json",
                                                   release=release, timeout=CLI_TIMEOUT_S)
        if result.rc != 0:
            raise RuntimeError(f"service list exited {result.rc}: {(result.stderr or result.stdout)[-200:]}")
        rows = json.loads(result.stdout)
        if not isinstance(rows, list):
            raise ValueError(f"service list --json printed {type(rows).__name__}, not a list")
        return [row for row in rows if isinstance(row, dict)]

    def _save(self) -> None:
        data = [{"point": r.point, "t": round(r.t, 6), "error": r.error,
                 "healthz": {f"{h}/{s}": list(v) for (h, s), v in sorted(r.healthz.items())},
                 "table": [{k: row.get(k) for k in ("host", "binary", "release", "version", "state")}
                           for row in r.table]} for r in self.readings]
        (self.context.run_dir / "versions.json").write_text(json.dumps(data, indent=1) + "\n")


def versions_probe(context: ProbeContext) -> StepProbe | None:
    """minicloud only: it reads each service's ``/healthz`` and minicloud's admin CLI; an openstack
    run compares Nova's service versions its own way (``openstack_cloud``'s end checks)."""
    if not clouds.profile(context.scenario.cloud).probes("versions"):
        return None
    return VersionsProbe(context)


PROBE_FACTORIES.append(versions_probe)

"""``versions.consistent``: /healthz against the services table, before, during and after."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.backends.base import ExecResult
from harness.checks.versions import (
    VersionReading,
    disagreements,
    judge_versions,
    release_series,
    versions_check,
)
from harness.gate import versions_probe
from harness.gate.probes import ProbeContext
from harness.verdict import ERRORED, FAILED, PASSED

SERVICES = (("controller-1", "conductor"), ("compute-1", "compute-agent"), ("compute-2", "compute-agent"))


def reading(point: str, t: float, releases: dict[str, tuple[str, int]],
            registered: dict[str, tuple[str, int]] | None = None) -> VersionReading:
    """Every service at ``releases[host]`` in /healthz; the table as ``registered`` says (default: the
    same as /healthz)."""
    table_says = {**releases, **(registered or {})}
    healthz = {(h, s): releases[h] for h, s in SERVICES}
    table = [{"host": h, "binary": s, "release": table_says[h][0], "version": table_says[h][1]}
             for h, s in SERVICES]
    return VersionReading(point, t, healthz, table)


OLD = ("1.0", 10)
NEW = ("1.1", 11)


def clean_upgrade() -> list[VersionReading]:
    return [reading("before", 1.0, {"controller-1": OLD, "compute-1": OLD, "compute-2": OLD}),
            reading("during", 2.0, {"controller-1": NEW, "compute-1": NEW, "compute-2": OLD}),
            reading("after", 3.0, {"controller-1": NEW, "compute-1": NEW, "compute-2": NEW})]


def test_a_clean_upgrade_passes() -> None:
    check = versions_check(clean_upgrade(), "1.0", "1.1")
    assert check.status == PASSED, check.summary
    assert "9 /healthz answers and 9 services-table rows at 3 point(s)" in check.summary


def test_a_service_registering_an_older_version_than_it_runs_fails() -> None:
    stale = ("1.1+stale", 10)  # runs 1.1 (/healthz: 11) but registers 1.0's version
    new = ("1.1+stale", 11)
    readings = [reading("before", 1.0, {"controller-1": OLD, "compute-1": OLD, "compute-2": OLD}),
                reading("after", 3.0, {"controller-1": new, "compute-1": new, "compute-2": new},
                        registered={"compute-1": stale, "compute-2": stale})]
    messages = [p.message for p in judge_versions(readings, "1.0", "1.1+stale")]
    assert ("compute-1/compute-agent (after): /healthz says release 1.1+stale service version 11; the "
            "services table says release 1.1+stale version 10") in messages
    assert any(m.startswith("release 1.1+stale reports 2 service versions: 10") for m in messages)
    assert any("the same as 1.0's 10" in m for m in messages)
    check = versions_check(readings, "1.0", "1.1+stale")
    assert check.status == FAILED
    assert check.evidence[0].target == "compute-1/compute-agent"


def test_the_new_release_must_be_newer_except_within_a_series() -> None:
    same = [reading("before", 1.0, {"controller-1": OLD, "compute-1": OLD, "compute-2": OLD}),
            reading("after", 3.0, {"controller-1": ("1.1", 10), "compute-1": ("1.1", 10),
                                   "compute-2": ("1.1", 10)})]
    assert versions_check(same, "1.0", "1.1").status == FAILED
    patch = [reading("before", 1.0, {"controller-1": NEW, "compute-1": NEW, "compute-2": NEW}),
             reading("after", 3.0, {"controller-1": ("1.1.1", 11), "compute-1": ("1.1.1", 11),
                                    "compute-2": ("1.1.1", 11)})]
    assert versions_check(patch, "1.1", "1.1.1").status == PASSED
    older = [reading("before", 1.0, {"controller-1": NEW, "compute-1": NEW, "compute-2": NEW}),
             reading("after", 3.0, {"controller-1": ("1.1.1", 9), "compute-1": ("1.1.1", 9),
                                    "compute-2": ("1.1.1", 9)})]
    assert "older than 1.1's 11" in versions_check(older, "1.1", "1.1.1").summary


def test_services_that_did_not_answer_are_not_compared() -> None:
    quiet = reading("during", 2.0, {"controller-1": NEW, "compute-1": NEW, "compute-2": OLD},
                    registered={"compute-1": OLD})
    del quiet.healthz[("compute-1", "compute-agent")]  # restarting: no answer, its row still says 1.0
    assert judge_versions([quiet], "1.0", "1.1") == []


def test_unreadable_tables_are_an_error_only_when_nothing_was_read() -> None:
    failed = VersionReading("before", 1.0, error="RuntimeError: service list exited 2")
    assert versions_check([failed], "1.0", "1.1").status == ERRORED
    partly = versions_check([failed, *clean_upgrade()], "1.0", "1.1")
    assert partly.status == PASSED
    assert "1 table read(s) failed and were not judged" in partly.summary


def test_release_series_and_disagreements() -> None:
    assert release_series("1.1.1+x") == "1.1"
    assert release_series("2026.1") == "2026.1"
    healthz = {("compute-1", "compute-agent"): ("1.1", 11)}
    assert disagreements(healthz, [{"host": "compute-1", "binary": "compute-agent", "release": "1.1",
                                    "version": 11}]) == []
    assert disagreements(healthz, [{"host": "compute-1", "binary": "compute-agent", "release": "1.1",
                                    "version": "10"}]) == [("compute-1", "compute-agent")]


class FakeCloud:
    """Hosts, /healthz answers and a services table the probe reads through a fake backend."""

    def __init__(self, registered_version: int) -> None:
        self.release = {("controller-1", "conductor"): "1.0", ("compute-1", "compute-agent"): "1.0"}
        self.registered_version = registered_version
        self.cli_calls = 0
        hosts = {"controller-1": ["conductor"], "compute-1": ["compute-agent"]}
        self.state = SimpleNamespace(hosts={n: SimpleNamespace(name=n, services={s: None for s in ss})
                                            for n, ss in hosts.items()})
        self.backend = SimpleNamespace(service_address=lambda host, service: (host, service),
                                       manage=self.manage)

    def version(self, release: str) -> int:
        return 10 if release == "1.0" else 11

    def healthz(self, location: tuple[str, str]) -> dict[str, Any]:
        release = self.release[location]
        return {"release": release, "version": self.version(release)}

    def manage(self, host: str, *args: str, release: str | None = None, timeout: float = 60) -> ExecResult:
        self.cli_calls += 1
        stale = self.registered_version
        rows = [{"host": h, "binary": s, "release": r,
                 "version": stale if s == "compute-agent" and r != "1.0" else self.version(r)}
                for (h, s), r in self.release.items()]
        return ExecResult(0, json.dumps(rows), "")


def run_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registered_version: int) -> tuple[Any, Any]:
    cloud = FakeCloud(registered_version)
    monkeypatch.setattr(versions_probe, "healthz", cloud.healthz)
    monkeypatch.setattr(versions_probe, "SETTLE_S", 0.3)
    monkeypatch.setattr(versions_probe, "SETTLE_POLL_S", 0.1)
    timeline = SimpleNamespace(emit=lambda event: None)
    upgrade = SimpleNamespace(from_release="1.0", to_release="1.1")
    scenario = SimpleNamespace(cloud="minicloud", upgrade=upgrade)
    context = ProbeContext(tmp_path, timeline, scenario, cloud)  # type: ignore[arg-type]
    probe = versions_probe.versions_probe(context)
    assert probe is not None
    with probe.around("upgrade_check", (), {}):
        pass
    for host, service in (("controller-1", "conductor"), ("compute-1", "compute-agent")):
        with probe.around("replace_service", (host, service, "1.1", 10.0), {}):
            cloud.release[(host, service)] = "1.1"
    probe.close()
    return probe, cloud


def test_the_probe_reads_before_after_each_first_replacement_and_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe, cloud = run_probe(tmp_path, monkeypatch, registered_version=11)
    assert [r.point for r in probe.readings] == ["before", "during (first conductor at 1.1)",
                                                 "during (first compute-agent at 1.1)", "after"]
    assert cloud.cli_calls == 4  # no disagreement: one table read each
    assert probe.checks()[0].status == PASSED
    assert json.loads((tmp_path / "versions.json").read_text())[0]["point"] == "before"


def test_the_probe_catches_a_stale_registration_after_letting_it_settle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe, cloud = run_probe(tmp_path, monkeypatch, registered_version=10)
    assert cloud.cli_calls > 4  # it re-read while the row disagreed
    check = probe.checks()[0]
    assert check.status == FAILED
    assert "compute-1/compute-agent" in check.summary

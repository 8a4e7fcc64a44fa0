"""One gate run: scenario in, verdict out, nothing left behind.

The order is the architecture's data flow, each stage calling the module that
owns it: validate the scenario and build the plan (printed first, saved);
deploy (all-or-nothing); create the resources and verify them before and with
the API down; start traffic; run the executor (holding where the scenario
says); stop traffic and read every write back; verify the resources after and
destroy them; judge; write verdict.json, junit.xml and report.html; clean up
(unless ``keep``). A harness or machine failure at any stage becomes an ERROR
verdict that still writes its reports, so a gate always has a file to read.
The container engine is watched from deploy to cleanup (``harness.gate.engine``):
an engine that goes away makes the run an ERROR, stops judging, and cleanup
waits for it to come back before removing the run.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import clouds
from harness.checks.resources import harness_error, isolation_check, resource_checks
from harness.checks.samples import numbered_events
from harness.checks.slo import SloReport, evaluate
from harness.clouds import DeployedCloud
from harness.errors import RollgateError, UsageError
from harness.executor import STOPPED, Executor, Journal, Plan, RunResult
from harness.executor.steps import Pause
from harness.gate import contract_probe as _contract_probe  # noqa: F401  (registers its probe)
from harness.gate import maintenance_probe, shutdown_probe  # noqa: F401  (register their probes)
from harness.gate import versions_probe as _versions_probe  # noqa: F401  (registers its probe)
from harness.gate.engine import DEFAULT_ENGINE_WAIT_S, EngineWatch, guard_ops, wait_for_engine
from harness.gate.hold import hold_step_id
from harness.gate.lifecycle import after_upgrade_phases
from harness.gate.migration_burst import MigrationBurstProbe  # noqa: F401  (registers its probe)
from harness.gate.probes import ProbeContext, build_probes, observe_ops
from harness.gate.validate import check_runnable  # the validation `rollgate plan` shares
from harness.report import write_reports
from harness.report.build import assemble, executor_check, releases_check, slo_checks
from harness.resources import PhaseResult, ResourcePhases, ResourceSpec, project_isolation
from harness.runstate import RunState
from harness.scenario import Scenario
from harness.timeline import Timeline, read_events
from harness.traffic.discovery import discover
from harness.traffic.plan import TrafficPlan
from harness.traffic.runner import TrafficError, TrafficRunner
from harness.traffic.verify import verify_writes
from harness.verdict import Check, Verdict

LOG = logging.getLogger(__name__)
Echo = Callable[[str], None]


@dataclass(frozen=True)
class GateOptions:
    backend: str = "process"
    seed: int | None = None
    run_id: str | None = None
    keep: bool = False
    baseline_s: float = 3.0  # traffic before the first step: the latency baseline
    settle_s: float = 2.0  # traffic after the last step


@dataclass
class GateRun:
    """Everything one run learns on its way to a verdict."""

    scenario: Scenario
    plan: Plan
    state: RunState
    resources: ResourceSpec
    checks: list[Check] = field(default_factory=list)
    phases: list[PhaseResult] = field(default_factory=list)
    executor: RunResult | None = None
    slo: SloReport | None = None
    leaked_before: list[str] | None = None
    leaked_after: list[str] | None = None
    final_releases: dict[str, dict[str, str]] | None = None
    watch: EngineWatch | None = None
    infra: EngineWatch | None = None  # the test bed's own services (openstack: MariaDB, RabbitMQ)
    stop_before: str | None = None  # upgrade.rollback_before: the step the run stops before
    no_dataplane: str | None = None  # why the cloud has no data plane (its data-plane SLOs skipped)

    @property
    def run_dir(self) -> Path:
        return self.state.directory


CHECK_INFRASTRUCTURE = "harness.infrastructure"


def expects_rollback(scenario: Scenario) -> bool:
    """Scenarios that say so (``upgrade.expect: rollback``: a known-bad candidate), or that roll
    back on purpose (``upgrade.rollback_before``), expect (and judge) a clean rollback. The
    harness never guesses it from a release's name: a real gate does not know a candidate is bad."""
    return clouds.profile(scenario.cloud).expects_rollback(scenario)


def prepare(scenario_path: str | Path, options: GateOptions, run_id: str) -> GateRun:
    """Validate everything and build the plan before a single process starts."""
    checked = check_runnable(scenario_path, options.seed)
    scenario, seed, plan, stop_before = checked.scenario, checked.seed, checked.plan, checked.stop_before
    resources = checked.resources
    profile = clouds.profile(scenario.cloud)
    engines = {b for p in clouds.registry().values() for b in p.backends}  # unknown: the deploy says so
    if options.backend in engines and options.backend not in profile.backends:
        raise UsageError(f"--backend {options.backend}: {scenario.path} is a cloud: {profile.name} scenario "
                         f"({profile.summary}): run it with --backend {profile.backends[0]}")
    state = RunState(run_id=run_id, backend=options.backend)
    state.extra.update(scenario=scenario.name, scenario_path=str(scenario_path), seed=seed)
    return GateRun(scenario=scenario, plan=plan, state=state, resources=resources, stop_before=stop_before)


def run_gate(run: GateRun, options: GateOptions, echo: Echo) -> Verdict:
    """Deploy, judge and clean up; always returns a verdict (ERROR when the harness failed)."""
    run.run_dir.mkdir(parents=True, exist_ok=True)
    run.plan.save(run.run_dir / "plan.json")
    started = time.monotonic()
    cloud: DeployedCloud | None = None
    with Timeline(run.run_dir / "timeline.jsonl") as timeline:
        timeline.emit({"kind": "gate", "phase": "start", "scenario": run.scenario.name,
                       "seed": run.plan.seed, "backend": options.backend})
        try:
            echo(f"deploying {len(run.scenario.topology.hosts)} hosts on the {options.backend} backend")
            cloud = clouds.profile(run.scenario.cloud).deploy(run.state, run.scenario, options.backend)
            echo(f"  up in {run.state.extra.get('deploy_seconds', '?')} s")
            run.no_dataplane = cloud.no_dataplane()
            run.watch = EngineWatch(cloud.engine_alive, timeline)
            run.infra = EngineWatch(cloud.infra_alive, timeline, interval=2.0,
                                    name="test bed's MariaDB/RabbitMQ", check_id=CHECK_INFRASTRUCTURE)
            with run.watch, run.infra:
                _judge(run, cloud, timeline, options, echo)
        except RollgateError as exc:
            LOG.error("run %s: %s", run.state.run_id, exc)
            run.checks.append(harness_error(f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # a bug in the harness is still not the cloud's failure
            LOG.exception("run %s: harness bug", run.state.run_id)
            run.checks.append(harness_error(f"harness bug: {type(exc).__name__}: {exc}"))
        finally:  # also on Ctrl-C
            if cloud is not None and not options.keep:
                _clean_up(run, cloud, echo)
        for watch in (run.watch, run.infra):
            outage = watch.check() if watch is not None else None
            if outage is not None:
                run.checks.append(outage)
        timeline.emit({"kind": "gate", "phase": "end", "seconds": round(time.monotonic() - started, 3)})
    verdict = _verdict(run, options)
    write_reports(run.run_dir, verdict)
    return verdict


def _clean_up(run: GateRun, cloud: DeployedCloud, echo: Echo) -> None:
    """Remove the run; an engine that went away is waited for (bounded) first."""
    wait_s = float(os.environ.get("ROLLGATE_ENGINE_WAIT", DEFAULT_ENGINE_WAIT_S))
    # Through the watch, so that the engine's return is on the timeline too.
    probe = run.watch.poll if run.watch is not None else cloud.engine_alive
    if not wait_for_engine(probe, wait_s):
        message = (f"cleanup: the container engine did not answer within {wait_s:.0f} s; run "
                   f"`rollgate down {run.state.run_id}` once it is back")
        echo(message)
        run.checks.append(harness_error(message))
        return
    try:
        cloud.destroy()
    except Exception as exc:  # cleanup failing is the harness's failure, and is said
        LOG.exception("run %s: cleanup failed", run.state.run_id)
        run.checks.append(harness_error(f"cleanup: {type(exc).__name__}: {exc}; run "
                                        f"`rollgate down {run.state.run_id}`"))


def _judge(run: GateRun, cloud: DeployedCloud, timeline: Timeline, options: GateOptions, echo: Echo) -> None:
    phases = cloud.resource_phases(run.run_dir, run.resources, timeline)
    echo(f"resources: creating {run.resources.servers} server(s)")
    created = phases.create()
    run.phases.append(created)
    _machine_ok(run, "the resource phases, the upgrade and the checks")
    run.phases.append(phases.verify("verify-before"))
    if "project-isolation" in run.scenario.checks:
        run.leaked_before = project_isolation(cloud.connect_demo, [r.server_id for r in phases.resources],
                                              cloud.connect)
        echo(f"security: a non-admin user reaches another project's servers {len(run.leaked_before)} way(s)")
    if run.resources.api_down:
        run.phases.append(phases.verify_api_down(cloud.stop_compute_api, cloud.start_compute_api,
                                                 cloud.compute_api_url()))
    _machine_ok(run, "the upgrade and the checks")
    _observe_upgrade(run, cloud, phases, timeline, options, echo)
    run.phases += after_upgrade_phases(run.scenario, phases)
    run.phases.append(phases.verify("verify-after"))
    if "project-isolation" in run.scenario.checks:
        run.leaked_after = project_isolation(cloud.connect_demo, [r.server_id for r in phases.resources],
                                             cloud.connect)
        echo(f"security: after the update: {len(run.leaked_after)} way(s)")
    run.final_releases = cloud.final_releases()
    run.checks += cloud.end_checks(_expected_release(run))
    run.phases.append(phases.destroy())


def _observe_upgrade(run: GateRun, cloud: DeployedCloud, phases: ResourcePhases, timeline: Timeline,
                     options: GateOptions, echo: Echo) -> None:
    """Traffic around the executor; the SLOs judge exactly this window."""
    scenario = run.scenario
    clouds_yaml = run.run_dir / "clouds.yaml"
    api_targets, instances, token = discover(clouds_yaml, "rollgate", scenario.traffic_config)
    plan = TrafficPlan(
        run_dir=str(run.run_dir), timeline=str(timeline.path), locust_dir=str(run.run_dir / "locust"),
        config=scenario.traffic_config, api_targets=api_targets, instances=instances,
        clouds_yaml=str(clouds_yaml), token=token, key_prefix=f"rg{run.plan.seed % 100000}",
        run_time_s=_traffic_bound(run.plan, options))
    echo(f"traffic: API {', '.join(t.name for t in api_targets)}; {len(instances)} instance(s)")
    observed = observe_ops(cloud.ops(run.scenario), build_probes(ProbeContext(
        run.run_dir, timeline, scenario, cloud, list(instances), resources=phases, phases=run.phases)))
    ops: Any = observed
    for watch in (run.watch, run.infra):
        if watch is not None:
            ops = guard_ops(ops, watch)
    executor = Executor(run.plan, ops, Journal(run.run_dir / "journal"), timeline,
                        pause=_pause_callback(run, phases, echo))
    start = time.monotonic()
    with TrafficRunner(plan) as runner:
        _keep_traffic(runner, options.baseline_s)
        echo(f"executor: {len(run.plan.steps)} steps")
        run.executor = executor.run(stop_before=run.stop_before)
        if run.executor.status == STOPPED:  # a rollback on purpose (upgrade.rollback_before)
            echo(f"executor: stopped before {run.stop_before} as the scenario asks; rolling back")
            undone = executor.rollback()
            run.executor = RunResult(undone.status, None, undone.error, run.executor.steps_run, undone)
        echo(f"executor: {run.executor.status}"
             + (f" at {run.executor.failed_step}" if run.executor.failed_step else ""))
        _keep_traffic(runner, options.settle_s)
    run.checks += observed.probe_checks()
    _machine_ok(run, "reading the writes back, the SLOs and the later resource phases")
    missing = verify_writes(timeline.path, timeline, instances, since=start)
    end = time.monotonic()
    timeline.emit({"kind": "observe", "phase": "end", "unreadable_writes": missing})
    run.slo = evaluate(list(numbered_events(timeline.path)), scenario.slo_config, window=(start, end))
    (run.run_dir / "outages.json").write_text(
        json.dumps([o.to_row() for o in run.slo.outages], indent=2) + "\n")


def _machine_ok(run: GateRun, skipped: str) -> None:
    """Stop judging once the engine or the test bed went away: later stages would only pile up
    symptoms of the machine's failure (EngineDown; the watches' checks make it an ERROR)."""
    for watch in (run.watch, run.infra):
        if watch is not None:
            watch.raise_if_failed(skipped)


def _traffic_bound(plan: Plan, options: GateOptions) -> float:
    """Locust's own time bound: generous, but it never outlives a stuck harness for long."""
    return options.baseline_s + options.settle_s + 60.0 + 30.0 * len(plan.steps)


def _keep_traffic(runner: TrafficRunner, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not runner.running():
            raise TrafficError(f"locust exited early: {runner.output_tail()}")
        threading.Event().wait(min(0.1, max(0.0, deadline - time.monotonic())))


def _pause_callback(run: GateRun, phases: ResourcePhases, echo: Echo) -> Callable[[float], object]:
    """The executor's pause: at the hold step, verify every resource in the mixed state first."""
    pauses = iter([s.step_id for s in run.plan.steps if isinstance(s, Pause)])
    hold = hold_step_id(run.plan)
    stop = threading.Event()

    def pause(seconds: float) -> None:
        step_id = next(pauses, None)
        began = time.monotonic()
        if hold is not None and step_id == hold:
            echo("hold: verifying every resource in the mixed-version state")
            run.phases.append(phases.verify("verify-mixed"))
        stop.wait(max(0.0, seconds - (time.monotonic() - began)))

    return pause


def _verdict(run: GateRun, options: GateOptions) -> Verdict:
    scenario, plan = run.scenario, run.plan
    upgrade = scenario.upgrade
    assert upgrade is not None
    checks: list[Check] = []
    if run.slo is not None:
        checks += slo_checks(run.slo, scenario.slo_config, no_dataplane=run.no_dataplane)
    rollback = expects_rollback(scenario)
    if run.executor is not None:
        checks.append(executor_check(run.executor.status, run.executor.failed_step, run.executor.error,
                                     expect_rollback=rollback, stopped_before=run.stop_before))
    if run.final_releases:
        checks.append(releases_check(run.final_releases, _expected_release(run)))
    checks += resource_checks(run.phases)
    if "project-isolation" in scenario.checks and run.leaked_after is not None:
        checks.append(isolation_check(run.leaked_before, run.leaked_after, upgrade.from_release,
                                      upgrade.to_release))
    checks += run.checks
    timeline = run.run_dir / "timeline.jsonl"
    events = list(read_events(timeline)) if timeline.exists() else []
    return assemble(
        run_id=run.state.run_id, scenario=scenario.name, seed=plan.seed, checks=checks, events=events,
        initial_releases=plan.initial_releases, final_releases=run.final_releases,
        outages=[o.to_row() for o in run.slo.outages] if run.slo else [],
        counts=run.slo.counts if run.slo else {},
        from_release=upgrade.from_release, to_release=upgrade.to_release, action=upgrade.action,
        backend=options.backend, cloud=scenario.cloud,
        notes=[*plan.notes, *(run.slo.notes if run.slo else [])])


def _expected_release(run: GateRun) -> str:
    """The release every service should run at the end: the source after a rollback (on
    purpose, or the one a failed upgrade was expected to need) or a reboot, else the target."""
    upgrade = run.scenario.upgrade
    assert upgrade is not None
    rolled_back = run.executor is not None and run.executor.status == "rolled_back"
    back_home = expects_rollback(run.scenario) or rolled_back or upgrade.action == "reboot"
    return upgrade.from_release if back_home else upgrade.to_release


def describe_result(verdict: Verdict) -> dict[str, Any]:
    """The JSON summary printed after the recap (what a wrapper script reads)."""
    return {"verdict": verdict.verdict, "exit_code": verdict.exit_code, "run_id": verdict.run_id,
            "scenario": verdict.scenario, "seed": verdict.seed,
            "failing": [c.id for c in verdict.failing()]}

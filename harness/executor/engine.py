"""The executor: runs a plan against a cloud, step by step, journal first.

``Executor(plan, ops, journal, timeline).run()`` starts a fresh run,
``.resume()`` continues one from its journal after a crash, ``.rollback()``
reverses every step whose effect is (or may be) in place, newest first. Each
step is journalled before and after it runs and is a start/end event on the
timeline. A step that fails (an ``OperationFailed``, any exception of the
cloud ops, or a health gate that does not pass) stops the run; the plan's
``auto_rollback`` decides whether it then rolls back. Once a finalize step
has begun, rollback is refused: the schema has been contracted or the pin
lifted, and there is no downgrade.

A crash is anything that is not an ``Exception`` (``KeyboardInterrupt``, a
killed process): it propagates, leaving the journal with a begun step that
resume re-runs and rollback reverses.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.errors import RollgateError
from harness.executor.journal import ABSENT, DONE, FORWARD, PARTIAL, ROLLBACK, Journal, JournalState
from harness.executor.ops import CloudOps, OperationFailed
from harness.executor.plan import Plan
from harness.executor.steps import (
    DbContract,
    DbExpand,
    DisableCompute,
    DrainApi,
    EnableCompute,
    HealthGate,
    MigrateInstances,
    OnlineMigrations,
    Pause,
    PinRpc,
    PointOfNoReturn,
    PreCheck,
    RebootHost,
    ReplaceService,
    Step,
    UndrainApi,
    UnpinRpc,
)
from harness.timeline import STEP, Timeline

log = logging.getLogger("harness.executor")

COMPLETED = "completed"
FAILED = "failed"
ROLLED_BACK = "rolled_back"
ROLLBACK_FAILED = "rollback_failed"
STOPPED = "stopped"  # run(stop_before=...) reached that step: nothing failed, nothing finalized


class RollbackRefused(RollgateError):
    """Rollback asked for after finalize began: there is no way back."""


class JournalHasProgress(RollgateError):
    """``run()`` on a journal that already holds steps: resume or roll back instead."""


class StepFailed(Exception):
    """A step did not succeed; the message is the evidence."""


@dataclass(frozen=True)
class RunResult:
    """How a run, resume or rollback ended."""

    status: str  # completed | failed | rolled_back | rollback_failed | stopped
    failed_step: str | None = None
    error: str | None = None
    steps_run: int = 0
    rollback: RunResult | None = None


class Executor:
    """Runs one plan against one cloud, with one journal and (optionally) a timeline."""

    def __init__(self, plan: Plan, ops: CloudOps, journal: Journal, timeline: Timeline | None = None,
                 *, pause: Callable[[float], object] | None = None) -> None:
        self.plan = plan
        self.ops = ops
        self.journal = journal
        self.timeline = timeline
        self._stop = threading.Event()
        self._pause = pause or self._stop.wait
        self._releases: dict[str, dict[str, str]] = {}

    # --- public API -----------------------------------------------------

    def run(self, stop_before: str | None = None) -> RunResult:
        """Run the plan from its first step; refuses a journal with progress.

        ``stop_before`` (a step id of the plan) ends the run with status ``stopped``
        just before that step: a rollback on purpose (``upgrade.rollback_before``)
        starts from there.
        """
        if stop_before is not None and stop_before not in {s.step_id for s in self.plan.steps}:
            raise ValueError(f"stop_before: no step {stop_before!r} in the plan")
        state = self.journal.bind(self.plan.digest(), self.plan.seed, len(self.plan.steps))
        if state.has_progress:
            raise JournalHasProgress(
                f"{self.journal.path} already records steps of this plan: resume it "
                "(rollgate upgrade RUN_ID --resume) or roll it back (rollgate rollback RUN_ID)")
        return self._forward(state, stop_before)

    def resume(self) -> RunResult:
        """Continue after a crash: every step not proven done runs, in plan order."""
        state = self.journal.bind(self.plan.digest(), self.plan.seed, len(self.plan.steps))
        return self._forward(state)

    def rollback(self) -> RunResult:
        """Reverse every step whose effect may be in place, newest first, then verify."""
        state = self.journal.bind(self.plan.digest(), self.plan.seed, len(self.plan.steps))
        if state.finalize_started:
            step = next(s for s in self.plan.steps if s.step_id == state.finalize_started)
            if isinstance(step, PointOfNoReturn):
                raise RollbackRefused(
                    f"cannot roll back: the upgrade passed its point of no return at {step.step_id}: "
                    f"{step.reason}. Fix forward: resume the run to finish the upgrade.")
            raise RollbackRefused(
                f"cannot roll back: finalize began at {step.step_id} ({step.kind}: {step.describe()}); "
                "after finalize the schema is contracted and the RPC pin lifted, and there is no "
                "downgrade. Fix forward: resume the run to finish finalize.")
        self._load_releases(state)
        todo = _gates_after_their_replacements(
            [s for s in reversed(self.plan.steps) if state.effect(s.step_id) != ABSENT])
        log.info("rollback of %s: %d step(s) to reverse", self.plan.scenario, len(todo))
        count = 0
        for step in todo:
            # A gate that failed forward is evidence, not an effect: reversing it means nothing.
            skip_gate = isinstance(step, HealthGate) and state.effect(step.step_id) == PARTIAL
            error = self._execute(step, ROLLBACK, skip=skip_gate)
            count += 1
            if error is not None:
                self.journal.record_status(ROLLBACK_FAILED, f"{step.step_id}: {error}")
                return RunResult(ROLLBACK_FAILED, step.step_id, error, count)
        report = self.ops.health_gate(self.plan.initial_releases, self._final_gate_timeout())
        if not report.ok:
            error = "after rollback: " + "; ".join(report.problems)
            self.journal.record_status(ROLLBACK_FAILED, error)
            return RunResult(ROLLBACK_FAILED, None, error, count)
        self.journal.record_status(ROLLED_BACK)
        return RunResult(ROLLED_BACK, None, None, count)

    def stop(self) -> None:
        """Cut a pause short (Ctrl-C handling of a caller)."""
        self._stop.set()

    def current_releases(self) -> dict[str, dict[str, str]]:
        """host -> service -> release as the journal proves it (unknown ones omitted)."""
        return {h: dict(s) for h, s in self._releases.items()}

    # --- forward ----------------------------------------------------------

    def _forward(self, state: JournalState, stop_before: str | None = None) -> RunResult:
        self._load_releases(state)
        count = 0
        for step in self.plan.steps:
            if step.step_id == stop_before:
                log.info("stopping before %s (%s), as asked", step.step_id, step.kind)
                self.journal.record_status(STOPPED, f"before {step.step_id}")
                return RunResult(STOPPED, None, None, count)
            if state.effect(step.step_id) == DONE:
                continue
            error = self._execute(step, FORWARD)
            count += 1
            if error is None:
                continue
            if self.journal.state().finalize_started:
                self.journal.record_status(FAILED, f"{step.step_id}: {error}")
                return RunResult(FAILED, step.step_id, error, count)
            self.journal.record_status(FAILED, f"{step.step_id}: {error}")
            if not self.plan.auto_rollback:
                return RunResult(FAILED, step.step_id, error, count)
            undone = self.rollback()
            status = ROLLED_BACK if undone.status == ROLLED_BACK else ROLLBACK_FAILED
            return RunResult(status, step.step_id, error, count, rollback=undone)
        self.journal.record_status(COMPLETED)
        return RunResult(COMPLETED, None, None, count)

    # --- one step -----------------------------------------------------------

    def _execute(self, step: Step, direction: str, *, skip: bool = False) -> str | None:
        """Journal, emit, run one step (or its inverse); return the error, or None."""
        self.journal.begin(step, direction)
        self._emit(step, direction, "start", None)
        started = time.monotonic()
        error: str | None = None
        try:
            if not skip:
                (self._apply if direction == FORWARD else self._revert)(step)
        except (StepFailed, OperationFailed) as exc:
            error = str(exc)
        except Exception as exc:  # a bug or an unexpected cloud error: still a failed step
            error = f"{type(exc).__name__}: {exc}"
        outcome = "ok" if error is None else "failed"
        self.journal.end(step, direction, outcome, error)
        self._emit(step, direction, "end", outcome, time.monotonic() - started, error)
        level = logging.INFO if error is None else logging.ERROR
        log.log(level, "%s %s %s %s%s", direction, step.step_id, step.kind, step.describe(),
                "" if error is None else f": FAILED: {error}")
        return error

    def _emit(self, step: Step, direction: str, phase: str, outcome: str | None,
              duration: float | None = None, error: str | None = None) -> None:
        if self.timeline is None:
            return
        event: dict[str, Any] = {"kind": STEP, "phase": phase, "name": step.kind,
                                 "step_id": step.step_id, "direction": direction,
                                 "outcome": outcome, **step.event_fields()}
        if direction == ROLLBACK and isinstance(step, ReplaceService):
            event["from"], event["to"] = step.to_release, step.from_release
        if duration is not None:
            event["duration"] = round(duration, 6)
        if error is not None:
            event["error"] = error
        self.timeline.emit(event)

    def _apply(self, step: Step) -> None:
        ops = self.ops
        match step:
            case PreCheck():
                report = ops.upgrade_check()
                if not report.ok:
                    raise StepFailed(f"upgrade check failed: {report.detail}")
            case DbExpand():
                ops.db_expand(step.to_release)
            case PinRpc():
                ops.pin_rpc_versions(step.level)
            case ReplaceService():
                self._releases.get(step.host_name, {}).pop(step.service, None)
                ops.replace_service(step.host_name, step.service, step.to_release, step.stop_timeout)
                self._releases.setdefault(step.host_name, {})[step.service] = step.to_release
            case DrainApi():
                ops.drain_api(step.host_name)
            case UndrainApi():
                ops.undrain_api(step.host_name)
            case DisableCompute():
                ops.disable_compute(step.host_name, f"rollgate {self.plan.action} {self.plan.scenario}")
            case EnableCompute():
                ops.enable_compute(step.host_name)
            case MigrateInstances():
                self._empty_host(step)
            case RebootHost():
                ops.reboot_host(step.host_name, step.timeout)
            case HealthGate():
                self._gate(step.timeout)
            case Pause():
                self._pause(step.seconds)
            case OnlineMigrations():
                self._online_migrations(step)
            case PointOfNoReturn():
                log.warning("%s: point of no return: %s", step.step_id, step.reason)
            case UnpinRpc():
                ops.unpin_rpc_versions()
            case DbContract():
                ops.db_contract(step.to_release)
            case _:
                raise StepFailed(f"no action for step kind {step.kind!r}")

    def _revert(self, step: Step) -> None:
        """The inverse of each reversible step; the rest need no undoing."""
        ops = self.ops
        match step:
            case PinRpc():
                ops.unpin_rpc_versions()
            case ReplaceService():
                self._releases.get(step.host_name, {}).pop(step.service, None)
                ops.replace_service(step.host_name, step.service, step.from_release, step.stop_timeout)
                self._releases.setdefault(step.host_name, {})[step.service] = step.from_release
            case DrainApi():
                ops.undrain_api(step.host_name)
            case UndrainApi():
                ops.drain_api(step.host_name)
            case DisableCompute():
                ops.enable_compute(step.host_name)
            case EnableCompute():
                ops.disable_compute(step.host_name, f"rollgate rollback {self.plan.scenario}")
            case HealthGate():
                self._gate(step.timeout)
            case UnpinRpc() | DbContract() | PointOfNoReturn():
                raise StepFailed(f"{step.kind} is finalize: it has no inverse")
            case _:
                # pre-check, expand (additive), migrations of instances or rows
                # (both forms stay valid), reboots and pauses leave nothing to undo.
                pass

    # --- helpers --------------------------------------------------------------

    def _load_releases(self, state: JournalState) -> None:
        """Releases as the journal proves them; a partial replace leaves its service unknown."""
        releases = {h: dict(s) for h, s in self.plan.initial_releases.items()}
        for step in self.plan.steps:
            if isinstance(step, ReplaceService):
                effect = state.effect(step.step_id)
                if effect == DONE:
                    releases[step.host_name][step.service] = step.to_release
                elif effect == PARTIAL:
                    releases[step.host_name].pop(step.service, None)
        self._releases = releases

    def _gate(self, timeout: float) -> None:
        report = self.ops.health_gate(self.current_releases(), timeout)
        if not report.ok:
            raise StepFailed("health gate failed: " + "; ".join(report.problems))

    def _empty_host(self, step: MigrateInstances) -> None:
        move = self.ops.live_migrate if step.mode == "live" else self.ops.cold_migrate
        for instance in self.ops.list_instances(step.host_name):
            move(instance, step.host_name, step.timeout)
        left = self.ops.list_instances(step.host_name)
        if left:
            raise StepFailed(f"{step.host_name} still holds {len(left)} instance(s) after "
                             f"{step.mode} migration: {', '.join(left[:5])}")

    def _online_migrations(self, step: OnlineMigrations) -> None:
        deadline = time.monotonic() + step.timeout
        while self.ops.online_data_migrations(step.batch):
            if time.monotonic() > deadline:
                raise StepFailed(f"online data migrations not done after {step.timeout:g}s")

    def _final_gate_timeout(self) -> float:
        return float(self.plan.policy.get("health_timeout", 120.0))


def _gates_after_their_replacements(steps: list[Step]) -> list[Step]:
    """Steps newest first, each health gate moved after the replacements it guarded.

    Forward, a gate follows the replacements (or reboots, or migrations) it
    proves healthy and precedes the step that lets work back in (undrain,
    enable). Reversed literally, the gate would run before the services go back
    and the host would be let back in straight after: disable, gate, replace
    back, enable. Rollback keeps the forward meaning: disable, replace back,
    gate, enable.
    """
    ordered: list[Step] = []
    gate: Step | None = None
    for step in steps:
        if isinstance(step, HealthGate):
            if gate is not None:
                ordered.append(gate)
            gate = step
            continue
        if gate is not None and not isinstance(step, (ReplaceService, MigrateInstances, RebootHost)):
            ordered.append(gate)
            gate = None
        ordered.append(step)
    if gate is not None:
        ordered.append(gate)
    return ordered

"""``rollgate upgrade``, ``rollback`` and ``reboot``: the executor against a cloud from ``rollgate up``.

``rollgate upgrade RUN_ID --to R`` plans the rolling upgrade of the run's
topology (as ``run.json`` records it) to release R under a policy (``--policy
FILE`` and/or the flags), validates it like a scenario file (exit 2 and
nothing touched on a bad policy), prints and saves the plan
(``results/<run-id>/plan.json``), then runs it with a write-ahead journal
(``results/<run-id>/journal``) and step events on the run's timeline.
``--resume`` continues a crashed run from its journal and saved plan;
``rollgate rollback RUN_ID`` reverses it (refused after finalize);
``rollgate reboot RUN_ID`` is a rolling reboot of the computes under a policy.

The run's cloud plans and drives it (``harness.clouds.profile(state.cloud)``:
``plan_for_run``, ``run_ops``): minicloud reads its deployed topology back as a
scenario; an openstack run (``rollgate up --cloud openstack``) is planned by
``harness.clouds.openstack.plan`` and driven by ``OpenStackOps`` (real
``keystone-manage``, ``nova-manage``, container swaps behind HAProxy); its
rolling reboot is not wired. The recap line gives the wall time of the run.

Exit codes: 0 done; 1 the cloud failed a step (FAIL; rolled back if the
policy says so); 2 bad input or a harness error. A finished or rolled-back
run's plan and journal are kept as ``plan.<n>.json`` / ``journal.<n>`` when a
new upgrade starts on the same cloud.

Test hook: with ``ROLLGATE_CRASH_AFTER_STEP=<step id>`` in the environment the
command kills itself (SIGKILL, no cleanup: a real crash) right after that
step's end is journalled, so tests can prove that ``--resume`` finishes.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from harness import clouds
from harness.clouds.base import CloudProfile
from harness.errors import CloudFailure, UsageError, ValidationError
from harness.executor import (
    COMPLETED,
    ROLLED_BACK,
    Executor,
    Journal,
    Plan,
    RunResult,
)
from harness.runstate import RunState
from harness.timeline import Timeline

CRASH_HOOK = "ROLLGATE_CRASH_AFTER_STEP"
POLICY_FLAGS = ("batch_size", "max_unavailable", "order", "instances")


def read_policy(path: Path | None, flags: dict[str, Any], hosts: tuple[str, ...] = ()) -> dict[str, Any]:
    """The policy mapping: the file's (its ``policy:`` section if it has one), flags win.

    ``--order`` is ``name``, ``random`` or host names (comma-separated); any
    other single word is passed on as is, for validation to name it.
    """
    policy: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ValidationError(str(path), "(file)", f"cannot read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ValidationError(str(path), "(file)", f"malformed YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValidationError(str(path), "(top level)", "must be a mapping of policy fields")
        section = loaded.get("policy", loaded)
        if not isinstance(section, dict):
            raise ValidationError(str(path), "policy", "must be a mapping of policy fields")
        policy.update(section)
    for name, value in flags.items():
        if value is None:
            continue
        if name == "order" and ("," in str(value) or value in hosts):
            policy[name] = [part.strip() for part in str(value).split(",") if part.strip()]
        else:
            policy[name] = value
    return policy


# --- files of a run ---------------------------------------------------------

def _plan_path(state: RunState) -> Path:
    return state.directory / "plan.json"


def _journal(state: RunState) -> Journal:
    return Journal(state.directory / "journal")


def _archive_finished(state: RunState) -> None:
    """Keep a finished run's plan and journal aside so that a new plan can start."""
    journal = _journal(state)
    journal_state = journal.state()
    if not journal.path.exists() or not journal_state.has_progress:
        return
    if journal_state.last_status not in (COMPLETED, ROLLED_BACK):
        raise UsageError(
            f"run {state.run_id} has an unfinished {_load_plan(state).action} "
            f"(journal status {journal_state.last_status or 'in progress'}): "
            f"`rollgate upgrade {state.run_id} --resume` or `rollgate rollback {state.run_id}` first")
    number = 1
    while (state.directory / f"journal.{number}").exists():
        number += 1
    os.replace(journal.path, state.directory / f"journal.{number}")
    if _plan_path(state).exists():
        os.replace(_plan_path(state), state.directory / f"plan.{number}.json")


def _load_plan(state: RunState) -> Plan:
    path = _plan_path(state)
    if not path.exists():
        raise UsageError(f"run {state.run_id} has no saved plan ({path}): nothing to resume or roll back; "
                         f"start one with `rollgate upgrade {state.run_id} --to RELEASE`")
    try:
        return Plan.load(path)
    except (ValueError, KeyError) as exc:
        raise UsageError(f"{path}: unreadable plan: {exc}") from None


def _load_run(run_id: str, drives: Callable[[CloudProfile], bool] = lambda profile: True) -> RunState:
    """The run, up, of a cloud whose profile ``drives`` says this command drives."""
    state = RunState.load(run_id)
    if state.status != "up":
        raise UsageError(f"run {run_id} is {state.status}, not up: `rollgate up` a cloud first")
    able = [name for name, profile in clouds.registry().items() if drives(profile)]
    if state.cloud not in able:
        raise UsageError(f"run {run_id} is an {state.cloud} cloud: this command drives "
                         f"{' and '.join(able)} clouds only (docs/openstack.md)")
    return state


class _CrashingTimeline(Timeline):
    """The test hook: SIGKILL this process once ``step_id``'s forward end is on the timeline."""

    def __init__(self, path: Path, step_id: str) -> None:
        self.step_id = step_id  # before the base class emits the header of a new file
        super().__init__(path)

    def emit(self, event: dict[str, Any]) -> None:
        super().emit(event)
        if (event.get("step_id") == self.step_id and event.get("phase") == "end"
                and event.get("direction") == "forward"):
            os.kill(os.getpid(), signal.SIGKILL)


def _timeline(state: RunState) -> Timeline:
    path = state.directory / "timeline.jsonl"
    crash_after = os.environ.get(CRASH_HOOK)
    return _CrashingTimeline(path, crash_after) if crash_after else Timeline(path)


def _executor(state: RunState, plan: Plan, timeline: Timeline) -> Executor:
    ops = clouds.profile(state.cloud).run_ops(state, plan)
    return Executor(plan, ops, _journal(state), timeline)


def _finish(result: RunResult, what: str, ok: str, started: float) -> None:
    """One recap line with the wall time; exit 1 (FAIL) unless the run ended as ``ok``."""
    line = f"{what}: {result.status} ({result.steps_run} step(s) run) in {time.monotonic() - started:.1f}s"
    if result.failed_step:
        line += f"; failed at {result.failed_step}: {result.error}"
    if result.rollback is not None:
        line += f"; rollback: {result.rollback.status}"
        if result.rollback.error:
            line += f" ({result.rollback.error})"
    click.echo(line)
    if result.status != ok:
        raise CloudFailure(line)


def _run_plan(state: RunState, plan: Plan) -> None:
    plan.save(_plan_path(state))
    click.echo(plan.render(), nl=False)
    started = time.monotonic()
    with _timeline(state) as timeline:
        result = _executor(state, plan, timeline).run()
    what = f"{plan.action} {plan.from_release} -> {plan.to_release} of run {state.run_id}"
    _finish(result, what, COMPLETED, started)


# --- commands ------------------------------------------------------------------

def _policy_options(command: Any) -> Any:
    for option in reversed((
        click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="YAML file with the policy fields (or a scenario-style `policy:` section)."),
        click.option("--batch-size", type=int, default=None, help="Compute hosts per batch."),
        click.option("--max-unavailable", type=int, default=None,
                     help="Most compute hosts out of service at once."),
        click.option("--order", default=None,
                     help="name, random (from the seed), or a comma-separated list of host names."),
        click.option("--instances", default=None, help="live-migrate, cold-migrate or leave."),
        click.option("--seed", type=click.IntRange(min=0), default=None,
                     help="Seed of every random choice (printed with the plan)."),
    )):
        command = option(command)
    return command


@click.command("upgrade")
@click.argument("run_id")
@click.option("--to", "target", default=None, help="Target release (e.g. 1.1, or 2026.2 for openstack).")
@_policy_options
@click.option("--resume", is_flag=True, help="Continue a crashed upgrade from its journal.")
def upgrade_command(run_id: str, target: str | None, policy_file: Path | None, batch_size: int | None,
                    max_unavailable: int | None, order: str | None, instances: str | None,
                    seed: int | None, resume: bool) -> None:
    """Rolling upgrade of a running cloud (from `rollgate up`) to --to, under a policy."""
    state = _load_run(run_id)
    if resume:
        plan = _load_plan(state)
        if target is not None and target != plan.to_release:
            raise UsageError(f"--to {target}: the run's saved plan goes to {plan.to_release}; "
                             "resume it as it was planned (or roll it back)")
        click.echo(f"resuming {plan.action} {plan.from_release} -> {plan.to_release} of run {run_id} "
                   f"(plan seed {plan.seed})")
        started = time.monotonic()
        with _timeline(state) as timeline:
            result = _executor(state, plan, timeline).resume()
        _finish(result, f"{plan.action} of run {run_id} (resumed)", COMPLETED, started)
        return
    if target is None:
        raise UsageError("--to RELEASE is required (or --resume to continue a crashed upgrade)")
    flags = dict(zip(POLICY_FLAGS, (batch_size, max_unavailable, order, instances), strict=True))
    label = str(policy_file) if policy_file else f"rollgate upgrade {run_id}"
    policy = read_policy(policy_file, flags, tuple(state.hosts))
    # validated (and what it needs there checked) before anything changes
    plan = clouds.profile(state.cloud).plan_for_run(state, "upgrade", target, policy, seed, label)
    _archive_finished(state)
    _run_plan(state, plan)


@click.command("reboot")
@click.argument("run_id")
@_policy_options
def reboot_command(run_id: str, policy_file: Path | None, batch_size: int | None,
                   max_unavailable: int | None, order: str | None, instances: str | None,
                   seed: int | None) -> None:
    """Rolling reboot of the computes of a running cloud (no release change), under a policy.

    A crashed reboot resumes with `rollgate upgrade RUN_ID --resume`.
    """
    state = _load_run(run_id, lambda profile: profile.rolling_reboot)
    flags = dict(zip(POLICY_FLAGS, (batch_size, max_unavailable, order, instances), strict=True))
    label = str(policy_file) if policy_file else f"rollgate reboot {run_id}"
    policy = read_policy(policy_file, flags, tuple(state.hosts))
    plan = clouds.profile(state.cloud).plan_for_run(state, "reboot", None, policy, seed, label)
    _archive_finished(state)
    _run_plan(state, plan)


@click.command("rollback")
@click.argument("run_id")
def rollback_command(run_id: str) -> None:
    """Reverse an unfinished upgrade, newest step first (refused after finalize)."""
    state = _load_run(run_id)
    plan = _load_plan(state)
    click.echo(f"rolling back {plan.action} {plan.from_release} -> {plan.to_release} of run {run_id}")
    started = time.monotonic()
    with _timeline(state) as timeline:
        result = _executor(state, plan, timeline).rollback()
    _finish(result, f"rollback of run {run_id}", ROLLED_BACK, started)


COMMANDS = (upgrade_command, rollback_command, reboot_command)

"""Everything ``rollgate run`` refuses before it starts, in one place.

``rollgate plan`` and ``rollgate run`` (``harness.gate.run.prepare``) both call
``check_runnable``: so a scenario that ``plan`` accepts, ``run`` starts, and a
scenario that ``run`` refuses, ``plan`` refuses with the same one-line error
(``FILE: FIELD: problem and fix``, exit 2). It reads the file (UTF-8, no
duplicate keys: ``harness.scenario.load``), validates every section
(``resources`` too), refuses what a gate run cannot do (no upgrade, faults it
does not inject yet, what the cloud's profile refuses: ``check_runnable``), and builds the plan the
run will follow (with its hold step and its rollback point). What depends on
the machine rather than the file (the backend, Docker images) is checked by
``run`` alone.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from harness import clouds
from harness.errors import ValidationError
from harness.executor.plan import Plan, choose_seed, stop_step
from harness.gate.hold import insert_hold
from harness.resources import ResourceSpec, parse_resources
from harness.scenario import Scenario
from harness.scenario.load import load_scenario


@dataclass(frozen=True)
class Runnable:
    """A scenario a gate run can start, with the plan it will follow."""

    scenario: Scenario
    resources: ResourceSpec
    plan: Plan
    seed: int
    stop_before: str | None  # upgrade.rollback_before: the step the run stops before


def check_runnable(path: str | Path, seed: int | None) -> Runnable:
    """Validate SCENARIO for a gate run and build its plan; ValidationError (exit 2) otherwise."""
    scenario = load_scenario(path)
    resources = parse_resources(scenario.resources, scenario.path)
    if scenario.upgrade is None:
        raise ValidationError(scenario.path, "upgrade",
                              "missing: a gate run (and its plan) needs an upgrade or a rolling reboot; "
                              "add upgrade: {from: ..., to: ...}")
    if scenario.faults:
        # Said, not ignored: a run that silently skipped its faults would PASS for the wrong reason.
        raise ValidationError(scenario.path, "faults",
                              "a gate run does not inject faults yet; remove the section, or inject by "
                              "hand with `rollgate fault` during `rollgate upgrade`")
    clouds.profile(scenario.cloud).check_runnable(scenario)
    chosen = choose_seed(seed, scenario.seed)
    plan = clouds.build_plan(scenario, chosen)
    if scenario.upgrade.hold_after_batch is not None:
        plan = insert_hold(plan, scenario.upgrade.hold_after_batch, scenario.upgrade.hold_seconds)
    stop_before = None
    if scenario.upgrade.rollback_before is not None:
        stop_before = stop_step(plan, scenario.upgrade.rollback_before)
        if stop_before is None:
            raise ValidationError(scenario.path, "upgrade.rollback_before",
                                  f"the plan has no {scenario.upgrade.rollback_before} step to stop "
                                  "before (see `rollgate plan`); remove the field or widen the policy")
        plan = dataclasses.replace(plan, notes=(*plan.notes, (
            f"rollback on purpose (upgrade.rollback_before: {scenario.upgrade.rollback_before}): the run "
            f"stops before {stop_before} and rolls back, newest step first")))
    return Runnable(scenario=scenario, resources=resources, plan=plan, seed=chosen, stop_before=stop_before)

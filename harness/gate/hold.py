"""The hold point of a plan: where a mixed-version-hold scenario stops to look around.

The planner knows nothing of holds (a hold is a property of a test, not of an
upgrade). The gate inserts one ``pause`` step after the last step of compute
batch N and renumbers the steps, so the saved plan, the journal and the
timeline all show where the hold was. The executor calls its ``pause``
callback for that step; the gate's callback verifies every resource in the
mixed state and then stays there for the hold's seconds.
"""
from __future__ import annotations

import dataclasses

from harness.executor.plan import Plan
from harness.executor.steps import Pause, Step

HOLD_PHASE = "hold (mixed versions)"


def batch_phase(number: int) -> str:
    """The prefix of the planner's phase name for compute batch ``number``."""
    return f"computes batch {number}/"


def insert_hold(plan: Plan, after_batch: int, seconds: float) -> Plan:
    """The plan with a hold step after compute batch ``after_batch`` (ValueError if no such batch)."""
    prefix = batch_phase(after_batch)
    last = max((i for i, s in enumerate(plan.steps) if s.phase.startswith(prefix)), default=None)
    if last is None:
        raise ValueError(f"plan {plan.scenario} has no compute batch {after_batch} to hold after")
    while last + 1 < len(plan.steps) and isinstance(plan.steps[last + 1], Pause) \
            and plan.steps[last + 1].phase.startswith(prefix):
        last += 1  # after the policy's own pause between batches
    hold = Pause(step_id="hold", phase=HOLD_PHASE, seconds=seconds)
    steps: list[Step] = [*plan.steps[:last + 1], hold, *plan.steps[last + 1:]]
    renumbered = tuple(dataclasses.replace(s, step_id=f"s{i:03d}") for i, s in enumerate(steps, start=1))
    notes = (*plan.notes, f"hold after compute batch {after_batch} at {renumbered[last + 1].step_id}: "
             "every resource is verified in the mixed-version state")
    return dataclasses.replace(plan, steps=renumbered, notes=notes)


def hold_step_id(plan: Plan) -> str | None:
    """The id of the hold step, if the plan has one."""
    return next((s.step_id for s in plan.steps if s.phase == HOLD_PHASE), None)

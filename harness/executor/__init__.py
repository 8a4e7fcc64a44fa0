"""The rolling-upgrade executor: plan as data, write-ahead journal, engine.

``build_plan(scenario, seed)`` makes the plan; ``Executor(plan, ops, journal,
timeline).run() / .resume() / .rollback()`` carries it out against any
``CloudOps`` implementation.
"""
from __future__ import annotations

from harness.executor.engine import (
    COMPLETED,
    FAILED,
    ROLLBACK_FAILED,
    ROLLED_BACK,
    STOPPED,
    Executor,
    JournalHasProgress,
    RollbackRefused,
    RunResult,
)
from harness.executor.journal import Journal, JournalMismatch
from harness.executor.ops import CheckReport, CloudOps, HealthReport, OperationFailed
from harness.executor.plan import Plan, build_plan, plan_upgrade

__all__ = [
    "COMPLETED", "FAILED", "ROLLBACK_FAILED", "ROLLED_BACK", "STOPPED", "CheckReport", "CloudOps", "Executor",
    "HealthReport", "Journal", "JournalHasProgress", "JournalMismatch", "OperationFailed", "Plan",
    "RollbackRefused", "RunResult", "build_plan", "plan_upgrade",
]

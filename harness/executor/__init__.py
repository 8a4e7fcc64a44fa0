"""The rolling-upgrade executor: plan as data, write-ahead journal, engine.

``plan_upgrade`` is the nova-style planner a cloud's profile may use
(``harness.clouds.build_plan(scenario, seed)`` asks the scenario's cloud); ``Executor(plan, ops, journal,
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
from harness.executor.plan import Plan, choose_seed, plan_upgrade

__all__ = [
    "COMPLETED", "FAILED", "ROLLBACK_FAILED", "ROLLED_BACK", "STOPPED", "CheckReport", "CloudOps", "Executor",
    "HealthReport", "Journal", "JournalHasProgress", "JournalMismatch", "OperationFailed", "Plan",
    "RollbackRefused", "RunResult", "choose_seed", "plan_upgrade",
]

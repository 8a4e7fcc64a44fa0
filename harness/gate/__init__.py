"""The gate: one scenario run from validation to verdict (``rollgate run``, the pytest plugin, the matrix).

``prepare(path, options, run_id)`` validates and plans before anything starts;
``run_gate(run, options, echo)`` deploys, observes, judges, writes the
reports and cleans up, and always returns a verdict.
"""
from __future__ import annotations

from harness.gate.run import GateOptions, GateRun, describe_result, prepare, run_gate

__all__ = ["GateOptions", "GateRun", "describe_result", "prepare", "run_gate"]

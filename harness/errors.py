"""Exit codes and the two kinds of failure rollgate distinguishes.

FAIL is the cloud breaking a promise (downtime, lost data, dirty rollback).
ERROR is the harness or the machine failing (Docker down, image missing, bad
input). Gates retry ERROR, never FAIL, so the difference is kept everywhere.
"""
from __future__ import annotations

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_ERROR = 2  # harness/infrastructure error, and usage errors


class RollgateError(Exception):
    """The harness or the machine failed: the verdict is ERROR (exit 2)."""

    exit_code = EXIT_ERROR


class UsageError(RollgateError):
    """Bad input from the user: a file, a field, an argument. Exit 2."""


class ValidationError(UsageError):
    """A scenario or config file is invalid; the message names file and field."""

    def __init__(self, path: str, field: str, problem: str) -> None:
        self.path = path
        self.field = field
        self.problem = problem
        super().__init__(f"{path}: {field}: {problem}")


class DeployError(RollgateError):
    """A cloud could not be brought up (the harness's or the machine's fault)."""


class CloudFailure(Exception):
    """The cloud broke a promise: the verdict is FAIL (exit 1)."""

    exit_code = EXIT_FAIL

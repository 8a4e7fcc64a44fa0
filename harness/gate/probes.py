"""Probes: work the gate does around the executor's operations, and judges afterwards.

Some promises can only be tested at the moment an operation happens: a request
held open while its service stops (graceful shutdown), a boot while a host is
disabled (maintenance mode), a burst of writes while an instance live-migrates.
A probe sees every operation the executor asks of the cloud through
``around(operation, args, kwargs)``, a context manager entered before the call
and left after it, and turns what it saw into checks at the end. The executor
knows nothing of probes: ``observe_ops`` wraps the cloud's operations the way
``guard_ops`` does.

A probe must never make the executor fail: an exception inside a probe is
logged and reported as that probe's ERROR check (``probe.<name>``), not raised.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.scenario import Scenario
from harness.timeline import Timeline
from harness.traffic.plan import InstanceTarget
from harness.verdict import Check

LOG = logging.getLogger(__name__)


@dataclass
class ProbeContext:
    """What a probe may use: the run's directory and timeline, its scenario and its cloud."""

    run_dir: Path
    timeline: Timeline
    scenario: Scenario
    cloud: Any  # harness.gate.cloud.Cloud
    instances: list[InstanceTarget] = field(default_factory=list)
    resources: Any = None  # the run's harness.resources.ResourcePhases (None: no resource phases)
    phases: list[Any] = field(default_factory=list)  # the run's PhaseResults: a probe may add its own


class StepProbe:
    """Base class: override ``around`` and ``checks``; ``name`` names the ERROR check."""

    name = "probe"

    def around(self, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def checks(self) -> list[Check]:
        return []

    def close(self) -> None:
        """Stop anything still running (called once, after the executor and its rollback)."""


#: Factories of the probes a gate run uses, in order; a factory returns None when its probe
#: does not apply to the run (the cloud or the scenario has nothing for it to probe).
PROBE_FACTORIES: list[Callable[[ProbeContext], StepProbe | None]] = []


def build_probes(context: ProbeContext) -> list[StepProbe]:
    probes = []
    for factory in PROBE_FACTORIES:
        probe = factory(context)
        if probe is not None:
            probes.append(probe)
    return probes


class _Failures:
    """Exceptions raised inside probes, kept per probe for its ERROR check."""

    def __init__(self) -> None:
        self.by_probe: dict[str, list[str]] = {}

    def add(self, probe: StepProbe, where: str, exc: BaseException) -> None:
        LOG.exception("probe %s failed in %s", probe.name, where)
        self.by_probe.setdefault(probe.name, []).append(f"{where}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def _safe(probe: StepProbe, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any],
          failures: _Failures) -> Iterator[None]:
    try:
        manager = probe.around(operation, args, kwargs)
        manager.__enter__()
    except Exception as exc:
        failures.add(probe, f"before {operation}", exc)
        yield
        return
    try:
        yield
    except BaseException as exc:
        try:
            manager.__exit__(type(exc), exc, exc.__traceback__)
        except Exception as probe_exc:
            failures.add(probe, f"after {operation}", probe_exc)
        raise
    try:
        manager.__exit__(None, None, None)
    except Exception as exc:
        failures.add(probe, f"after {operation}", exc)


class ObservedOps:
    """The cloud's operations, each call wrapped by every probe's ``around``."""

    def __init__(self, ops: Any, probes: list[StepProbe]) -> None:
        self._ops = ops
        self._probes = probes
        self._failures = _Failures()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ops, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def observed(*args: Any, **kwargs: Any) -> Any:
            with contextlib.ExitStack() as stack:
                for probe in self._probes:
                    stack.enter_context(_safe(probe, name, args, kwargs, self._failures))
                return attr(*args, **kwargs)

        return observed

    def probe_checks(self) -> list[Check]:
        """Every probe's checks, plus an ERROR check for each probe that raised."""
        checks: list[Check] = []
        for probe in self._probes:
            try:
                probe.close()
                checks += probe.checks()
            except Exception as exc:
                self._failures.add(probe, "checks", exc)
        for name, problems in self._failures.by_probe.items():
            checks.append(Check.errored(f"probe.{name}", f"the {name} probe failed: {problems[0]}"[:300]))
        return checks


def observe_ops(ops: Any, probes: list[StepProbe]) -> ObservedOps:
    return ObservedOps(ops, probes)

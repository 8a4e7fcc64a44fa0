"""The write-ahead journal of a run: what was begun, what ended, both ways.

Every step is recorded before it runs (``begin``) and after (``end`` with its
outcome), as one JSON line, flushed and fsynced before the executor moves on.
After a crash (even ``kill -9`` or a power cut) the journal therefore says,
for every step, whether its effect is absent, in place, or possibly partial:
a step begun and not ended may have half happened. Resume re-runs it
(operations are idempotent); rollback runs its inverse. A torn last line (the
crash hit mid-write) is ignored: the step it described is treated as begun.

Lines: ``{"type": "plan", "digest", "seed", "steps"}`` first, then
``{"type": "begin"|"end", "step", "kind", "direction": "forward"|"rollback",
"finalize", "outcome", "error", "wall"}`` and ``{"type": "run", "status"}``.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import RollgateError
from harness.executor.steps import Step

FORWARD = "forward"
ROLLBACK = "rollback"

# Effect of a step on the cloud, as the journal proves it.
ABSENT = "absent"  # never run, or fully reversed
PARTIAL = "partial"  # begun (either way) and not ended well: may have half happened
DONE = "done"  # ran forward to the end


class JournalMismatch(RollgateError):
    """The journal belongs to another plan: resuming it would do the wrong thing."""


@dataclass
class JournalState:
    """What the journal proves, folded from its lines."""

    plan_digest: str | None = None
    effects: dict[str, str] = field(default_factory=dict)  # step id -> ABSENT | PARTIAL | DONE
    finalize_started: str | None = None  # id of the first finalize step begun
    last_status: str | None = None  # status of the last "run" line
    entries: int = 0

    def effect(self, step_id: str) -> str:
        return self.effects.get(step_id, ABSENT)

    @property
    def has_progress(self) -> bool:
        return any(effect != ABSENT for effect in self.effects.values())


class Journal:
    """Append-only, fsynced JSON lines at ``path`` (``results/<run-id>/journal``)."""

    def __init__(self, path: str | Path, *, durable: bool = True) -> None:
        """``durable=False`` skips fsync: only for tests that simulate crashes in-process."""
        self.path = Path(path)
        self.durable = durable
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _append(self, entry: dict[str, Any]) -> None:
        entry.setdefault("wall", time.time())
        line = (json.dumps(entry, separators=(",", ":"), sort_keys=True) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                if self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every complete line; a torn last line is skipped."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break
                try:
                    yield json.loads(raw)
                except json.JSONDecodeError:
                    break

    def state(self) -> JournalState:
        state = JournalState()
        for entry in self.entries():
            state.entries += 1
            kind = entry.get("type")
            if kind == "plan":
                state.plan_digest = entry["digest"]
            elif kind == "run":
                state.last_status = entry["status"]
            elif kind == "begin":
                state.effects[entry["step"]] = PARTIAL
                if entry.get("finalize") and entry["direction"] == FORWARD and not state.finalize_started:
                    state.finalize_started = entry["step"]
            elif kind == "end":
                ok = entry["outcome"] == "ok"
                if entry["direction"] == FORWARD:
                    state.effects[entry["step"]] = DONE if ok else PARTIAL
                else:
                    state.effects[entry["step"]] = ABSENT if ok else PARTIAL
        return state

    def bind(self, digest: str, seed: int, steps: int) -> JournalState:
        """Tie the journal to a plan (first use) or check it is that plan's (resume)."""
        state = self.state()
        if state.plan_digest is None:
            self._append({"type": "plan", "digest": digest, "seed": seed, "steps": steps})
            state.plan_digest = digest
        elif state.plan_digest != digest:
            raise JournalMismatch(
                f"{self.path}: journal belongs to plan {state.plan_digest}, not {digest} "
                f"(seed {seed}): resume with the saved plan.json of that run")
        return state

    def begin(self, step: Step, direction: str) -> None:
        self._append({"type": "begin", "step": step.step_id, "kind": step.kind,
                      "direction": direction, "finalize": step.finalize})

    def end(self, step: Step, direction: str, outcome: str, error: str | None = None) -> None:
        self._append({"type": "end", "step": step.step_id, "kind": step.kind,
                      "direction": direction, "outcome": outcome, "error": error})

    def record_status(self, status: str, detail: str | None = None) -> None:
        self._append({"type": "run", "status": status, "detail": detail})

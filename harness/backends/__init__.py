"""Where hosts live: the backend registry.

A static registry (``{"docker": ...}``) until a real third party needs entry
points. ``run.json`` records the backend's name, so ``down``, ``status`` and
``fault`` of a run use the backend that deployed it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.backends.docker import DockerBackend
from harness.backends.process import ProcessBackend
from harness.errors import UsageError

if TYPE_CHECKING:
    from harness.runstate import RunState

BACKENDS: dict[str, type[Any]] = {"process": ProcessBackend, "docker": DockerBackend}


def make_backend(name: str, state: RunState) -> ProcessBackend | DockerBackend:
    """The backend called ``name`` for a run (the docker one connects to the engine)."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise UsageError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}") from None
    backend: ProcessBackend | DockerBackend = cls(state)
    return backend


__all__ = ["BACKENDS", "DockerBackend", "ProcessBackend", "make_backend"]

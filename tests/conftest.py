"""Session-wide test conventions.

Docker-marked tests (``@pytest.mark.docker``) skip, with the reason, when no Docker engine
answers (or ``ROLLGATE_NO_DOCKER=1`` says not to use one), instead of failing: the engine is
pinged once per session, and only when such a test was collected.
"""
from __future__ import annotations

import os

import pytest


def docker_engine_problem() -> str | None:
    """Why Docker-marked tests cannot run here, or None when an engine answers."""
    if os.environ.get("ROLLGATE_NO_DOCKER") == "1":
        return "ROLLGATE_NO_DOCKER=1"
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as exc:  # no SDK, no socket, no permission, a hung engine: all "no engine"
        return f"no Docker engine answers ({type(exc).__name__}: {str(exc)[:200]})"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("docker") is not None]
    if not marked:
        return
    problem = docker_engine_problem()
    if problem is None:
        return
    skip = pytest.mark.skip(reason=f"needs a Docker engine: {problem}")
    for item in marked:
        item.add_marker(skip)

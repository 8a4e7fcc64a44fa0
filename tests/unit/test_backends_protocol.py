"""Every registered backend satisfies the Backend protocol the harness consumes:
each protocol method exists, is concrete, and takes the protocol's parameters."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from harness.backends import BACKENDS, make_backend
from harness.backends.base import Backend, BaseBackend
from harness.backends.docker import DockerBackend
from harness.backends.process import ProcessBackend
from harness.errors import UsageError
from harness.runstate import RunState

PROTOCOL_METHODS = sorted(name for name, value in vars(Backend).items()
                          if callable(value) and not name.startswith("_"))


def test_the_registry_names_both_backends() -> None:
    assert {"process": ProcessBackend, "docker": DockerBackend} == BACKENDS
    with pytest.raises(UsageError, match="unknown backend 'podman'; valid: process, docker"):
        make_backend("podman", RunState(run_id="r", backend="podman"))


def test_the_protocol_has_the_methods_the_harness_uses() -> None:
    assert {"create_host", "exec", "start_service", "stop_service", "kill_service", "replace_service",
            "reboot_host", "logs", "address", "manage", "update_host_config", "signal_service",
            "lb_api", "testinfra_host", "service_address", "destroy"} <= set(PROTOCOL_METHODS)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backend_class_implements_every_protocol_method(name: str) -> None:
    cls = BACKENDS[name]
    assert issubclass(cls, BaseBackend)
    assert not getattr(cls, "__abstractmethods__", None), f"{name} leaves {cls.__abstractmethods__} abstract"
    for method in PROTOCOL_METHODS:
        implemented = inspect.signature(getattr(cls, method))
        wanted = inspect.signature(getattr(Backend, method))
        for parameter in wanted.parameters.values():
            assert parameter.name in implemented.parameters, f"{name}.{method} lacks {parameter.name}"
            got = implemented.parameters[parameter.name]
            assert got.kind == parameter.kind, f"{name}.{method}({parameter.name}) kind {got.kind}"
            if parameter.default is not inspect.Parameter.empty:
                assert got.default == parameter.default, f"{name}.{method}({parameter.name}) default"


class _NoEngine:
    """Enough of a Docker client to construct the backend without an engine."""


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backend_instances_are_runtime_backends(name: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path))
    state = RunState(run_id="protocol-check", backend=name)
    instance: Any = ProcessBackend(state) if name == "process" else DockerBackend(state, client=_NoEngine())
    assert isinstance(instance, Backend)
    assert instance.run_id == "protocol-check"

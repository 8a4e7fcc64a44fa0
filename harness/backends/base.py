"""Where hosts live: the small interface every backend implements.

The executor, the fault injector and the checks reach hosts only through this
interface, so the same upgrade runs on local processes and on Docker.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ExecResult:
    """What running a command on a host gave (testinfra's shape)."""

    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


@dataclass
class HostSpec:
    """One host of a topology: its name, roles and the release of each service."""

    name: str
    roles: tuple[str, ...]
    services: dict[str, str]  # service name -> release label
    address: str | None = None  # set by the backend when deployed
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """What the harness consumes from a backend."""

    run_id: str

    def create_host(self, spec: HostSpec) -> None: ...

    def exec(self, host: str, command: list[str], timeout: float = 60.0) -> ExecResult: ...

    def start_service(self, host: str, service: str) -> None: ...

    def stop_service(self, host: str, service: str, timeout: float = 15.0) -> None: ...

    def kill_service(self, host: str, service: str) -> None: ...

    def replace_service(self, host: str, service: str, release: str, timeout: float = 15.0) -> None: ...

    def reboot_host(self, host: str) -> None: ...

    def logs(self, host: str, service: str) -> str: ...

    def address(self, host: str) -> str: ...

    def manage(self, host: str, *args: str, release: str | None = None,
               timeout: float = 60.0) -> ExecResult: ...

    def update_host_config(self, host: str, values: dict[str, Any]) -> None: ...

    def signal_service(self, host: str, service: str, signum: int) -> None: ...

    def lb_api(self, host: str) -> Any: ...

    def testinfra_host(self, host: str, service: str | None = None) -> Any: ...

    def service_address(self, host: str, service: str) -> tuple[str, int]: ...

    def destroy(self) -> None: ...

    def engine_alive(self) -> bool: ...


class BaseBackend(abc.ABC):
    """Base class for backend implementations (the Protocol is what callers see)."""

    name: str = "base"

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    @abc.abstractmethod
    def create_host(self, spec: HostSpec) -> None:
        """Create the host and start every service of its spec."""

    @abc.abstractmethod
    def exec(self, host: str, command: list[str], timeout: float = 60.0) -> ExecResult:
        """Run a command on the host (with the host's cloud config at hand)."""

    @abc.abstractmethod
    def start_service(self, host: str, service: str) -> None:
        """Start one service of the host at its current release."""

    @abc.abstractmethod
    def stop_service(self, host: str, service: str, timeout: float = 15.0) -> None:
        """SIGTERM, wait at most ``timeout``, then SIGKILL (graceful stop)."""

    @abc.abstractmethod
    def kill_service(self, host: str, service: str) -> None:
        """SIGKILL the service at once (a fault)."""

    @abc.abstractmethod
    def replace_service(self, host: str, service: str, release: str, timeout: float = 15.0) -> None:
        """Gracefully stop the service and start it at ``release``, keeping the host's state."""

    @abc.abstractmethod
    def reboot_host(self, host: str) -> None:
        """Kill everything of the host (instances included) and start its services again."""

    @abc.abstractmethod
    def logs(self, host: str, service: str) -> str:
        """The service's log so far."""

    @abc.abstractmethod
    def address(self, host: str) -> str:
        """The address the host's services listen on, as the harness reaches it."""

    @abc.abstractmethod
    def manage(self, host: str, *args: str, release: str | None = None,
               timeout: float = 60.0) -> ExecResult:
        """Run the cloud's admin CLI on the host; ``release`` picks the code's release
        (an upgrade runs the new release's ``db expand`` while the old one serves)."""

    @abc.abstractmethod
    def update_host_config(self, host: str, values: dict[str, Any]) -> None:
        """Merge ``values`` into the host's config file (read at the next start or SIGHUP)."""

    @abc.abstractmethod
    def signal_service(self, host: str, service: str, signum: int) -> None:
        """Send a signal to the service's main process (e.g. SIGHUP to reload)."""

    @abc.abstractmethod
    def lb_api(self, host: str) -> Any:
        """The HAProxy runtime API (``harness.backends.haproxy.RuntimeAPI``) of an lb host."""

    @abc.abstractmethod
    def testinfra_host(self, host: str, service: str | None = None) -> Any:
        """A testinfra host for checks on ``host`` (``docker://<container>``, ``local://``)."""

    @abc.abstractmethod
    def service_address(self, host: str, service: str) -> tuple[str, int]:
        """(ip, port) where the harness reaches the service (its /healthz): the host's own
        address and the service's fixed port on the process backend, a port published on
        127.0.0.1 on docker."""

    @abc.abstractmethod
    def destroy(self) -> None:
        """Stop and remove everything of this run."""

    def engine_alive(self) -> bool:
        """Does the engine the hosts live in answer? A backend without one (processes on
        this machine) has nothing that can go away under a run."""
        return True

"""A run's directory and its saved state: ``results/<run-id>/``.

``run.json`` records what a run deployed (backend, hosts, addresses, services
and their releases and pids) so that later commands (``down``, ``status``,
``observe``, ``fault``, ``upgrade``) and a crashed run's cleanup can find it.
It is rewritten atomically (write to a temporary file, then rename), so a
crash never leaves it truncated.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UsageError

RUN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def results_root() -> Path:
    """Where runs write: ``$ROLLGATE_RESULTS`` or ``./results``."""
    return Path(os.environ.get("ROLLGATE_RESULTS", "results")).resolve()


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def check_run_id(run_id: str) -> str:
    if not RUN_ID_RE.match(run_id):
        raise UsageError(
            f"run id {run_id!r} is invalid: use 1-40 lowercase letters, digits and dashes")
    return run_id


@dataclass
class ServiceState:
    release: str
    pid: int | None = None
    port: int | None = None


@dataclass
class HostState:
    name: str
    roles: list[str]
    address: str
    services: dict[str, ServiceState] = field(default_factory=dict)


@dataclass
class RunState:
    run_id: str
    backend: str
    cloud: str = "minicloud"
    status: str = "deploying"  # deploying | up | down | failed
    hosts: dict[str, HostState] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)

    def host_state(self, host: str) -> HostState:
        """The host's state; a UsageError naming the run's hosts if there is none."""
        try:
            return self.hosts[host]
        except KeyError:
            raise UsageError(
                f"no host {host!r} in run {self.run_id}; hosts: {', '.join(self.hosts)}") from None

    def service_state(self, host: str, service: str) -> ServiceState:
        """The service's state on ``host``; a UsageError naming what the host runs if absent."""
        state = self.host_state(host)
        try:
            return state.services[service]
        except KeyError:
            raise UsageError(
                f"host {host!r} runs no {service!r}; it runs: {', '.join(state.services)}") from None

    @property
    def directory(self) -> Path:
        return results_root() / self.run_id

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / "run.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        os.replace(tmp, target)

    @classmethod
    def load(cls, run_id: str) -> RunState:
        path = results_root() / check_run_id(run_id) / "run.json"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"no run {run_id!r}: {path} does not exist (see `rollgate status`)") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: malformed: {exc.msg}") from None
        hosts = {
            name: HostState(
                name=h["name"], roles=list(h["roles"]), address=h["address"],
                services={s: ServiceState(**v) for s, v in h["services"].items()})
            for name, h in raw.pop("hosts", {}).items()
        }
        return cls(hosts=hosts, **raw)


def list_runs(root: Path | None = None) -> list[RunState]:
    """The runs recorded under ``root`` (default: this results root), by run id."""
    runs = []
    root = root or results_root()
    if root.is_dir():
        for path in sorted(root.glob("*/run.json")):
            if root == results_root():
                try:
                    runs.append(RunState.load(path.parent.name))
                except UsageError:
                    continue
                continue
            try:  # another results root (status --machine-wide): read, never written from here
                raw = json.loads(path.read_text())
                runs.append(RunState(run_id=raw["run_id"], backend=raw["backend"],
                                     cloud=raw.get("cloud", "minicloud"), status=raw.get("status", "?"),
                                     endpoints=raw.get("endpoints", {}), created=raw.get("created", 0.0)))
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return runs


def mark_down(root: Path) -> int:
    """Record every run under ``root`` and the roots below it (``<root>/matrix/runs/<id>``,
    ``<root>/catalog/runs/<id>``) as down, after ``down --all`` stopped them; how many changed."""
    changed = 0
    for path in sorted([*root.glob("*/run.json"), *root.glob("*/runs/*/run.json")]):
        try:
            raw = json.loads(path.read_text())
            if raw.get("status") == "down":
                continue
            raw["status"] = "down"
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(raw, indent=2, sort_keys=True))
            os.replace(tmp, path)
            changed += 1
        except (OSError, ValueError, AttributeError):
            continue
    return changed

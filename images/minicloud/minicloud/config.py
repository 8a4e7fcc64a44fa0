"""Host configuration: one JSON file per host, read by every service on it.

Errors name the file and the field, and are raised before any port is bound.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minicloud.releases import Release, UnknownRelease, get_release

SERVICES = ("identity", "image", "compute-api", "conductor", "scheduler",
            "compute-agent", "hypervisor", "network", "datapath")

PORTS = {
    "identity": 5000,
    "image": 9292,
    "compute-api": 8774,
    "conductor": 8780,
    "scheduler": 8781,
    "compute-agent": 8782,
    "hypervisor": 8783,
    "network": 9696,
    "datapath": 9697,
}


class ConfigError(Exception):
    """A configuration problem: names the file, the field and the problem."""

    def __init__(self, path: str | Path, field_name: str, problem: str) -> None:
        super().__init__(f"{path}: {field_name}: {problem}")


@dataclass
class Config:
    path: Path
    service: str
    release: Release
    host: str
    bind: str
    state_dir: Path
    database: str | None
    endpoints: dict[str, str]
    public_endpoints: dict[str, str] = field(default_factory=dict)
    upgrade_levels_compute: str | None = "auto"
    heartbeat_interval: float = 1.0
    service_down_time: float = 5.0
    shutdown_timeout: float = 10.0
    admin_password: str = "rollgate-admin"
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return PORTS[self.service]

    def endpoint(self, name: str) -> str:
        try:
            return self.endpoints[name].rstrip("/")
        except KeyError:
            raise ConfigError(self.path, f"endpoints.{name}", "missing") from None

    def public_endpoint(self, name: str) -> str:
        return self.public_endpoints.get(name, self.endpoint(name)).rstrip("/")


def _require(path: Path, raw: dict[str, Any], name: str, kind: type) -> Any:
    if name not in raw:
        raise ConfigError(path, name, "missing (required)")
    value = raw[name]
    if not isinstance(value, kind):
        raise ConfigError(path, name, f"must be {kind.__name__}, got {type(value).__name__}")
    return value


def load_config(path: str | Path, service: str) -> Config:
    """Read and validate the host config for ``service``."""
    path = Path(path)
    if service not in SERVICES:
        raise ConfigError(path, "service", f"unknown service {service!r}; valid: {', '.join(SERVICES)}")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(path, "(file)", f"cannot read: {exc.strerror}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(path, f"(line {exc.lineno})", f"malformed JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise ConfigError(path, "(top level)", "must be a JSON object")
    releases = raw.get("releases") or {}
    if not isinstance(releases, dict):
        raise ConfigError(path, "releases", "must be an object of service -> release")
    label = releases.get(service, raw.get("release"))
    field_name = f"releases.{service}" if service in releases else "release"
    if not isinstance(label, str):
        raise ConfigError(path, field_name, "missing (required), e.g. \"1.0\"")
    try:
        release = get_release(label)
    except UnknownRelease as exc:
        raise ConfigError(path, field_name, str(exc)) from None
    endpoints = _require(path, raw, "endpoints", dict)
    levels = raw.get("upgrade_levels", {"compute": "auto"}) or {}
    cap = levels.get("compute", "auto") if isinstance(levels, dict) else None
    if cap not in (None, "auto"):
        try:
            get_release(cap)
        except UnknownRelease as exc:
            raise ConfigError(path, "upgrade_levels.compute", f"{exc}; or \"auto\" or null") from None
    numbers = {}
    for name, default in (("heartbeat_interval", 1.0), ("service_down_time", 5.0),
                          ("shutdown_timeout", 10.0)):
        value = raw.get(name, default)
        if not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(path, name, f"must be a positive number, got {value!r}")
        numbers[name] = float(value)
    return Config(
        path=path,
        service=service,
        release=release,
        host=_require(path, raw, "host", str),
        bind=_require(path, raw, "bind", str),
        state_dir=Path(_require(path, raw, "state_dir", str)),
        database=raw.get("database"),
        endpoints={k: str(v) for k, v in endpoints.items()},
        public_endpoints={k: str(v) for k, v in (raw.get("public_endpoints") or {}).items()},
        upgrade_levels_compute=cap,
        admin_password=str(raw.get("admin_password", "rollgate-admin")),
        raw=raw,
        **numbers,
    )

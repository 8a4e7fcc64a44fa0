"""What differs between minicloud releases, as data.

Every behaviour that changes between releases reads this table, so a release is
one row here rather than ``if release == ...`` scattered through the services.
"""
from __future__ import annotations

from dataclasses import dataclass

from minicloud.defects import DEFECTS

RELEASE_NAMES = ("1.0", "1.1", "1.1.1", "2.0")
VARIANTS = tuple(DEFECTS)  # the defect variants (minicloud.defects)


@dataclass(frozen=True)
class Release:
    """One minicloud release (with an optional defect variant)."""

    name: str
    series: str  # "1.0", "1.1" or "2.0": patch releases share their series
    service_version: int
    compute_rpc: str  # compute RPC API version this release speaks (newest)
    instance_version: str  # Instance object version
    expand_head: str  # alembic revision at the head of the expand branch
    contract_head: str  # alembic revision at the head of the contract branch
    max_microversion: str
    min_peer_service_version: int  # oldest service version it accepts (N-1)
    security_defect: bool = False
    variant: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}+{self.variant}" if self.variant else self.name

    def rpc_for_service_version(self, version: int) -> str:
        """The compute RPC version a peer of that service version speaks."""
        return _BY_SERVICE_VERSION[version].compute_rpc

    def instance_version_for_service_version(self, version: int) -> str:
        return _BY_SERVICE_VERSION[version].instance_version


_RELEASES = {
    "1.0": Release("1.0", "1.0", 10, "1.0", "1.0", "e10", "c10", "2.53", 10),
    "1.1": Release("1.1", "1.1", 11, "1.1", "1.1", "e11", "c11", "2.60", 10,
                   security_defect=True),
    "1.1.1": Release("1.1.1", "1.1", 11, "1.1", "1.1", "e11", "c11", "2.60", 10),
    "2.0": Release("2.0", "2.0", 20, "1.2", "1.2", "e20", "c20", "2.73", 11),
}
_BY_SERVICE_VERSION = {r.service_version: r for r in _RELEASES.values() if r.name != "1.1"}
_BY_SERVICE_VERSION[11] = _RELEASES["1.1.1"]


class UnknownRelease(ValueError):
    pass


def get_release(label: str) -> Release:
    """Parse ``1.1`` or ``1.1+unpinned``; raise UnknownRelease naming what is valid."""
    name, _, variant = label.partition("+")
    if name not in _RELEASES:
        raise UnknownRelease(
            f"unknown release {label!r}; valid: {', '.join(RELEASE_NAMES)}"
            f" (optionally +{'|+'.join(VARIANTS)})")
    if variant and variant not in VARIANTS:
        raise UnknownRelease(
            f"unknown variant {variant!r} in {label!r}; valid: {', '.join(VARIANTS)}")
    base = _RELEASES[name]
    if not variant:
        return base
    return Release(**{**base.__dict__, "variant": variant})


def service_version_release(version: int) -> Release:
    """The (newest patch) release that registers with this service version."""
    return _BY_SERVICE_VERSION[version]

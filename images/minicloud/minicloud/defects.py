"""The defect variants: releases with one realistic upgrade bug each.

A release label ``1.1+NAME`` runs release 1.1 with the defect NAME switched on
(``Release.variant``). Each defect is the smallest change a real developer
could make by mistake; the code that misbehaves tests ``has_defect(release,
NAME)`` at the one place where the bug lives, so reading that line shows the
bug. The harness never imports this module: it reads the catalog
(``images/minicloud/catalog.yaml``), which names the scenario and the check that
must catch each defect; ``tests/minicloud/test_defects.py`` keeps the two lists
equal. DESIGN.md ("Defect catalog") describes each one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Defect:
    """One defect: its class (what kind of upgrade promise it breaks) and what it does."""

    defect_class: str
    summary: str


#: name -> defect. Classes: maintenance-mode, live-migration, versioning, schema-migration,
#: graceful-shutdown, dataplane-continuity, api-contract, rollback, security-fix, readiness,
#: performance, restart-data-loss.
DEFECTS: dict[str, Defect] = {
    "unpinned": Defect("versioning", "the conductor ignores upgrade_levels: sends Instance 1.1 and "
                                     "RPC 1.1 to 1.0 compute agents"),
    "nostart": Defect("readiness", "the compute-agent of compute-2 exits 1 at start"),
    "migration-unscoped-update": Defect(
        "schema-migration", "split_floating_address's UPDATE lost its WHERE: every row of a batch "
                            "gets the last migrated row's floating address"),
    "reads-new-columns-only": Defect(
        "schema-migration", "the 1.1 data layer reads the floating address from the new columns only "
                            "(the fallback to floating_address dropped): servers not yet migrated have "
                            "no address until the online data migration runs"),
    "legacy-address-unwritten": Defect(
        "rollback", "1.1 writes the floating address of the servers it creates to the new columns "
                    "only: after a rollback 1.0 sees no address for them"),
    "migration-clears-legacy": Defect(
        "rollback", "split_floating_address moves instead of copying: it clears floating_address, "
                    "so after a rollback 1.0 sees no address for every migrated server"),
    "isolation-index-unfixed": Defect(
        "security-fix", "the 1.1.1 fix scopes GET /servers/detail again but not GET /servers"),
    "all-tenants-unchecked": Defect(
        "security-fix", "the 1.1.1 fix restores the project scope but drops the admin check on "
                        "all_tenants: a member's ?all_tenants=1 lists every project's servers"),
}


def has_defect(release: Any, name: str) -> bool:
    """True when ``release`` (a ``Release``) carries the defect ``name``."""
    if name not in DEFECTS:  # a typo here would silently switch a defect off
        raise KeyError(f"unknown defect {name!r}")
    return getattr(release, "variant", None) == name

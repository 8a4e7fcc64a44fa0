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
#: performance (latency and resource regressions), restart-data-loss.
DEFECTS: dict[str, Defect] = {
    "unpinned": Defect("versioning", "the conductor ignores upgrade_levels: sends Instance 1.1 and "
                                     "RPC 1.1 to 1.0 compute agents"),
    "nostart": Defect("readiness", "the compute-agent of compute-2 exits 1 at start"),
    "activate-stale-row": Defect("live-migration", "after a live migration the conductor activates the "
                                                   "floating port's binding from the instance row it read "
                                                   "before the update: back to the source, which exits"),
    "activate-rebind": Defect("live-migration", "after a live migration the conductor deletes the floating "
                                                "port's binding and creates it again instead of updating it: "
                                                "new connections are refused between the two calls"),
    "resync-recreate": Defect("dataplane-continuity", "the network agent's periodic resync deletes every "
                                                      "forwarder and re-creates it instead of fixing only "
                                                      "differences: new connections are refused for a moment "
                                                      "every resync"),
    "state-key-renamed": Defect("dataplane-continuity", "the network agent saves its floating table under a "
                                                        "renamed key with no migration of 1.0's file: the "
                                                        "upgraded agent starts empty and its first resync "
                                                        "deletes every forwarder"),
    "hostid-microversion": Defect("api-contract", "the server view shows hostId only from microversion "
                                                  "2.3: a 2.1 client loses a field it always had"),
    "stale-service-version": Defect("versioning", "the 1.1 compute agent registers the oldest service "
                                                  "version it accepts (10) instead of its own (11)"),
    "flavor-description-early": Defect("api-contract", "an off-by-one microversion gate: the flavor "
                                                       "description (2.55) shows at 2.54 already"),
    "api-nodrain": Defect("graceful-shutdown", "the compute-api reads its drain bound from a renamed "
                                               "option (absent: 0 s): SIGTERM drops requests in flight"),
    "conductor-dropcasts": Defect("graceful-shutdown", "the conductor's stop no longer waits for "
                                                       "running casts: a build in flight is lost"),
    "sched-nodisabled": Defect("maintenance-mode", "the scheduler's filter reads a `status` field host "
                                                   "states do not have: disabled hosts get builds"),
    "sched-cache": Defect("maintenance-mode", "the scheduler reuses host states for 60 s: a host "
                                              "disabled meanwhile keeps receiving builds"),
    "token-memory": Defect("restart-data-loss", "identity keeps issued tokens in process memory, not "
                                                "its tokens table: unknown to the other controller, "
                                                "lost at restart"),
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
    "ready-before-warm": Defect(
        "readiness", "the 1.1 compute-api serves the API only once its periodic cache refresh has run, "
                     "whose first pass comes one interval (5 s) after start; /healthz says ok at once, "
                     "so for 5 s after the health gate every API call is refused with 503"),
    "tokens-table-recreated": Defect(
        "restart-data-loss", "1.1 identity's start-up DDL drops and creates the tokens table instead of "
                             "creating it if missing: every identity restart forgets every issued token"),
    "db-retry-backoff-first": Defect(
        "performance", "1.1 gives the data layer's retry on a schema change a 50 ms back-off but puts "
                       "the sleep before the first try: every read and write waits 50 ms"),
    "token-cache-key-kdf": Defect(
        "performance", "1.1's compute-api hashes tokens into its validation cache's keys with the "
                       "password hasher (PBKDF2, 100 000 rounds): tens of ms of CPU per request"),
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

"""``python -m minicloud.manage --config FILE ...``: minicloud's nova-manage.

Exit codes are part of the contract (DESIGN.md): errors print one line naming
the problem and exit 2; ``db online-data-migrations`` exits 0 when nothing is
left, 1 when a batch migrated rows (run again), 2 on errors; ``status
upgrade-check`` exits 0 ok, 1 warning, 2 failure.

The release of the code is the host config's release (``releases.manage``
overrides, like any per-service release).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from minicloud import db
from minicloud.config import Config, ConfigError, load_config
from minicloud.db import api, online_migrations
from minicloud.releases import Release, UnknownRelease, get_release

OK, MORE_TO_DO, ERROR = 0, 1, 2
CHECK_OK, CHECK_WARNING, CHECK_FAILURE = 0, 1, 2
DEFAULT_BATCH = 50


class ManageError(Exception):
    """A problem the operator must fix: printed as one line, exit 2."""


def _release(config: Config) -> Release:
    label = (config.raw.get("releases") or {}).get("manage")
    try:
        return get_release(label) if label else config.release
    except UnknownRelease as exc:
        raise ManageError(f"{config.path}: releases.manage: {exc}") from None


def _print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in [h, *[r[i] for r in rows]]) for i, h in enumerate(headers)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    print(line)
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print(line)
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(line)


def cmd_db_version(engine: Engine, release: Release, _args: argparse.Namespace) -> int:
    expand, contract = db.current_revisions(engine)
    print(f"expand: {expand or 'none'}")
    print(f"contract: {contract or 'none'}")
    print(f"release {release.label} heads: expand {release.expand_head}, contract {release.contract_head}")
    return OK


def cmd_db_expand(engine: Engine, release: Release, _args: argparse.Namespace) -> int:
    before, _ = db.current_revisions(engine)
    after = db.expand(engine, release)
    print(f"expand: {before or 'none'} -> {after}")
    return OK


def cmd_db_contract(engine: Engine, release: Release, _args: argparse.Namespace) -> int:
    _, before = db.current_revisions(engine)
    after = db.contract(engine, release)
    print(f"contract: {before or 'none'} -> {after}")
    return OK


def cmd_db_sync(engine: Engine, release: Release, _args: argparse.Namespace) -> int:
    """A fresh deploy: both branches to this release's heads in one process.

    Refused on a database that already has a schema (an upgrade goes through
    expand, online migrations and contract, never through sync).
    """
    expand_before, contract_before = db.current_revisions(engine)
    if expand_before or contract_before:
        raise ManageError(f"db sync is for an empty database; this one is at expand "
                          f"{expand_before or 'none'}, contract {contract_before or 'none'} "
                          f"(upgrade with db expand / online-data-migrations / contract)")
    expanded = db.expand(engine, release)
    contracted = db.contract(engine, release)
    print(f"sync: expand {expanded}, contract {contracted}")
    return OK


def _run_batches(engine: Engine, max_count: int | None, release: Release | None = None) -> int:
    """nova-manage semantics; prints a (migration, found, done) table."""
    totals: dict[str, list[int]] = {name: [0, 0] for name in online_migrations.MIGRATIONS}
    code = OK
    while True:
        batch = online_migrations.run(engine, max_count or DEFAULT_BATCH, release)
        for name, (found, done) in batch.items():
            totals[name][0] += found
            totals[name][1] += done
        found = sum(f for f, _ in batch.values())
        done = sum(d for _, d in batch.values())
        if max_count is not None:
            code = MORE_TO_DO if done else (ERROR if found else OK)
            break
        if not done:
            code = ERROR if found else OK
            break
    _print_table(["Migration", "Total Needed", "Completed"],
                 [[n, str(f), str(d)] for n, (f, d) in totals.items()])
    if code == ERROR:
        print("some rows could not be migrated; see the table above", file=sys.stderr)
    return code


def cmd_db_online(engine: Engine, release: Release, args: argparse.Namespace) -> int:
    if args.max_count is not None and args.max_count <= 0:
        raise ManageError("--max-count must be a positive integer")
    return _run_batches(engine, args.max_count, release)


def cmd_db_migrate(engine: Engine, release: Release, _args: argparse.Namespace) -> int:
    return _run_batches(engine, None, release)


def upgrade_checks(engine: Engine, release: Release) -> list[tuple[str, int, str]]:
    """(check, result, details) rows for ``status upgrade-check``."""
    results: list[tuple[str, int, str]] = []
    expand, contract = db.current_revisions(engine)
    try:
        db.check_not_too_new(engine, release)
        if db.schema_behind(engine, release):
            results.append(("Database schema", CHECK_FAILURE,
                            f"schema {expand or 'empty'} is behind this code ({release.expand_head}): "
                            "run 'db expand'"))
        else:
            results.append(("Database schema", CHECK_OK, f"expand {expand}, contract {contract}"))
    except db.SchemaTooNew as exc:
        results.append(("Database schema", CHECK_FAILURE, str(exc)))
    services = api.service_list(engine)
    too_old = [s for s in services if s["version"] < release.min_peer_service_version]
    versions = sorted({s["version"] for s in services})
    if too_old:
        names = ", ".join(f"{s['host']}/{s['binary']} v{s['version']}" for s in too_old)
        results.append(("Service versions", CHECK_FAILURE,
                        f"older than this release supports (< {release.min_peer_service_version}): {names}"))
    elif len(versions) > 1:
        results.append(("Service versions", CHECK_WARNING,
                        f"mixed service versions {versions}: upgrade in progress"))
    else:
        results.append(("Service versions", CHECK_OK, f"all at {versions[0] if versions else '-'}"))
    left = {k: v for k, v in online_migrations.remaining(engine).items() if v}
    if left:
        results.append(("Online data migrations", CHECK_WARNING,
                        "rows left: " + ", ".join(f"{k} {v}" for k, v in left.items())
                        + " (run 'db online-data-migrations')"))
    else:
        results.append(("Online data migrations", CHECK_OK, "none pending"))
    return results


def cmd_upgrade_check(engine: Engine, release: Release, _args: argparse.Namespace) -> int:
    results = upgrade_checks(engine, release)
    names = {CHECK_OK: "Success", CHECK_WARNING: "Warning", CHECK_FAILURE: "Failure"}
    _print_table(["Check", "Result", "Details"], [[c, names[r], d] for c, r, d in results])
    return max(r for _, r, _ in results)


def cmd_service_list(engine: Engine, _release: Release, args: argparse.Namespace) -> int:
    services = api.service_list(engine, args.service_down_time)
    if args.json:
        print(json.dumps(services, indent=2))
        return OK
    _print_table(["Id", "Host", "Binary", "Version", "Release", "Status", "State", "Last seen up"],
                 [[str(s["id"]), s["host"], s["binary"], str(s["version"]), s["release"] or "",
                   "disabled" if s["disabled"] else "enabled", s["state"], s["last_seen_up"] or ""]
                  for s in services])
    return OK


Command = Callable[[Engine, Release, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minicloud.manage")
    parser.add_argument("--config", required=True)
    groups = parser.add_subparsers(dest="group", required=True)
    dbp = groups.add_parser("db").add_subparsers(dest="command", required=True)
    dbp.add_parser("version").set_defaults(func=cmd_db_version)
    dbp.add_parser("sync").set_defaults(func=cmd_db_sync)
    dbp.add_parser("expand").set_defaults(func=cmd_db_expand)
    dbp.add_parser("migrate").set_defaults(func=cmd_db_migrate)
    dbp.add_parser("contract").set_defaults(func=cmd_db_contract)
    online = dbp.add_parser("online-data-migrations")
    online.add_argument("--max-count", type=int, default=None)
    online.set_defaults(func=cmd_db_online)
    status = groups.add_parser("status").add_subparsers(dest="command", required=True)
    status.add_parser("upgrade-check").set_defaults(func=cmd_upgrade_check)
    service = groups.add_parser("service").add_subparsers(dest="command", required=True)
    listing = service.add_parser("list")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_service_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, "conductor")
        release = _release(config)
        if not config.database:
            raise ManageError(f"{config.path}: database: missing (required for manage)")
        args.service_down_time = config.service_down_time
        engine = db.connect(config.database)
        try:
            func: Command = args.func
            return func(engine, release, args)
        finally:
            engine.dispose()
    except ConfigError as exc:
        print(f"minicloud.manage: error: {exc}", file=sys.stderr)
    except (ManageError, db.SchemaTooNew, db.SchemaError) as exc:
        print(f"minicloud.manage: error: {exc}", file=sys.stderr)
    except sa.exc.SQLAlchemyError as exc:
        print(f"minicloud.manage: error: database: {str(exc).splitlines()[0]}", file=sys.stderr)
    return ERROR


if __name__ == "__main__":
    sys.exit(main())

"""The floating-address defects at the one place each lives: the data layer and the online migration.

Each test runs the clean release and the variant over the same rows (a SQLite
file, no service started), so it shows the defect and that the clean code is
free of it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from minicloud import db
from minicloud.db import api, online_migrations
from minicloud.releases import get_release
from sqlalchemy.engine import Engine


def schema_1_1_with_rows_of_1_0(tmp_path: Path) -> tuple[str, list[str]]:
    """A database at expand 1.1 with three instances written by 1.0 code (old column only)."""
    url = f"sqlite:///{tmp_path / 'cloud.db'}"
    engine = db.connect(url)
    db.expand(engine, get_release("1.0"))
    db.contract(engine, get_release("1.0"))
    old_code = db.connect(url, get_release("1.0"))
    uuids = [api.instance_create(old_code, {"name": f"vm{n}", "project_id": "p", "floating_ip": "127.0.0.9",
                                            "floating_port": 20010 + n})["uuid"] for n in range(3)]
    db.expand(engine, get_release("1.1"))
    db.invalidate_columns()
    return url, uuids


def addresses(engine: Engine) -> dict[str, Any]:
    return {i["name"]: (i["floating_ip"], i["floating_port"]) for i in api.instance_list(engine)}


EXPECTED = {"vm0": ("127.0.0.9", 20010), "vm1": ("127.0.0.9", 20011), "vm2": ("127.0.0.9", 20012)}


@pytest.mark.parametrize("label", ["1.1", "1.1+migration-unscoped-update"])
def test_split_floating_address_keeps_each_rows_own_address(tmp_path: Path, label: str) -> None:
    url, _ = schema_1_1_with_rows_of_1_0(tmp_path)
    online_migrations.run(db.connect(url), 50, get_release(label))
    got = addresses(db.connect(url, get_release("1.1")))
    if label == "1.1":
        assert got == EXPECTED
    else:  # the UPDATE without its WHERE: every row ends with the last row's address
        assert len(set(got.values())) == 1


@pytest.mark.parametrize("label", ["1.1", "1.1+migration-clears-legacy"])
def test_after_the_migration_1_0_still_reads_every_address(tmp_path: Path, label: str) -> None:
    url, _ = schema_1_1_with_rows_of_1_0(tmp_path)
    online_migrations.run(db.connect(url), 50, get_release(label))
    assert addresses(db.connect(url, get_release("1.1"))) == EXPECTED  # 1.1 never notices
    seen_by_1_0 = addresses(db.connect(url, get_release("1.0")))  # after a rollback
    if label == "1.1":
        assert seen_by_1_0 == EXPECTED
    else:
        assert seen_by_1_0 == {name: (None, None) for name in EXPECTED}


@pytest.mark.parametrize("label", ["1.1", "1.1+reads-new-columns-only"])
def test_1_1_reads_rows_the_migration_has_not_reached(tmp_path: Path, label: str) -> None:
    url, _ = schema_1_1_with_rows_of_1_0(tmp_path)
    got = addresses(db.connect(url, get_release(label)))
    if label == "1.1":
        assert got == EXPECTED
    else:
        assert got == {name: (None, None) for name in EXPECTED}


@pytest.mark.parametrize("label", ["1.1", "1.1+legacy-address-unwritten"])
def test_servers_1_1_creates_are_readable_by_1_0(tmp_path: Path, label: str) -> None:
    url, _ = schema_1_1_with_rows_of_1_0(tmp_path)
    new_code = db.connect(url, get_release(label))
    api.instance_create(new_code, {"name": "new", "project_id": "p", "floating_ip": "127.0.0.9",
                                   "floating_port": 20050})
    seen_by_1_0 = addresses(db.connect(url, get_release("1.0")))["new"]
    assert seen_by_1_0 == (("127.0.0.9", 20050) if label == "1.1" else (None, None))

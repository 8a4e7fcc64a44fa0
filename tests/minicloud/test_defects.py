"""minicloud's defect variants and the harness's catalog of them stay one list."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from minicloud.defects import DEFECTS, has_defect
from minicloud.releases import UnknownRelease, get_release

from harness.defect_catalog import MINICLOUD_CATALOG, load_catalog

ROOT = Path(__file__).resolve().parents[2]
CLASSES = {"maintenance-mode", "live-migration", "versioning", "schema-migration", "graceful-shutdown",
           "dataplane-continuity", "api-contract", "rollback", "security-fix", "readiness",
           "performance", "restart-data-loss"}


def test_catalog_lists_every_defect_of_minicloud_with_its_class() -> None:
    catalog = load_catalog()
    assert {d.variant: d.defect_class for d in catalog.defects} == {
        name: defect.defect_class for name, defect in DEFECTS.items()}


def test_every_catalog_entry_names_an_existing_scenario_a_known_class_and_a_valid_release() -> None:
    catalog = load_catalog()
    for scenario in catalog.clean:
        assert (ROOT / scenario).is_file(), scenario
    for defect in catalog.defects:
        assert (ROOT / defect.scenario).is_file(), defect
        assert defect.defect_class in CLASSES, defect
        assert get_release(defect.label).variant == defect.variant
        assert re.fullmatch(r"[a-z]+(\.[a-z0-9_-]+)+", defect.caught_by), defect


def test_design_doc_describes_every_defect() -> None:
    design = (MINICLOUD_CATALOG.parent / "DESIGN.md").read_text()
    missing = [name for name in DEFECTS if f"`+{name}`" not in design]
    assert not missing, f"DESIGN.md has no entry for {missing}"


def test_unknown_defect_names_are_refused() -> None:
    with pytest.raises(UnknownRelease, match="unknown variant 'nosuch'"):
        get_release("1.1+nosuch")
    with pytest.raises(KeyError, match="unknown defect"):
        has_defect(get_release("1.1"), "nosuch")
    assert has_defect(get_release("1.1+unpinned"), "unpinned")
    assert not has_defect(get_release("1.1"), "unpinned")

"""rollgate catalog: cells from the catalog, outcomes, the table and the exit code (no cloud runs)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.commands.catalog import catalog_exit_code, plan_cells, render_table
from harness.defect_catalog import MINICLOUD_CATALOG, load_catalog
from harness.errors import UsageError, ValidationError
from harness.report.catalog_page import CellResult, render_catalog, summarize


def _cell(kind: str, verdict: str, failing: list[str], caught_by: str | None = "slo.lost_writes",
          name: str = "drop-tail") -> CellResult:
    result = CellResult(kind=kind, name=name, defect_class="live-migration", scenario="scenarios/x.yaml",
                        expected="FAIL by slo.lost_writes" if kind == "defect" else "PASS",
                        caught_by=caught_by if kind == "defect" else None, repeat=1, cell=Path("c.yaml"),
                        run_id="cat-x-1", seconds=20.0)
    result.verdict, result.failing = verdict, failing
    return result


@pytest.mark.parametrize(("kind", "verdict", "failing", "outcome"), [
    ("defect", "FAIL", ["slo.api_p99", "slo.lost_writes"], "caught"),
    ("defect", "FAIL", ["slo.api_p99"], "other-check"),
    ("defect", "PASS", [], "missed"),
    ("defect", "ERROR", ["harness.run"], "error"),
    ("clean", "PASS", [], "pass"),
    ("clean", "FAIL", ["slo.dataplane_gap"], "false-fail"),
])
def test_outcome_of_a_run(kind: str, verdict: str, failing: list[str], outcome: str) -> None:
    assert _cell(kind, verdict, failing).outcome == outcome


def test_exit_code_error_outranks_a_miss_and_a_miss_fails() -> None:
    caught, clean = _cell("defect", "FAIL", ["slo.lost_writes"]), _cell("clean", "PASS", [])
    assert catalog_exit_code([caught, clean]) == 0
    assert catalog_exit_code([caught, _cell("defect", "FAIL", ["slo.api_p99"])]) == 1
    assert catalog_exit_code([caught, _cell("clean", "FAIL", ["slo.api_p99"])]) == 1
    assert catalog_exit_code([_cell("defect", "PASS", []), _cell("clean", "ERROR", [])]) == 2


def test_a_defect_caught_in_two_runs_of_three_is_not_caught(tmp_path: Path) -> None:
    runs = [_cell("defect", "FAIL", ["slo.lost_writes"]), _cell("defect", "PASS", []),
            _cell("defect", "FAIL", ["slo.lost_writes"])]
    document = summarize(runs, MINICLOUD_CATALOG, tmp_path, 60.0)
    row = document["rows"][0]
    assert not row["ok"]
    assert row["got"] == "FAIL 2/3 PASS 1/3"
    assert document["totals"] == {"defects": 1, "defects_caught": 0, "clean": 0, "clean_passed": 0,
                                  "errors": 0}
    table = render_table(document)
    assert "drop-tail" in table
    assert "0/1 defects caught" in table
    page = render_catalog(json.loads(json.dumps(document)))
    assert page.count("missed") == 1
    assert page.count(">caught<") == 2


def test_plan_cells_writes_each_defect_with_its_release_as_the_target(tmp_path: Path) -> None:
    catalog = load_catalog()
    cells = plan_cells(catalog, tmp_path, repeat=2, clean_repeat=1, only=())
    defects = [c for c in cells if c.kind == "defect"]
    assert len(defects) == 2 * len(catalog.defects)
    assert len([c for c in cells if c.kind == "clean"]) == len(catalog.clean)
    first = catalog.defects[0]
    raw = yaml.safe_load((tmp_path / f"defect--{first.variant}--2.yaml").read_text())
    assert raw["upgrade"]["to"] == first.label
    assert len({c.run_id for c in cells}) == len(cells)


def test_only_an_unknown_name_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nosuch"):
        plan_cells(load_catalog(), tmp_path, 1, 1, ("nosuch",))


def test_a_catalog_with_a_missing_field_names_it(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("clean: []\ndefects:\n  - {variant: x, release: '1.1', class: readiness}\n")
    with pytest.raises(ValidationError) as caught:
        load_catalog(path)
    assert caught.value.field == "defects[0].scenario"
    assert str(path) in str(caught.value)

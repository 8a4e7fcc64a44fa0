"""The matrix index links every cell to its report and colours it; tags are judged per project."""

from __future__ import annotations

import html.parser
import json
from pathlib import Path

from harness.report.matrix import build_matrix
from harness.report.tags import (
    ACCESSIBLE_UPGRADE,
    ROLLING_UPGRADE,
    SUPPORTS_UPGRADE,
    ZERO_DOWNTIME_UPGRADE,
    earned_tags,
)
from harness.report.writers import write_verdict
from harness.verdict import Check, Verdict
from tests.unit.report_synthetic import write_synthetic_run


class Cells(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")


def _run(root: Path, name: str, scenario: str, to_release: str, failing: bool) -> Path:
    run_dir = root / name
    checks = [
        Check.passed("executor.upgrade", "done"),
        Check.passed("resources.intact", "ok"),
        Check.failed("slo.lost_writes", "lost") if failing else Check.passed("slo.lost_writes", "ok"),
    ]
    verdict = Verdict(name, scenario, 3, checks, from_release="1.0", to_release=to_release)
    write_verdict(verdict, run_dir)
    (run_dir / "report.html").write_text("<html></html>")
    return run_dir


def test_matrix_grid_links_each_cell(tmp_path: Path) -> None:
    runs = [
        _run(tmp_path / "runs", "a", "rolling-upgrade", "1.1", False),
        _run(tmp_path / "runs", "b", "mixed-version-hold", "1.1", True),
        _run(tmp_path / "runs", "c", "rolling-upgrade", "1.2", False),
    ]
    broken = tmp_path / "runs" / "d"
    broken.mkdir()
    out = tmp_path / "matrix"
    index, matrix = build_matrix([*runs, broken], out)
    cells = json.loads(matrix.read_text())["cells"]
    assert len(cells) == 4
    verdicts = {(c["from"], c["to"], c["scenario"]): c["verdict"] for c in cells}
    assert verdicts[("1.0", "1.1", "mixed-version-hold")] == "FAIL"
    assert verdicts[("?", "?", "d")] == "ERROR"
    parser = Cells()
    parser.feed(index.read_text())
    assert sorted(parser.links) == sorted(c["report"] for c in cells)
    for link in parser.links:
        if not link.startswith("../runs/d/"):
            assert (out / link).resolve().exists(), link
    assert "#c62828" in index.read_text()
    assert "not run" in index.read_text()  # 1.0->1.2 hold never ran


def test_tags_of_the_synthetic_run(tmp_path: Path) -> None:
    verdict = write_synthetic_run(tmp_path, events=2000)
    tags = earned_tags([verdict])
    compute, identity, network = tags["compute"], tags["identity"], tags["network"]
    assert compute[SUPPORTS_UPGRADE].earned
    assert compute[ROLLING_UPGRADE].earned
    assert not compute[ACCESSIBLE_UPGRADE].earned  # its API had an outage
    assert "compute/new" in compute[ACCESSIBLE_UPGRADE].disproven[0]
    assert identity[ACCESSIBLE_UPGRADE].earned
    assert identity[ZERO_DOWNTIME_UPGRADE].earned
    assert not network[ROLLING_UPGRADE].earned
    assert network[ROLLING_UPGRADE].unproven  # one host: never mixed
    assert not network[ZERO_DOWNTIME_UPGRADE].earned  # it carries the data plane, which had a gap
    verdict.checks = [c for c in verdict.checks if c.id != "executor.upgrade"]
    assert earned_tags([verdict]) == {}  # not an upgrade meant to complete: nothing to judge


def test_one_disproof_outweighs_proofs(tmp_path: Path) -> None:
    clean = write_synthetic_run(tmp_path / "a", events=1500, outage=False, gap=False)
    broken = write_synthetic_run(tmp_path / "b", events=1500)
    assert earned_tags([clean])["compute"][ZERO_DOWNTIME_UPGRADE].earned
    assert not earned_tags([clean, broken])["compute"][ZERO_DOWNTIME_UPGRADE].earned
    patch = write_synthetic_run(tmp_path / "c", events=1500)
    patch.from_release, patch.to_release = "1.1", "1.1.1"
    assert earned_tags([clean, patch])["compute"][ZERO_DOWNTIME_UPGRADE].earned  # a patch is not N-1 -> N


def test_skipped_data_plane_slos_leave_zero_downtime_unproven_for_data_plane_projects(tmp_path: Path) -> None:
    """An openstack run on the fake driver has no guests: its compute project cannot earn
    zero-downtime from that run (unproven, not proven over nothing); identity still can."""
    verdict = write_synthetic_run(tmp_path, events=1500, outage=False, gap=False)
    verdict.checks = [Check.skipped(c.id, "not judged: no data plane")
                      if c.id in ("slo.lost_writes", "slo.dataplane_gap") else c for c in verdict.checks]
    tags = earned_tags([verdict])
    compute = tags["compute"][ZERO_DOWNTIME_UPGRADE]
    assert not compute.earned
    assert any("is skipped" in why for why in compute.unproven), compute
    assert tags["identity"][ZERO_DOWNTIME_UPGRADE].earned

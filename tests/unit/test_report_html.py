"""report.html is one self-contained page: no external src/href, data embedded safely, tables rendered."""

from __future__ import annotations

import html.parser
import json
from pathlib import Path

from harness.report import render_run_dir, write_reports
from harness.report.chartdata import bucket_size, chart_data, read_timeline
from harness.report.html import embed_json
from harness.verdict import Check, Evidence
from tests.unit.report_synthetic import write_synthetic_run


class Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.references: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.references.extend(v or "" for k, v in attrs if k in ("src", "href"))
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "script":
            self.scripts.append(values)


def _page(tmp_path: Path) -> str:
    verdict = write_synthetic_run(tmp_path, events=2500)
    # An error text carrying a URL and markup must stay text, never become a link or a tag.
    verdict.checks.append(
        Check.failed(
            "slo.command", "tool failed", [Evidence("see http://evil.example/x </script><img src=x>")]
        )
    )
    return write_reports(tmp_path, verdict).html.read_text()


def test_html_is_self_contained(tmp_path: Path) -> None:
    page = _page(tmp_path)
    parser = Links()
    parser.feed(page)
    assert not [r for r in parser.references if r.lower().startswith(("http:", "https:", "//"))]
    assert all(s.get("src") is None for s in parser.scripts)  # every script is inline
    assert "<link" not in page
    assert "@import" not in page
    assert {"chart", "checks", "tags", "outages", "rollgate-data"} <= parser.ids
    assert "&lt;/script&gt;&lt;img src=x&gt;" in page


def test_embedded_data_parses_and_keeps_failures_exact(tmp_path: Path) -> None:
    page = _page(tmp_path)
    start = page.index('<script type="application/json" id="rollgate-data">') + len(
        '<script type="application/json" id="rollgate-data">'
    )
    data = json.loads(page[start : page.index("</script>", start)])
    contents = read_timeline(tmp_path / "timeline.jsonl")
    failed = [s for s in contents.samples if not s.ok]
    assert len(data["failures"]["t"]) == len(failed) > 0
    assert sum(sum(row["n"]) for row in data["series"].values()) == len(contents.samples)
    assert sum(sum(row["fail"]) for row in data["series"].values()) == len(failed)
    assert {o["target"] for o in data["outages"]} == {
        "compute/new",
        "compute/reused",
        "vm-1/new",
        "vm-1/reused",
    }
    assert [lane["host"] for lane in data["lanes"]] == sorted(lane["host"] for lane in data["lanes"])
    assert len(data["steps"]) == 11


def test_embed_json_cannot_close_the_script_block() -> None:
    text = embed_json({"e": "</script><!-- & >"})
    assert "</" not in text
    assert "<!--" not in text
    assert json.loads(text) == {"e": "</script><!-- & >"}


def test_big_timelines_are_bucketed_coarser() -> None:
    assert bucket_size(10.0) == 0.1
    assert bucket_size(3000.0) == 1.0
    assert 3600 * 5 / bucket_size(3600 * 5) <= 3000


def test_rerender_from_the_run_directory(tmp_path: Path) -> None:
    first = _page(tmp_path)
    (tmp_path / "report.html").unlink()
    (tmp_path / "junit.xml").unlink()
    paths = render_run_dir(tmp_path)
    assert paths.html.read_text().count("slo.command") == first.count("slo.command") > 0
    assert paths.junit.exists()


def test_chart_data_without_timeline_is_empty_not_an_error(tmp_path: Path) -> None:
    data = chart_data(read_timeline(tmp_path / "missing.jsonl"))
    assert data["requests"] == 0
    assert data["series"] == {}
    assert data["lanes"] == []

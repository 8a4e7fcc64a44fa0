"""report.html: one self-contained page a person opens offline to see why a run passed or failed.

Everything is inline: the CSS and the chart's JavaScript (``assets/``, read
with importlib.resources so they ship in the wheel) and the data, as JSON in a
``<script type="application/json">`` block. No CDN, no web font, no external
``src`` or ``href``: the page must open from a Zuul log server, a laptop with
no network, or an archived artifact years later. The tables (checks with
their evidence, tags, outages, steps, releases) are rendered here in Python,
so they read even with JavaScript disabled; only the chart needs it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from harness.report.chartdata import relative_window, summarize
from harness.report.tags import TAGS, TagResult
from harness.verdict import Check, Verdict

EVENTS_SHOWN = 20


def _asset(name: str) -> str:
    return resources.files("harness.report").joinpath("assets", name).read_text(encoding="utf-8")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def embed_json(data: Any) -> str:
    """JSON safe inside <script>: no "</script>", no "<!--" can end or confuse the block."""
    text = json.dumps(data, separators=(",", ":"), default=str, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _evidence_html(check: Check, origin: float) -> str:
    if not check.evidence:
        return ""
    items = []
    for evidence in check.evidence:
        window = relative_window(evidence.window, origin)
        zoom = (
            f' <button class="zoom" data-window="{window[0]},{window[1]}">show on chart</button>'
            if window
            else ""
        )
        where = f" [{window[0]:.3f} s, {window[1]:.3f} s]" if window else ""
        events = "\n".join(json.dumps(e, sort_keys=True, default=str) for e in evidence.events[:EVENTS_SHOWN])
        more = (
            f"\n... {len(evidence.events) - EVENTS_SHOWN} more in verdict.json"
            if len(evidence.events) > EVENTS_SHOWN
            else ""
        )
        items.append(
            f"<li>{_e(evidence.message)}{_e(where)}"
            + (f" <span class='mono'>target={_e(evidence.target)}</span>" if evidence.target else "")
            + (f" <span class='mono'>error={_e(evidence.error)}</span>" if evidence.error else "")
            + zoom
            + (f"<pre class='events'>{_e(events + more)}</pre>" if events else "")
            + "</li>"
        )
    return f"<details><summary>{len(check.evidence)} evidence</summary><ul>{''.join(items)}</ul></details>"


def checks_table(verdict: Verdict, origin: float) -> str:
    rows = "".join(
        f"<tr id='check-{_e(c.id)}'><td class='mono'>{_e(c.id)}</td>"
        f"<td><span class='status st-{_e(c.status)}'>{_e(c.status)}</span></td>"
        f"<td>{_e(c.summary)}{_evidence_html(c, origin)}</td></tr>"
        for c in sorted(
            verdict.checks, key=lambda c: ("error", "failed", "passed", "skipped").index(c.status)
        )
    )
    head = "<tr><th>check</th><th>status</th><th>summary and evidence</th></tr>"
    return f"<table id='checks'>{head}{rows}</table>"


def tags_table(tags: Mapping[str, Mapping[str, TagResult]]) -> str:
    if not tags:
        return "<p class='meta'>No N-1 -&gt; N upgrade run among these verdicts: no tag can be judged.</p>"
    head = "".join(f"<th>{_e(t.removeprefix('assert:'))}</th>" for t in TAGS)
    rows = []
    for project, row in tags.items():
        cells = []
        for tag in TAGS:
            result = row[tag]
            why = "; ".join(result.disproven + result.unproven) or "proven by " + ", ".join(result.proven_by)
            cells.append(
                f"<td class='{'tag-yes' if result.earned else 'tag-no'}' title='{_e(why)}'>"
                f"{'earned' if result.earned else 'no'}</td>"
            )
        rows.append(f"<tr><td>{_e(project)}</td>{''.join(cells)}</tr>")
    return f"<table id='tags'><tr><th>project</th>{head}</tr>{''.join(rows)}</table>"


def _releases_table(title: str, releases: Mapping[str, Mapping[str, str]] | None) -> str:
    if not releases:
        return ""
    rows = "".join(
        f"<tr><td>{_e(host)}</td><td class='mono'>"
        + _e(", ".join(f"{s}={r}" for s, r in sorted(services.items())))
        + "</td></tr>"
        for host, services in sorted(releases.items())
    )
    return f"<h3>{_e(title)}</h3><table><tr><th>host</th><th>services</th></tr>{rows}</table>"


def _rows(items: Iterable[Mapping[str, Any]], columns: tuple[str, ...], table_id: str) -> str:
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(item.get(c))}</td>" for c in columns) + "</tr>" for item in items
    )
    if not body:
        return f"<p class='meta' id='{table_id}'>none</p>"
    return (
        f"<table id='{table_id}'><tr>"
        + "".join(f"<th>{_e(c)}</th>" for c in columns)
        + f"</tr>{body}</table>"
    )


def render(verdict: Verdict, data: Mapping[str, Any], tags: Mapping[str, Mapping[str, TagResult]]) -> str:
    """The whole page as one string."""
    origin = float(data["origin"])
    kinds = "".join(
        f"<label><input type='checkbox' data-kind='{_e(k)}' checked> {_e(k)}</label>" for k in data["series"]
    )
    title = f"rollgate {verdict.verdict}: {verdict.scenario} {verdict.from_release} -> {verdict.to_release}"
    outages = [{**o, "duration_s": round(o["end"] - o["start"], 3)} for o in data["outages"]]
    gaps = [{**g, "duration_s": round(g["end"] - g["start"], 3)} for g in data["gaps"]]
    steps = [{**s, "duration_s": round(s["end"] - s["start"], 3)} for s in data["steps"]]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_asset("report.css")}</style>
</head><body>
<header><span class="badge {_e(verdict.verdict)}" id="verdict">{_e(verdict.verdict)}</span>
<h1>{_e(verdict.scenario)}: {_e(verdict.from_release)} &rarr; {_e(verdict.to_release)}</h1>
<span class="meta">run {_e(verdict.run_id)} &middot; seed {_e(verdict.seed)} &middot; {_e(verdict.action)}
&middot; backend {_e(verdict.backend)} &middot; cloud {_e(verdict.cloud)} &middot; exit {
        verdict.exit_code
    }</span>
</header>
<main>
<div class="recap">{_e(verdict.recap())}</div>
<h2>Timeline</h2>
<div class="controls"><button id="reset-zoom" class="zoom">reset zoom</button>{kinds}
<span class="legend"><span style="background:#1f77b4"></span>api
<span style="background:#2ca02c"></span>data plane
<span style="background:#d62728"></span>failures/outages<span style="background:#5c6bc0"></span>step
<span style="background:#ff9800"></span>rollback<span style="background:#fdae6b"></span>mixed/replacing</span>
<span class="meta" id="chart-status">chart not drawn (JavaScript disabled?): {
        _e(summarize(data))
    }</span></div>
<div id="chart-wrap"><canvas id="chart" height="600"></canvas><div id="tooltip"></div></div>
<p class="meta">Wheel: zoom &middot; drag: zoom to a range &middot; double-click: whole run &middot;
times are seconds since the first event; buckets of {
        data["bucket_s"]:g} s; every failure and outage exact.</p>
<h2>Checks</h2>
{checks_table(verdict, origin)}
<h2>Upgrade tags earned</h2>
{tags_table(tags)}
<h2>Outages</h2>
{_rows(outages, ("target", "kind", "start", "end", "duration_s", "error", "requests"), "outages")}
<h2>Data-plane gaps</h2>
{_rows(gaps, ("target", "start", "end", "duration_s", "error", "requests", "recovered"), "gaps")}
<h2>Executor steps</h2>
{
        _rows(
            steps,
            (
                "step_id",
                "name",
                "direction",
                "host",
                "service",
                "from",
                "to",
                "start",
                "duration_s",
                "outcome",
                "error",
            ),
            "steps",
        )
    }
<h2>Releases</h2>
{_releases_table("At the end", verdict.releases)}
{_releases_table("At the first failure", verdict.releases_at_failure)}
{_releases_table("At the start", verdict.releases_initial)}
<h2>Notes</h2>
{_rows(({"note": n} for n in verdict.notes), ("note",), "notes")}
</main>
<script type="application/json" id="rollgate-data">{embed_json(data)}</script>
<script>{_asset("report.js")}</script>
</body></html>
"""

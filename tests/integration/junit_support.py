"""Reading the JUnit file pytest writes for scenario runs (the rollgate plugin): a testcase per
scenario, and one per check of its verdict."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

#: the JUnit element a check's status becomes (none: passed).
CHECK_ELEMENTS = {"passed": set(), "failed": {"failure"}, "error": {"error"}, "skipped": {"skipped"}}


def scenario_cases(root: ET.Element) -> dict[str, ET.Element]:
    """The scenarios' own testcases (classname ``scenarios.X.yaml``), by name."""
    return {c.get("name") or "": c for c in root.iter("testcase")
            if (c.get("classname") or "").endswith((".yaml", ".yml"))}


def assert_checks_match_verdicts(root: ET.Element, results: Path) -> dict[str, dict[str, Any]]:
    """Every scenario testcase comes with one testcase per check of its verdict.json, with the
    outcome the check's status implies (a failed check of an ERROR run is an error: an ERROR run
    has no failure); returns each scenario's verdict, by name."""
    verdicts = {}
    for name, case in scenario_cases(root).items():
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        verdict = json.loads((results / str(props["run_id"]) / "verdict.json").read_text())
        assert props["verdict"] == verdict["verdict"]
        checks = {c.get("name"): c for c in root.iter("testcase")
                  if c.get("classname") == f"{case.get('classname')}.{name}"}
        assert sorted(checks) == sorted(c["id"] for c in verdict["checks"]), name
        for check in verdict["checks"]:
            tags = {t.tag for t in checks[check["id"]] if t.tag in ("failure", "error", "skipped")}
            expected = CHECK_ELEMENTS[check["status"]]
            if verdict["verdict"] == "ERROR" and check["status"] == "failed":
                expected = {"error"}
            assert tags == expected, (name, check["id"], tags)
        verdicts[name] = verdict
    return verdicts

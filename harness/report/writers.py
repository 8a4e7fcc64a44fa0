"""verdict.json and junit.xml: what machines read from a run directory.

Both are written atomically (a temporary file in the same directory, then a
rename), so a gate that reads them after a crash or a timeout sees either the
previous complete file or the new one, never half of one.

The JUnit file follows the schema Jenkins' JUnit plugin and Zuul's log
viewers read: ``<testsuites>`` holding one ``<testsuite>`` per run, one
``<testcase>`` per check (classname ``rollgate.<scenario>``, name = the
check's stable id). A failed check is a ``<failure>``, an ERROR-class check an
``<error>``, a skipped one ``<skipped>``; the element's text is the evidence,
one line per cited window, then the cited events as JSON lines.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.verdict import ERRORED, FAILED, SKIPPED, Check, Verdict

VERDICT_FILE = "verdict.json"
JUNIT_FILE = "junit.xml"
EVENTS_PER_EVIDENCE = 5  # the JUnit text stays readable; verdict.json keeps every cited event


def write_atomically(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_verdict(verdict: Verdict, run_dir: Path) -> Path:
    text = json.dumps(verdict.to_dict(), indent=2, sort_keys=False, default=str) + "\n"
    return write_atomically(run_dir / VERDICT_FILE, text.encode())


def read_verdict(path: Path) -> Verdict:
    """Read a verdict.json (a run directory or the file itself)."""
    if path.is_dir():
        path = path / VERDICT_FILE
    return Verdict.from_dict(json.loads(path.read_text()))


def evidence_text(check: Check) -> str:
    """The failure body: one line per evidence, then its first cited events as JSON."""
    lines = [check.summary]
    for evidence in check.evidence:
        lines.append("- " + evidence.describe())
        lines.extend(
            "    " + json.dumps(e, sort_keys=True, default=str) for e in evidence.events[:EVENTS_PER_EVIDENCE]
        )
        if len(evidence.events) > EVENTS_PER_EVIDENCE:
            lines.append(f"    ... {len(evidence.events) - EVENTS_PER_EVIDENCE} more in verdict.json")
    return "\n".join(lines)


def _clean(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (control bytes in an error text would break parsers)."""
    return "".join(c for c in text if c in "\t\n\r" or ord(c) >= 0x20)


def junit_element(verdict: Verdict) -> ET.Element:
    counted = {
        status: sum(1 for c in verdict.checks if c.status == status) for status in (FAILED, ERRORED, SKIPPED)
    }
    elapsed = (verdict.window[1] - verdict.window[0]) if verdict.window else 0.0
    suites = ET.Element(
        "testsuites",
        name="rollgate",
        tests=str(len(verdict.checks)),
        failures=str(counted[FAILED]),
        errors=str(counted[ERRORED]),
        skipped=str(counted[SKIPPED]),
        time=f"{elapsed:.3f}",
    )
    started = (
        verdict.wall_offset + verdict.window[0] if verdict.wall_offset and verdict.window else time.time()
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"rollgate.{verdict.scenario}",
        tests=str(len(verdict.checks)),
        failures=str(counted[FAILED]),
        errors=str(counted[ERRORED]),
        skipped=str(counted[SKIPPED]),
        time=f"{elapsed:.3f}",
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)),
        hostname=socket.gethostname(),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict", verdict.verdict),
        ("run_id", verdict.run_id),
        ("seed", verdict.seed),
        ("from_release", verdict.from_release),
        ("to_release", verdict.to_release),
        ("action", verdict.action),
        ("backend", verdict.backend),
    ):
        if value is not None:
            ET.SubElement(properties, "property", name=name, value=_clean(str(value)))
    for check in verdict.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"rollgate.{verdict.scenario}",
            name=check.id,
            time=f"{check.duration_s or 0.0:.3f}",
        )
        tag = {FAILED: "failure", ERRORED: "error", SKIPPED: "skipped"}.get(check.status)
        if tag is None:
            continue
        element = ET.SubElement(case, tag, message=_clean(check.summary))
        if tag != "skipped":
            element.set("type", check.id)
            element.text = _clean(evidence_text(check) + f"\nseed={verdict.seed} run={verdict.run_id}")
    releases = "\n".join(
        f"{host}: " + ", ".join(f"{s}={r}" for s, r in sorted(services.items()))
        for host, services in sorted(verdict.releases.items())
    )
    ET.SubElement(suite, "system-out").text = _clean(f"{verdict.recap()}\nreleases at the end:\n{releases}\n")
    ET.indent(suites)
    return suites


def write_junit(verdict: Verdict, run_dir: Path) -> Path:
    data = ET.tostring(junit_element(verdict), encoding="utf-8", xml_declaration=True) + b"\n"
    return write_atomically(run_dir / JUNIT_FILE, data)

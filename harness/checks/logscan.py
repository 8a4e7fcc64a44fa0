"""The RPC and object version promise, read from the services' logs as an operator would.

A rolling upgrade is only safe if versioned objects and the RPC pin keep
every message readable by its receiver: a newer sender must never send a
1.0 compute something it cannot read. When one does, the receiver refuses
it (``UnsupportedVersion``, ``IncompatibleObjectVersion``, as Nova does) and
the sender logs the refusal. The traffic sees only the consequence (a server
in ERROR, a migration that failed); this check names the cause, with the
log lines that prove it, read through the backend (``Backend.logs``) so it
works wherever the hosts live.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from harness.verdict import Check, Evidence

CHECK_VERSION_COMPAT = "rpc.version_compat"
VIOLATIONS = re.compile(r"\b(IncompatibleObjectVersion|UnsupportedVersion)\b")
EVIDENCE_LIMIT = 20


def version_violations(services: Iterable[tuple[str, str]],
                       logs: Callable[[str, str], str]) -> list[tuple[str, str, str]]:
    """(host, service, line) for every log line recording a version refusal."""
    found = []
    for host, service in services:
        try:
            text = logs(host, service)
        except Exception:  # a host already gone has no log to read: nothing to cite
            continue
        found += [(host, service, line.strip()) for line in text.splitlines() if VIOLATIONS.search(line)]
    return found


def version_check(found: list[tuple[str, str, str]]) -> Check:
    if not found:
        return Check.passed(CHECK_VERSION_COMPAT, "no message refused for its RPC or object version")
    kinds = sorted({m.group(1) for _, _, line in found if (m := VIOLATIONS.search(line))})
    where = sorted({f"{host}/{service}" for host, service, _ in found})
    return Check.failed(
        CHECK_VERSION_COMPAT,
        f"{len(found)} message(s) refused for their version ({', '.join(kinds)}) "
        f"logged by {', '.join(where[:5])}",
        [Evidence(line[-400:], target=f"{host}/{service}",
                  error=(m.group(1) if (m := VIOLATIONS.search(line)) else None))
         for host, service, line in found[:EVIDENCE_LIMIT]])

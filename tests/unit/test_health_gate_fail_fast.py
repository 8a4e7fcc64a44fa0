"""The minicloud health gate fails at once on problems the cloud will not mend (issue 11: fail fast)."""
from __future__ import annotations

from collections.abc import Mapping

from harness.clouds.minicloud import ops as minicloud_ops
from harness.clouds.minicloud.ops import TERMINAL_POLLS, MinicloudOps


class ScriptedProbe:
    """Answers each pass with the next scripted (problems, terminal) pair, the last one forever."""

    def __init__(self, passes: list[tuple[list[str], set[str]]]) -> None:
        self.passes = passes
        self.calls = 0
        self.terminal: set[str] = set()

    def problems(self, expected: Mapping[str, Mapping[str, str]]) -> list[str]:
        problems, self.terminal = self.passes[min(self.calls, len(self.passes) - 1)]
        self.calls += 1
        return problems


def _ops(probe: ScriptedProbe) -> MinicloudOps:
    ops = object.__new__(MinicloudOps)
    ops.probe = probe  # type: ignore[assignment]
    return ops


def test_a_server_in_error_fails_the_gate_after_a_few_passes_not_at_the_timeout(monkeypatch) -> None:
    monkeypatch.setattr(minicloud_ops, "POLL", 0.0)
    error = "server s1 (x) is in ERROR"
    probe = ScriptedProbe([([error], {error})])
    report = _ops(probe).health_gate({}, timeout=3600)
    assert not report.ok
    assert report.problems == (error,)
    assert probe.calls == TERMINAL_POLLS


def test_a_terminal_problem_that_goes_away_does_not_fail_early(monkeypatch) -> None:
    monkeypatch.setattr(minicloud_ops, "POLL", 0.0)
    error = "server s1 (x) is in ERROR"
    probe = ScriptedProbe([([error], {error}), ([error], {error}), (["agent down"], set()),
                           ([error], {error}), ([], set())])
    assert _ops(probe).health_gate({}, timeout=3600).ok
    assert probe.calls == 5


def test_transient_problems_are_waited_for_until_the_timeout(monkeypatch) -> None:
    monkeypatch.setattr(minicloud_ops, "POLL", 0.001)
    probe = ScriptedProbe([(["compute-1/compute-agent: /healthz unreachable"], set())])
    report = _ops(probe).health_gate({}, timeout=0.05)
    assert not report.ok
    assert probe.calls > TERMINAL_POLLS

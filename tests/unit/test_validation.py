"""One validation for `rollgate plan` and `rollgate run` (harness/gate/validate.py).

Whatever `run` refuses, `plan` refuses with the same one line on stderr
(``rollgate: error: FILE: FIELD: problem``), exit 2, no traceback, and nothing
started: no process, no run directory. `run` is invoked for real up to the point
where it would deploy (``run_gate`` is replaced by a stand-in that records the
call), so a scenario both accept is shown to reach the deploy and no further.
"""
from __future__ import annotations

import copy
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from harness.backends import procutil
from harness.cli import main
from harness.commands import run as run_command
from harness.scenario import DEFAULT_TOPOLOGY

ROOT = Path(__file__).resolve().parents[2]
BASES = {
    "rolling-upgrade": yaml.safe_load((ROOT / "scenarios" / "rolling-upgrade.yaml").read_text()),
    "mixed-version-hold": yaml.safe_load((ROOT / "scenarios" / "mixed-version-hold.yaml").read_text()),
    "minimal": yaml.safe_load((ROOT / "tests/fixtures/scenarios/valid/minimal.yaml").read_text()),
}


class _Deployed(Exception):
    """`run` got past validation to the deploy (the stand-in for run_gate raises it)."""


@pytest.fixture(autouse=True)
def no_deploy(monkeypatch: pytest.MonkeyPatch) -> None:
    def stand_in(*args: Any, **kwargs: Any) -> Any:
        raise _Deployed

    monkeypatch.setattr(run_command, "run_gate", stand_in)


def _plan_and_run(path: Path, results: Path) -> tuple[Result, Result, str]:
    run_id = "val-" + secrets.token_hex(4)
    old = os.environ.get("ROLLGATE_RESULTS")
    os.environ["ROLLGATE_RESULTS"] = str(results)
    try:
        plan = CliRunner().invoke(main, ["plan", str(path)])
        run = CliRunner().invoke(main, ["run", str(path), "--run-id", run_id])
    finally:
        if old is None:
            del os.environ["ROLLGATE_RESULTS"]
        else:
            os.environ["ROLLGATE_RESULTS"] = old
    return plan, run, run_id


def _assert_same_refusal(path: Path, results: Path) -> str:
    """Both refuse: exit 2, the same single line, no traceback, nothing left. The line."""
    plan, run, run_id = _plan_and_run(path, results)
    for result in (plan, run):
        assert result.exit_code == 2, (result.output, result.exception)
        assert isinstance(result.exception, SystemExit), result.exception  # no traceback
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"rollgate: error: {path}: "), result.stderr
        assert "Traceback" not in result.output
    assert plan.stderr == run.stderr
    assert not (results / run_id).exists()
    assert procutil.tagged_pids(run_id) == []
    return plan.stderr.strip()


def _write(tmp_path: Path, raw: Any) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _with_hosts(raw: dict[str, Any], keep: Callable[[str], bool]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    raw["topology"] = {"hosts": [{"name": n, "roles": [r]} for n, r in DEFAULT_TOPOLOGY if keep(r)]}
    return raw


BASE = BASES["rolling-upgrade"]
CASES: dict[str, tuple[Any, str]] = {
    "negative servers": ({**BASE, "resources": {"servers": -3}},
                         "resources.servers: must be an integer >= 1, got -3"),
    "faults": ({**BASE, "faults": [{"at": "compute-2", "action": "kill", "service": "compute-agent"}]},
               "faults: a gate run does not inject faults yet"),
    "no compute": (_with_hosts(BASE, lambda role: role != "compute"),
                   "topology.hosts: no host has the compute role: no server could be scheduled"),
    "no controller": (_with_hosts(BASE, lambda role: role != "controller"),
                      "topology.hosts: no host has the controller role"),
    "no network": (_with_hosts(BASE, lambda role: role != "network"),
                   "topology.hosts: no host has the network role: compute agents cannot start"),
    "no upgrade": ({**{k: v for k, v in BASE.items() if k != "upgrade"}, "topology": {"release": "1.0"}},
                   "upgrade: missing"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_plan_refuses_what_run_refuses_with_the_same_line(case: str, tmp_path: Path) -> None:
    raw, expected = CASES[case]
    path = _write(tmp_path, raw)
    assert expected in _assert_same_refusal(path, tmp_path / "results")


def test_a_duplicate_key_is_refused_naming_the_field_and_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text('name: dup\nupgrade:\n  from: "1.0"\n  to: "1.1"\n  to: "2.0"\n')
    line = _assert_same_refusal(path, tmp_path / "results")
    assert line.endswith(f"{path}: upgrade.to: given twice (lines 4 and 5); keep one")


def test_a_file_that_is_not_utf8_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes('name: caf\xe9\nupgrade: {from: "1.0", to: "1.1"}\n'.encode("latin-1"))
    line = _assert_same_refusal(path, tmp_path / "results")
    assert line.endswith(f"{path}: (line 1): not UTF-8 text (byte 0xe9 at offset 9); save the file as UTF-8")


def test_a_valid_scenario_reaches_the_deploy_and_plan_accepts_it(tmp_path: Path) -> None:
    plan, run, _ = _plan_and_run(ROOT / "scenarios" / "rolling-upgrade.yaml", tmp_path)
    assert plan.exit_code == 0, plan.output
    assert isinstance(run.exception, _Deployed)


# -- generated: mutations of valid scenarios ------------------------------------------------

def _paths(node: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*where, key)
            yield from _paths(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*where, index)
            yield from _paths(value, (*where, index))


def _set(raw: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> None:
    for part in path[:-1]:
        raw = raw[part]
    if delete:
        del raw[path[-1]]
    else:
        raw[path[-1]] = value


JUNK = st.one_of(st.integers(-10**6, 10**6), st.text(max_size=6), st.none(), st.booleans(),
                 st.floats(allow_nan=False, allow_infinity=False), st.lists(st.integers(-3, 3), max_size=2),
                 st.dictionaries(st.text(max_size=4), st.integers(-3, 3), max_size=2))


@st.composite
def broken_scenarios(draw: st.DrawFn) -> bytes:
    """A valid scenario, mutated once: a value replaced, a key deleted or added, a role gone, a
    key given twice, bytes that are not UTF-8, or the text cut short."""
    raw = copy.deepcopy(BASES[draw(st.sampled_from(sorted(BASES)))])
    kind = draw(st.sampled_from(["replace", "delete", "unknown", "drop-role", "duplicate", "bytes",
                                 "truncate"]))
    event(kind)
    paths = list(_paths(raw))
    if kind == "replace":
        _set(raw, draw(st.sampled_from(paths)), draw(JUNK))
    elif kind == "delete":
        path = draw(st.sampled_from(paths))
        _set(raw, path, None, delete=True)
    elif kind == "unknown":
        mappings = [()] + [p for p in paths if isinstance(_get(raw, p), dict)]
        where = draw(st.sampled_from(mappings))
        _set(raw, (*where, "x-" + draw(st.text("abcdefgh", min_size=1, max_size=5))), draw(JUNK))
    elif kind == "drop-role":
        gone = draw(st.sampled_from(["compute", "controller", "network"]))
        raw = _with_hosts(raw, lambda role: role != gone)
    text = yaml.safe_dump(raw, sort_keys=False).encode()
    if kind == "duplicate":
        key = draw(st.sampled_from(sorted(raw)))
        text += yaml.safe_dump({key: draw(JUNK)}).encode()
    elif kind == "bytes":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xe9", b"\x80\x80"])) + text[at:]
    elif kind == "truncate":
        text = text[:draw(st.integers(0, len(text) - 1))]
    return text


def _get(raw: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        raw = raw[part]
    return raw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_scenarios())
def test_plan_and_run_agree_on_every_mutated_scenario(text: bytes) -> None:
    """Refused: by both, exit 2, one line, no traceback, nothing left running. Accepted (a mutation
    that happens to be valid, e.g. another description): by both, and run reaches the deploy."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mutated.yaml"
        path.write_bytes(text)
        plan, run, _ = _plan_and_run(path, Path(tmp) / "results")
        if plan.exit_code == 0:
            event("valid after mutation")
            assert isinstance(run.exception, _Deployed), (run.output, run.exception)
            return
        event("refused")
        _assert_same_refusal(path, Path(tmp) / "results")


def test_run_without_a_scenario_runs_the_repositorys_default_from_any_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def stand_in(run: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(run)
        raise _Deployed

    monkeypatch.setattr(run_command, "run_gate", stand_in)
    monkeypatch.chdir(tmp_path)  # no scenarios/ here
    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path / "results"))
    result = CliRunner().invoke(main, ["run"])
    assert isinstance(result.exception, _Deployed), result.output
    assert seen[0].scenario.path == str(ROOT / "scenarios" / "rolling-upgrade.yaml")
    help_text = " ".join(CliRunner().invoke(main, ["run", "--help"]).output.split())
    assert "Without SCENARIO, the default gate: scenarios/rolling-upgrade.yaml of the repository" in help_text


def test_run_without_a_scenario_says_so_when_the_default_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_command, "DEFAULT_SCENARIO", tmp_path / "scenarios" / "rolling-upgrade.yaml")
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 2
    assert result.stderr.startswith("rollgate: error: SCENARIO: not given, and the default ")
    assert result.stderr.count("\n") == 1

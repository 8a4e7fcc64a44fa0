"""Cleanup scoped to what the user owns: every process and Docker object carries its run id and
its results root; reaping and listing take one root's, or every root's when asked."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.backends import docker_resources as res
from harness.backends import procutil
from harness.cli import main
from harness.commands import runs as runs_command
from harness.ownership import LABEL_ROOT, NO_ROOT, ROOT_ENV, RUN_ENV, Owner
from harness.runstate import RunState


@pytest.fixture
def run_id() -> str:
    return "own-" + secrets.token_hex(4)


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:  # only what this test started, by pid
        proc.kill()
        proc.wait(5)


def _spawn_in(root: Path, run_id: str, monkeypatch: pytest.MonkeyPatch,
              procs: list[subprocess.Popen[bytes]]) -> int:
    monkeypatch.setenv("ROLLGATE_RESULTS", str(root))
    proc = procutil.spawn(["sleep", "60"], run_id=run_id, host="h", service="s",
                          log_path=root / "sleep.log")
    procs.append(proc)
    return proc.pid


def _spawn_untagged_root(run_id: str, tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> int:
    """A process as an older rollgate started it: a run id, no results root."""
    env = {k: v for k, v in os.environ.items() if k != ROOT_ENV}
    proc = subprocess.Popen(["sleep", "60"], env={**env, RUN_ENV: run_id}, start_new_session=True)
    procs.append(proc)
    return proc.pid


def _environ(pid: int, timeout: float = 10.0) -> list[bytes]:
    """A just-spawned process's environment: /proc reads it empty while the exec is under way (seen
    on a loaded machine), so read until it is not."""
    deadline = time.monotonic() + timeout
    while True:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        if environ or time.monotonic() >= deadline:
            return environ.split(b"\0")
        time.sleep(0.05)


def test_a_spawned_process_carries_its_run_id_and_resolved_results_root(
        tmp_path: Path, run_id: str, monkeypatch: pytest.MonkeyPatch,
        spawned: list[subprocess.Popen[bytes]]) -> None:
    monkeypatch.chdir(tmp_path)
    pid = _spawn_in(Path("relative-results"), run_id, monkeypatch, spawned)
    environ = _environ(pid)
    assert f"{ROOT_ENV}={tmp_path.resolve() / 'relative-results'}".encode() in environ
    (found,) = [p for p in procutil.tagged_processes() if p.pid == pid]
    assert found.owner == Owner(str(tmp_path.resolve() / "relative-results"), run_id)


def test_reap_of_one_root_leaves_other_roots_and_untagged_processes(
        tmp_path: Path, run_id: str, monkeypatch: pytest.MonkeyPatch,
        spawned: list[subprocess.Popen[bytes]]) -> None:
    mine = _spawn_in(tmp_path / "a", run_id, monkeypatch, spawned)
    theirs = _spawn_in(tmp_path / "b", run_id, monkeypatch, spawned)  # the same run id, another root
    old = _spawn_untagged_root(run_id, tmp_path, spawned)
    root_a = str((tmp_path / "a").resolve())
    assert procutil.tagged_pids(run_id, root=root_a) == [mine]
    assert procutil.reap(None, root=root_a, timeout=5) == [mine]
    assert not procutil.alive(mine)
    assert procutil.alive(theirs)
    assert procutil.alive(old)
    # every root (this run id only: the test must not touch anyone else's runs)
    assert sorted(procutil.reap(run_id, root=None, timeout=5)) == sorted([theirs, old])
    assert procutil.tagged_pids(run_id) == []


class _Listing:
    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.filters: list[Any] = []

    def list(self, **kwargs: Any) -> list[Any]:
        self.filters.append(kwargs.get("filters"))
        wanted = kwargs.get("filters", {}).get("label", [])
        return [i for i in self.items if all(_matches(i.attrs.get("Labels") or i.attrs["Config"]["Labels"], w)
                                             for w in wanted)]


def _matches(labels: dict[str, str], wanted: str) -> bool:
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)


class _Item:
    def __init__(self, labels: dict[str, str], container: bool = False) -> None:
        self.attrs = {"Config": {"Labels": labels}} if container else {"Labels": labels}
        self.labels = labels
        self.name = labels.get("rollgate.run", "?")
        self.removed = False

    def remove(self, **kwargs: Any) -> None:
        self.removed = True


class _Engine:
    def __init__(self, items: list[_Item]) -> None:
        self.containers = _Listing([i for i in items if "Config" in i.attrs])
        self.volumes = _Listing([i for i in items if "Config" not in i.attrs])
        self.networks = _Listing([])

    def reap_round(self) -> None:  # what a remove does to the next listing
        for listing in (self.containers, self.volumes):
            listing.items = [i for i in listing.items if not i.removed]


def test_labels_carry_the_results_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path / "r"))
    labels = res.run_labels("x", **{res.LABEL_HOST: "h"})
    assert labels[LABEL_ROOT] == str((tmp_path / "r").resolve())
    assert res.owner_of(labels) == Owner(str((tmp_path / "r").resolve()), "x")
    assert res.owner_of({"rollgate.run": "old", "rollgate.managed": "true"}) == Owner(None, "old")


def test_docker_reap_of_one_root_removes_only_its_objects() -> None:
    mine = _Item({"rollgate.managed": "true", "rollgate.run": "r1", LABEL_ROOT: "/a"}, container=True)
    theirs = _Item({"rollgate.managed": "true", "rollgate.run": "r2", LABEL_ROOT: "/b"}, container=True)
    old = _Item({"rollgate.managed": "true", "rollgate.run": "r3"})  # an older rollgate's volume
    engine = _Engine([mine, theirs, old])
    counts = res.reap(engine, None, rounds=1, root="/a")
    assert counts["containers"] == 1
    assert mine.removed
    assert not theirs.removed
    assert not old.removed
    assert f"{LABEL_ROOT}=/a" in engine.containers.filters[0]["label"]
    engine.reap_round()
    assert res.owners(engine) == {Owner("/b", "r2"): 1, Owner(None, "r3"): 1}
    nested = _Item({"rollgate.managed": "true", "rollgate.run": "r4", LABEL_ROOT: "/b/matrix/runs"},
                   container=True)
    sibling = _Item({"rollgate.managed": "true", "rollgate.run": "r5", LABEL_ROOT: "/bc"}, container=True)
    engine.containers.items += [nested, sibling]
    res.reap(engine, None, rounds=1, root="/b", nested=True)  # down --all: this root and those below
    assert theirs.removed
    assert nested.removed
    assert not sibling.removed
    assert not old.removed
    res.reap(engine, None, rounds=1, root=None)  # machine-wide: every root, and none
    assert theirs.removed
    assert old.removed


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs_command, "_docker_or_none", lambda timeout=60: None)


def test_down_all_stops_this_roots_runs_and_says_what_it_left(
        tmp_path: Path, run_id: str, monkeypatch: pytest.MonkeyPatch,
        spawned: list[subprocess.Popen[bytes]], no_docker: None) -> None:
    mine = _spawn_in(tmp_path / "a", run_id, monkeypatch, spawned)
    matrix = _spawn_in(tmp_path / "a" / "matrix" / "runs", run_id + "-m", monkeypatch, spawned)
    RunState(run_id=run_id + "-m", backend="process", status="up").save()  # in a/matrix/runs
    theirs = _spawn_in(tmp_path / "b", run_id + "-b", monkeypatch, spawned)
    sibling = _spawn_in(tmp_path / "ab", run_id + "-ab", monkeypatch, spawned)  # a prefix, not below
    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path / "a"))
    out = CliRunner().invoke(main, ["down", "--all"])
    assert out.exit_code == 0, out.output
    assert f"of the runs of results root {(tmp_path / 'a').resolve()} and the roots below it" in out.output
    assert "left alone:" in out.output
    assert "down --machine-wide" in out.output
    assert not procutil.alive(mine)
    assert not procutil.alive(matrix)  # a matrix's or catalog's runs live in roots below this one
    recorded = json.loads((tmp_path / "a" / "matrix" / "runs" / f"{run_id}-m" / "run.json").read_text())
    assert recorded["status"] == "down"
    assert procutil.alive(theirs)
    assert procutil.alive(sibling)


@pytest.mark.parametrize("args", [[], ["--all", "--machine-wide"], ["x", "--all"]])
def test_down_wants_exactly_one_scope(args: list[str], no_docker: None) -> None:
    out = CliRunner().invoke(main, ["down", *args])
    assert out.exit_code == 2
    assert "give one of RUN_ID, --all (this results root's runs) or --machine-wide" in out.output


def test_status_says_where_it_looked_and_points_at_other_roots(
        tmp_path: Path, run_id: str, monkeypatch: pytest.MonkeyPatch,
        spawned: list[subprocess.Popen[bytes]], no_docker: None) -> None:
    _spawn_in(tmp_path / "b", run_id, monkeypatch, spawned)
    RunState(run_id=run_id, backend="process", status="up").save()  # run.json in root b
    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path / "a"))
    out = CliRunner().invoke(main, ["status"])
    assert out.exit_code == 0, out.output
    where = f"results root {(tmp_path / 'a').resolve()} ($ROLLGATE_RESULTS or ./results)"
    assert f"{where}: no runs" in out.output
    assert "status --machine-wide" in out.output
    wide = CliRunner().invoke(main, ["status", "--machine-wide"])
    assert wide.exit_code == 0, wide.output
    assert f"results root {(tmp_path / 'b').resolve()}:" in wide.output
    assert f"  {run_id}  up (minicloud on process)  1 processes" in wide.output


def test_status_machine_wide_lists_untagged_runs_apart(
        tmp_path: Path, run_id: str, monkeypatch: pytest.MonkeyPatch,
        spawned: list[subprocess.Popen[bytes]], no_docker: None) -> None:
    _spawn_untagged_root(run_id, tmp_path, spawned)
    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path / "a"))
    wide = CliRunner().invoke(main, ["status", "--machine-wide", "--json"])
    assert wide.exit_code == 0, wide.output
    (entry,) = [e for e in json.loads(wide.output) if e["run_id"] == run_id]
    assert entry == {"results_root": None, "run_id": run_id, "status": "untagged", "backend": None,
                     "cloud": None, "found": ["1 processes"]}
    text = CliRunner().invoke(main, ["status", "--machine-wide"]).output
    assert f"\n{NO_ROOT}:\n" in text
    assert "`rollgate down --all` leaves them, only `rollgate down --machine-wide` stops them" in text


def test_down_machine_wide_stops_every_root_and_the_untagged(
        tmp_path: Path, run_id: str, monkeypatch: pytest.MonkeyPatch,
        spawned: list[subprocess.Popen[bytes]], no_docker: None) -> None:
    # The machine is shared: the command sees only this test's processes.
    real = procutil.tagged_processes
    monkeypatch.setattr(procutil, "tagged_processes",
                        lambda: [p for p in real() if p.owner.run_id.startswith(run_id)])
    mine = _spawn_in(tmp_path / "a", run_id + "-a", monkeypatch, spawned)
    theirs = _spawn_in(tmp_path / "b", run_id + "-b", monkeypatch, spawned)
    RunState(run_id=run_id + "-b", backend="process", status="up").save()  # in root b
    old = _spawn_untagged_root(run_id + "-old", tmp_path, spawned)
    monkeypatch.setenv("ROLLGATE_RESULTS", str(tmp_path / "a"))
    out = CliRunner().invoke(main, ["down", "--machine-wide"])
    assert out.exit_code == 0, out.output
    assert "stopped 3 processes" in out.output
    assert f"also stopped run {run_id}-old, which carried no results root" in out.output
    for pid in (mine, theirs, old):
        assert not procutil.alive(pid)
    recorded = json.loads((tmp_path / "b" / f"{run_id}-b" / "run.json").read_text())
    assert recorded["status"] == "down"

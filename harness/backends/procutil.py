"""Process helpers for the process backend: tagged spawning, graceful stop, reaping.

Every process rollgate starts carries ``ROLLGATE_RUN_ID``,
``ROLLGATE_RESULTS_ROOT`` (see ``harness.ownership``) and ``ROLLGATE_HOST`` in
its environment. Children inherit them, including instances a hypervisor
starts in their own sessions, so a run can always be reaped by scanning
``/proc`` for the tags, even after the ``rollgate`` process that started it was
killed with SIGKILL; and only the runs of one results root are reaped unless
the caller asks for every root (``root=None``).
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from harness.ownership import ROOT_ENV, RUN_ENV, Owner, root_tag, within

HOST_ENV = "ROLLGATE_HOST"
SERVICE_ENV = "ROLLGATE_SERVICE"


def spawn(command: Sequence[str], *, run_id: str, host: str, service: str, log_path: Path,
          cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a detached, tagged process logging to ``log_path`` (appending)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {}), RUN_ENV: run_id, ROOT_ENV: root_tag(), HOST_ENV: host,
                SERVICE_ENV: service}
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(command), cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is dead for every purpose here.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _reap_zombie(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until every pid has exited; return those still alive at the deadline."""
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while pending:
        for pid in list(pending):
            _reap_zombie(pid)
            if not alive(pid):
                pending.discard(pid)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return sorted(pending)


def signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop_pids(pids: Sequence[int], timeout: float) -> None:
    """SIGTERM, wait at most ``timeout``, then SIGKILL what is left."""
    for pid in pids:
        signal_pid(pid, signal.SIGTERM)
    left = wait_gone(pids, timeout)
    for pid in left:
        signal_pid(pid, signal.SIGKILL)
    wait_gone(left, 5.0)


@dataclass(frozen=True)
class TaggedProcess:
    pid: int
    owner: Owner
    host: str | None
    service: str | None


def tagged_processes() -> list[TaggedProcess]:
    """Every live process on the machine that carries a rollgate run tag, with its owner."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
        except OSError:
            continue
        tags = dict(item.decode(errors="replace").split("=", 1) for item in environ
                    if b"=" in item and item.startswith(b"ROLLGATE_"))
        run_id = tags.get(RUN_ENV)
        if run_id is None or not alive(int(entry)):
            continue
        found.append(TaggedProcess(int(entry), Owner(tags.get(ROOT_ENV), run_id),
                                   tags.get(HOST_ENV), tags.get(SERVICE_ENV)))
    return found


def tagged_pids(run_id: str | None = None, host: str | None = None,
                service: str | None = None, *, root: str | None = None, nested: bool = False) -> list[int]:
    """Pids whose environment carries the run tag (any run when ``run_id`` is None), of the
    results root ``root`` (and the roots below it, with ``nested``; any root, and untagged
    processes of an older rollgate, when None)."""
    return [p.pid for p in tagged_processes()
            if (run_id is None or p.owner.run_id == run_id)
            and within(p.owner.root, root, nested)
            and (host is None or p.host == host)
            and (service is None or p.service == service)]


def reap(run_id: str | None, host: str | None = None, timeout: float = 10.0, *,
         root: str | None, nested: bool = False) -> list[int]:
    """Stop every tagged process of a run (or of every run) of the results root ``root``
    (of every root, untagged ones included, when None); return what was found. ``root`` is
    required so that every caller says whose processes it may stop."""
    pids = tagged_pids(run_id, host, root=root, nested=nested)
    if pids:
        stop_pids(pids, timeout)
    # Processes started while we were stopping (a supervisor restarting one).
    late = tagged_pids(run_id, host, root=root, nested=nested)
    for pid in late:
        signal_pid(pid, signal.SIGKILL)
    wait_gone(late, 5.0)
    return pids + late


def listening_addresses() -> set[str]:
    """IPv4 addresses with a listening TCP socket (from /proc/net/tcp)."""
    found = set()
    try:
        with open("/proc/net/tcp") as handle:
            next(handle)
            for line in handle:
                parts = line.split()
                if parts[3] != "0A":  # LISTEN
                    continue
                hex_ip = parts[1].split(":")[0]
                octets = [str(int(hex_ip[i:i + 2], 16)) for i in (6, 4, 2, 0)]
                found.add(".".join(octets))
    except OSError:
        pass
    return found


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI timeout's) raises KeyboardInterrupt meanwhile, so it cleans up like Ctrl-C."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

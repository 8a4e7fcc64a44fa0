"""Start, find, probe and stop workload processes (one per instance).

Each workload runs in its own session (``start_new_session=True``): signals
aimed at the hypervisor's process group (a Ctrl-C, a service restart) never
reach it, which is what lets the hypervisor restart under running instances.
"""
from __future__ import annotations

import json
import logging
import os
import py_compile
import signal
import subprocess
import sys
import time
from pathlib import Path

import minicloud
from minicloud.dataplane.httpjson import CallError, call

LOG = logging.getLogger("minicloud.dataplane.workload_process")

# images/minicloud: the directory ``python -m minicloud.workload`` must run from.
PACKAGE_ROOT = Path(minicloud.__file__).resolve().parent.parent
WORKLOAD_PORTS = range(30000, 40000)


def precompile_workload() -> None:
    """Write the workload's bytecode once, so each instance skips compiling it.

    Compiling at import costs a workload ~1.5 MB of RSS for its whole life, and
    PYTHONDONTWRITEBYTECODE (set in many CI environments) stops Python from
    caching it on its own. Best effort: a read-only tree just costs memory.
    """
    for name in ("__init__.py", "workload.py", "dataplane/__init__.py", "dataplane/workload_wire.py"):
        try:
            py_compile.compile(str(PACKAGE_ROOT / "minicloud" / name), doraise=True)
        except (OSError, py_compile.PyCompileError) as exc:
            LOG.warning("cannot precompile %s: %s", name, exc)


def spawn_workload(uuid: str, bind: str, port: int, instance_dir: Path, host: str,
                   incoming: bool = False) -> int:
    """Start a workload process in its own session; return its pid.

    It inherits this process's environment (the harness puts ROLLGATE_RUN_ID
    there to reap leftovers) and logs to ``workload.log`` in its instance dir.
    """
    command = [sys.executable, "-S", "-m", "minicloud.workload", "--uuid", uuid, "--bind", bind,
               "--port", str(port), "--state-dir", str(instance_dir), "--host", host]
    if incoming:
        command.append("--incoming")
    with open(instance_dir / "workload.log", "ab") as log:
        process = subprocess.Popen(command, cwd=PACKAGE_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=log, start_new_session=True)
    return process.pid


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie does not count; our own children are reaped)."""
    if pid <= 0:
        return False
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child (adopted after a hypervisor restart)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_workload_of(pid: int, uuid: str) -> bool:
    """True if ``pid`` is the workload of ``uuid`` (guards against pid reuse after a reboot)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"minicloud.workload" in cmdline and uuid.encode() in cmdline


def probe_health(address: str, port: int, timeout: float = 1.0) -> dict[str, object] | None:
    """The workload's ``/health`` answer, or None if it does not answer."""
    try:
        status, body, _ = call("GET", f"http://{address}:{port}/health", timeout=timeout)
    except CallError:
        return None
    if status != 200:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def wait_healthy(address: str, port: int, uuid: str, pid: int, timeout: float = 10.0) -> dict[str, object]:
    """Poll ``/health`` until the workload answers for ``uuid``; raise with its log tail if not."""
    deadline = time.monotonic() + timeout
    while True:
        health = probe_health(address, port, timeout=0.5)
        if health is not None and health.get("uuid") == uuid and health.get("pid") == pid:
            return health
        if not pid_alive(pid):
            raise RuntimeError(f"workload {uuid} (pid {pid}) exited during start")
        if time.monotonic() > deadline:
            raise RuntimeError(f"workload {uuid} (pid {pid}) not healthy on {address}:{port} "
                               f"after {timeout:.0f}s (last answer: {health})")
        time.sleep(0.01)


def stop_process(pid: int, uuid: str, timeout: float = 5.0) -> None:
    """SIGTERM the workload's session, then SIGKILL it if it outlives ``timeout``."""
    if not pid_alive(pid) or not is_workload_of(pid, uuid):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while pid_alive(pid):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        else:
            return
    LOG.error("workload %s (pid %d) survived SIGKILL", uuid, pid)


def log_tail(instance_dir: Path, lines: int = 5) -> str:
    try:
        return " | ".join((instance_dir / "workload.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""

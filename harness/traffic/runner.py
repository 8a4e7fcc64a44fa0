"""Start and stop Locust in its own process: headless, bounded, never outliving the harness.

gevent monkey-patches the whole process it runs in, so Locust runs as
``python -m locust -f harness/traffic/locustfile.py`` in its own session (its
own process group, so one signal reaches everything it started). Three bounds
keep it from leaking: Locust's own ``--run-time``, ``PR_SET_PDEATHSIG`` (the
kernel sends SIGTERM when the harness dies, even on kill -9), and the
locustfile's watch on its parent pid. Its CSV stats and log stay under
``results/<run-id>/locust/``.
"""
from __future__ import annotations

import ctypes
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.errors import RollgateError
from harness.traffic.plan import PLAN_ENV, TrafficPlan

LOG = logging.getLogger(__name__)
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PR_SET_PDEATHSIG = 1


class TrafficError(RollgateError):
    """Locust could not be started or stopped: a harness fault (ERROR), not the cloud's."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the locustfile's parent watch still stops it


class TrafficRunner:
    """One Locust process for one plan; a context manager that always stops it."""

    def __init__(self, plan: TrafficPlan, start_timeout_s: float = 60.0) -> None:
        self.plan = plan
        self.start_timeout_s = start_timeout_s
        self.locust_dir = Path(plan.locust_dir)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def users(self) -> int:
        return sum(self.plan.user_counts().values())

    def command(self) -> list[str]:
        stop_timeout = max(5, math.ceil(self.plan.config.api.create_deadline_s) + 5)
        users = str(max(1, self.users))
        return [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-u", users, "-r", users, "--run-time", f"{math.ceil(self.plan.run_time_s)}s",
            "--stop-timeout", str(stop_timeout), "--csv", str(self.locust_dir / "stats"),
            "--only-summary", "--loglevel", "WARNING", "--logfile", str(self.locust_dir / "locust.log"),
            "--exit-code-on-error", "0",
        ]

    def start(self) -> None:
        if self.users == 0:
            raise TrafficError("nothing to send traffic to: no API endpoint and no instance in the plan")
        self.locust_dir.mkdir(parents=True, exist_ok=True)
        ready = self.locust_dir / "ready"
        ready.unlink(missing_ok=True)
        self.plan.parent_pid = os.getpid()
        plan_path = self.plan.write(self.locust_dir / "plan.json")
        env = {**os.environ, PLAN_ENV: str(plan_path), "PYTHONUNBUFFERED": "1"}
        repo_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo_root, env.get("PYTHONPATH")]))
        with open(self.locust_dir / "locust.out", "wb") as output:
            self.process = subprocess.Popen(
                self.command(), env=env, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - it only calls prctl
            )
        LOG.info("locust started (pid %s, %s users)", self.process.pid, self.users)
        deadline = time.monotonic() + self.start_timeout_s
        while not ready.exists():
            if self.process.poll() is not None:
                raise TrafficError(f"locust exited with {self.process.returncode} before traffic started: "
                                   f"{self.output_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TrafficError(f"locust did not start traffic within {self.start_timeout_s:g} s: "
                                   f"{self.output_tail()}")
            time.sleep(0.05)

    def output_tail(self, lines: int = 15) -> str:
        text = ""
        for name in ("locust.out", "locust.log"):
            path = self.locust_dir / name
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM (Locust finishes its users' current task and writes its CSVs), then SIGKILL."""
        if self.process is None:
            return None
        if timeout_s is None:
            timeout_s = self.plan.config.api.create_deadline_s + 15
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                LOG.warning("locust did not stop within %.0f s: killing it", timeout_s)
        self._kill_group()
        code = self.process.wait()
        LOG.info("locust stopped (exit %s)", code)
        return code

    def _kill_group(self) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> TrafficRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""rollgate's pytest plugin (entry point ``pytest11``): each scenario YAML is a test item.

``pytest scenarios/`` collects every ``*.yaml`` directly in the ``scenarios``
directory at the root of the project, and each item is one gate run (the same
code as ``rollgate run``). ``--junitxml`` gives one testcase per scenario
(the run's own junit.xml has one per check); ``-n 2`` (pytest-xdist) runs
scenarios in parallel: every item gets its own run id, and the process
backend derives a free 127.x.y.0/24 from it, so nothing clashes.

Elsewhere (``tests/fixtures/scenarios`` holds invalid files on purpose)
nothing is collected unless ``--rollgate-collect-all`` asks for every YAML
given on the command line (``rollgate matrix`` uses that for its cells).
"""
from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.errors import RollgateError

SCENARIO_DIR = "scenarios"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rollgate")
    group.addoption("--rollgate-backend", default="process", choices=("process", "docker"),
                    help="rollgate: backend of every scenario run (default: process).")
    group.addoption("--rollgate-seed", type=int, default=None,
                    help="rollgate: seed of every scenario run (default: each scenario's).")
    group.addoption("--rollgate-results", default=None,
                    help="rollgate: results directory (default: $ROLLGATE_RESULTS or ./results).")
    group.addoption("--rollgate-collect-all", action="store_true", default=False,
                    help="rollgate: collect every YAML file given, not only those in ./scenarios/.")


# openstacksdk's notices about its own internals (RemovedInSDK50/60Warning, LegacyAPIWarning ...):
# hundreds per gate run, burying the summary of any project's test run that loads this plugin.
DEPENDENCY_NOISE = (
    "ignore::openstack.warnings.OpenStackDeprecationWarning",
    "ignore::openstack.warnings._RemovedInSDKWarning",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in DEPENDENCY_NOISE:
        config.addinivalue_line("filterwarnings", line)
    results = config.getoption("rollgate_results", None)
    if results:
        os.environ["ROLLGATE_RESULTS"] = str(Path(results).resolve())


def _is_scenario(config: pytest.Config, file_path: Path) -> bool:
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    if config.getoption("rollgate_collect_all"):
        return True
    return file_path.parent.name == SCENARIO_DIR and file_path.parent.parent == Path(config.rootpath)


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if _is_scenario(parent.config, file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """A scenario file: one item, named by the scenario's file name."""

    def collect(self) -> Iterator[pytest.Item]:
        yield ScenarioItem.from_parent(self, name=self.path.stem)


class GateVerdictError(Exception):
    """A scenario's verdict was not PASS; the message is the recap and the failing checks."""


def run_id_for(name: str, worker: str | None) -> str:
    """Unique and valid (``RUN_ID_RE``): scenario name, xdist worker, random suffix."""
    stem = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")[:24] or "scenario"
    parts = [stem, *([worker] if worker else []), secrets.token_hex(3)]
    return "-".join(parts)[:40].rstrip("-")


def _cloud_of(path: Path) -> str:
    """The scenario's ``cloud:`` (the default cloud when absent or unreadable: prepare says why)."""
    from harness.clouds import DEFAULT_CLOUD

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return DEFAULT_CLOUD
    return str(raw.get("cloud", DEFAULT_CLOUD)) if isinstance(raw, dict) else DEFAULT_CLOUD


class ScenarioItem(pytest.Item):
    """One gate run of one scenario."""

    def runtest(self) -> None:
        from harness.clouds import registry
        from harness.gate import GateOptions, prepare, run_gate

        config = self.config
        run_id = run_id_for(self.name, os.environ.get("PYTEST_XDIST_WORKER"))
        backend = config.getoption("rollgate_backend")
        profile = registry().get(_cloud_of(self.path))  # an unknown cloud: prepare says so
        if profile is not None and backend not in profile.backends:
            backend = profile.backends[0]  # e.g. real OpenStack: only in containers, whatever the matrix's
        options = GateOptions(backend=backend, seed=config.getoption("rollgate_seed"), run_id=run_id)
        try:
            run = prepare(self.path, options, run_id)
        except RollgateError as exc:
            raise GateVerdictError(f"ERROR {exc}") from None
        lines: list[str] = []
        verdict = run_gate(run, options, lines.append)
        self.user_properties += [("verdict", verdict.verdict), ("run_id", run_id),
                                 ("seed", str(verdict.seed)),
                                 ("report", str(run.run_dir / "report.html"))]
        if verdict.verdict != "PASS":
            detail = [verdict.recap()]
            for check in verdict.failing():
                detail.append(f"{check.status} {check.id}: {check.summary}")
                detail += [f"    {e.describe()}" for e in check.evidence[:5]]
            detail.append(f"report: {run.run_dir / 'report.html'}")
            raise GateVerdictError("\n".join(detail))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, GateVerdictError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"rollgate scenario {self.name}"

"""rollgate's pytest plugin (entry point ``pytest11``): a scenario YAML is a test item, a check a testcase.

``pytest scenarios/`` collects every ``*.yaml`` directly in the ``scenarios``
directory at the root of the project, and each item is one gate run (the same
code as ``rollgate run``), made in the item's setup. The item's outcome is the
verdict: PASS passes; FAIL fails (its call); ERROR (the harness or the machine
failed, or the scenario was refused: nothing judged) is an *error* (its setup),
so that CI can retry errors only. Then every check of the verdict is reported
as its own test, ``<scenario item>::<check id>``, with its evidence
(``harness.pytest_checks``): ``--junitxml`` has one testcase per scenario and
one per check. Failure and error messages start with ``rollgate FAIL`` or
``rollgate ERROR``.

``-n 2`` (pytest-xdist) runs scenarios in parallel: a scenario is one item, so
its run and its checks stay in one worker whatever the ``--dist`` mode; every
item gets its own run id, and the process backend derives a free
127.x.y.0/24 from it, so nothing clashes.

Elsewhere (``tests/fixtures/scenarios`` holds invalid files on purpose)
nothing is collected unless ``--rollgate-collect-all`` asks for every YAML
given on the command line (``rollgate matrix`` uses that for its cells).
"""
from __future__ import annotations

import os
import re
import secrets
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import yaml

from harness.errors import RollgateError
from harness.pytest_checks import ERROR_PREFIX, FAIL_PREFIX, VERDICT_ATTR, CheckReports, verdict_payload
from harness.verdict import ERROR, FAIL, Verdict

SCENARIO_DIR = "scenarios"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rollgate")
    group.addoption("--rollgate-backend", default="process", choices=("process", "docker"),
                    help="rollgate: backend of every scenario run (default: process; a cloud: openstack "
                         "scenario always runs on docker).")
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
    if not hasattr(config, "workerinput"):  # where the summary and the JUnit file are written
        config.pluginmanager.register(CheckReports(config), "rollgate-check-reports")


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """The scenario item's setup report carries its verdict (``CheckReports`` reads it)."""
    report = yield
    if call.when == "setup" and isinstance(item, ScenarioItem) and item.verdict is not None:
        assert item.run_dir is not None
        setattr(report, VERDICT_ATTR, verdict_payload(item.verdict, item.run_dir))
    return report


class ScenarioFile(pytest.File):
    """A scenario file: one item, named by the scenario's file name."""

    def collect(self) -> Iterator[pytest.Item]:
        yield ScenarioItem.from_parent(self, name=self.path.stem)


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


def run_scenario(path: Path, backend: str, seed: int | None, run_id: str) -> tuple[Verdict, Path]:
    """One gate run, as ``rollgate run`` makes it: its verdict and its run directory.

    Raises ``RollgateError`` when the scenario is refused before anything starts.
    The unit tests replace this function with a fake gate.
    """
    from harness.gate import GateOptions, prepare, run_gate

    options = GateOptions(backend=backend, seed=seed, run_id=run_id)
    run = prepare(path, options, run_id)
    lines: list[str] = []
    return run_gate(run, options, lines.append), run.run_dir


class ScenarioItem(pytest.Item):
    """One gate run of one scenario: made in setup (an ERROR is a setup error), judged in call."""

    verdict: Verdict | None = None
    run_dir: Path | None = None

    def setup(self) -> None:
        config = self.config
        run_id = run_id_for(self.name, os.environ.get("PYTEST_XDIST_WORKER"))
        backend = config.getoption("rollgate_backend")
        from harness.clouds import registry

        profile = registry().get(_cloud_of(self.path))  # an unknown cloud: prepare says so
        if profile is not None and backend not in profile.backends:
            backend = profile.backends[0]  # e.g. real OpenStack: only in containers, whatever the matrix's
        try:
            verdict, run_dir = run_scenario(self.path, backend, config.getoption("rollgate_seed"), run_id)
        except RollgateError as exc:
            pytest.fail(f"{ERROR_PREFIX} (scenario refused, nothing ran): {exc}", pytrace=False)
        self.verdict, self.run_dir = verdict, run_dir
        self.user_properties += [("verdict", verdict.verdict), ("run_id", verdict.run_id),
                                 ("seed", str(verdict.seed)), ("report", str(run_dir / "report.html"))]
        if verdict.verdict == ERROR:
            pytest.fail(self._detail(ERROR_PREFIX, verdict, run_dir), pytrace=False)

    def runtest(self) -> None:
        if self.verdict is not None and self.run_dir is not None and self.verdict.verdict == FAIL:
            pytest.fail(self._detail(FAIL_PREFIX, self.verdict, self.run_dir), pytrace=False)

    def _detail(self, prefix: str, verdict: Verdict, run_dir: Path) -> str:
        """One line: the recap (with the checks that decided it) and the report; the evidence is
        in the checks' own reports."""
        recap = verdict.recap().removeprefix(f"{verdict.verdict} ")  # the prefix says it
        return f"{prefix} {recap}; report: {run_dir / 'report.html'}"

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"rollgate scenario {self.name}"

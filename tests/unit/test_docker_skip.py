"""Docker-marked tests skip with a reason when no engine answers (tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).resolve().parents[1] / "conftest.py").read_text()
TESTS = """
import pytest

@pytest.mark.docker
def test_needs_docker():
    raise AssertionError("must not run without an engine")

def test_plain():
    pass
"""


def test_docker_tests_skip_with_the_reason_when_told_there_is_no_engine(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLGATE_NO_DOCKER", "1")
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    docker: needs a Docker engine\n")
    pytester.makepyfile(TESTS)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs a Docker engine: ROLLGATE_NO_DOCKER=1*"])


def test_docker_tests_skip_when_no_engine_answers(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROLLGATE_NO_DOCKER", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path}/no-engine.sock")
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    docker: needs a Docker engine\n")
    pytester.makepyfile(TESTS)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs a Docker engine: no Docker engine answers*"])

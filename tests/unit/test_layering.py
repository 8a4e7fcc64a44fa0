"""The layering of harness/ holds: ``lint-imports`` keeps every contract of pyproject.toml's
``[tool.importlinter]`` (nothing imports upward, the engine imports no cloud, no cloud imports
the gate or the commands, no import cycle inside a package)."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_lint_imports_keeps_every_contract() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), "import-linter is a test dependency: pip install -e '.[test]'"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False)
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"Contracts: {len(contracts)} kept, 0 broken." in result.stdout


def test_the_contracts_forbid_what_the_layering_promises() -> None:
    """The contracts themselves: removing one would make the test above pass vacuously."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    forbidden = {(source, target) for c in contracts if c["type"] == "forbidden"
                 for source in c["source_modules"] for target in c["forbidden_modules"]}
    for engine in ("harness.executor", "harness.traffic", "harness.checks", "harness.report"):
        assert (engine, "harness.clouds") in forbidden
    for upper in ("harness.gate", "harness.commands"):
        assert ("harness.clouds", upper) in forbidden
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    assert layers[0] == "harness.cli"
    assert layers[-1] == "harness.clouds"
    acyclic = set(next(c["ancestors"] for c in contracts if c["type"] == "acyclic_siblings"))
    packages = {"harness.clouds", "harness.gate", "harness.executor", "harness.scenario", "harness.traffic"}
    assert packages <= acyclic

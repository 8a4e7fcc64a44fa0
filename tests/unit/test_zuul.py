"""zuul.d/ and playbooks/ are consistent: every job's playbooks and scenario exist, and
every playbook passes ``ansible-playbook --syntax-check`` (Zuul's own modules stubbed)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ZUUL = ROOT / "zuul.d"
PLAYBOOKS = ROOT / "playbooks"


def zuul_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for path in sorted(ZUUL.glob("*.yaml")):
        items += yaml.safe_load(path.read_text()) or []
    return items


def jobs() -> dict[str, dict[str, Any]]:
    return {item["job"]["name"]: item["job"] for item in zuul_items() if "job" in item}


def resolved(job: dict[str, Any], key: str) -> Any:
    """A job attribute, inherited from its parents as Zuul does."""
    every = jobs()
    while job is not None:
        if key in job:
            return job[key]
        job = every.get(job.get("parent", ""))  # type: ignore[assignment]
    return None


def test_base_job_is_abstract_with_explicit_timeouts() -> None:
    base = jobs()["rollgate-base"]
    assert base["abstract"] is True
    assert isinstance(base["timeout"], int)
    assert base["timeout"] > 0
    for name, job in jobs().items():
        assert isinstance(resolved(job, "timeout"), int), f"{name} has no explicit timeout"


def test_every_job_playbook_exists() -> None:
    for name, job in jobs().items():
        for key in ("pre-run", "run", "post-run"):
            value = resolved(job, key)
            assert value, f"{name}: no {key}"
            for playbook in [value] if isinstance(value, str) else value:
                assert (ROOT / playbook).is_file(), f"{name}: {key} {playbook} does not exist"


#: jobs that run a whole suite (matrix, defect catalog) rather than one scenario
SUITE_JOBS = ("rollgate-nightly-matrix", "rollgate-defect-catalog")


def test_every_scenario_job_names_an_existing_scenario() -> None:
    for name, job in jobs().items():
        if name in ("rollgate-base", *SUITE_JOBS):
            continue
        scenario = (job.get("vars") or {}).get("rollgate_scenario")
        assert scenario, f"{name} names no scenario"
        assert (ROOT / scenario).is_file(), f"{name}: {scenario} does not exist"
        assert name == f"rollgate-{Path(scenario).stem}"


def test_project_stanza_runs_every_job_in_check_gate_and_the_matrix_periodically() -> None:
    project = next(item["project"] for item in zuul_items() if "project" in item)
    concrete = {n for n, j in jobs().items() if not j.get("abstract") and n != "rollgate-nightly-matrix"}
    assert "rollgate-defect-catalog" in concrete
    assert set(project["check"]["jobs"]) == concrete
    assert set(project["gate"]["jobs"]) == concrete
    assert project["periodic"]["jobs"] == list(SUITE_JOBS)


ANSIBLE = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which(
    "ansible-playbook")


@pytest.mark.parametrize("playbook", sorted(p.name for p in PLAYBOOKS.glob("*.yaml")))
def test_playbook_syntax(playbook: str, tmp_path: Path) -> None:
    assert ANSIBLE, "ansible-playbook is not installed (pip install ansible-core)"
    library = tmp_path / "library"
    library.mkdir()
    # zuul_return is Zuul's own module (on the executor): a stub lets the syntax check resolve it.
    (library / "zuul_return.py").write_text("#!/usr/bin/python\nfrom ansible.module_utils.basic import "
                                            "AnsibleModule\nAnsibleModule(argument_spec={'data': {}})"
                                            ".exit_json(changed=False)\n")
    env = {**os.environ, "ANSIBLE_LIBRARY": str(library), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
           "ANSIBLE_HOME": str(tmp_path / "home")}
    done = subprocess.run([ANSIBLE, "--syntax-check", "-i", "localhost,", str(PLAYBOOKS / playbook)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_playbook_fails_the_syntax_check(tmp_path: Path) -> None:
    """The syntax check is not a rubber stamp: an unknown module fails it."""
    assert ANSIBLE
    broken = tmp_path / "broken.yaml"
    broken.write_text("- hosts: all\n  tasks:\n    - name: nope\n      no_such_module_here: {}\n")
    env = {**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "ANSIBLE_HOME": str(tmp_path / "home")}
    done = subprocess.run([ANSIBLE, "--syntax-check", "-i", "localhost,", str(broken)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode != 0

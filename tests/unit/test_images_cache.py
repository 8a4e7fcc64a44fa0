"""Cache keys of the image builder: stable for the same inputs, different for any real change.

No Docker needed: keys are computed from files, and the builder's skip logic
is driven through a fake engine that records what it was asked to do.
"""
from __future__ import annotations

import ast
import os
import shutil
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import image_inputs, images
from harness.errors import RollgateError
from harness.image_inputs import (
    IMAGES_DIR,
    compute_cache_key,
    context_files,
    context_tar,
    read_context,
)
from harness.images import LABEL_CACHE_KEY, LABEL_MANAGED, ImageBuilder, ImageSpec

ARGS = {"BASE_IMAGE": "rollgate/base:bookworm", "MINICLOUD_RELEASE": "1.0"}


def make_tree(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "pkg" / "__init__.py").write_text("VERSION = 1\n")
    (root / "pkg" / "sub" / "mod.py").write_text("def f() -> int:\n    return 1\n")
    (root / "entrypoint.sh").write_text("#!/bin/sh\nexec true\n")
    (root / "entrypoint.sh").chmod(0o755)
    return root


def key_of(root: Path, args: dict[str, str] | None = None, parent: str = "sha256:base") -> str:
    return compute_cache_key(read_context(context_files(root)), args or ARGS, parent)


def test_same_content_elsewhere_and_later_gives_the_same_key(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "a")
    second = tmp_path / "b"
    shutil.copytree(first, second)
    os.utime(second / "pkg" / "__init__.py", (1_000_000, 1_000_000))
    assert key_of(first) == key_of(second)
    assert key_of(first) == key_of(first)  # deterministic, not by chance


def test_caches_and_build_leftovers_do_not_change_the_key(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ctx")
    before = key_of(root)
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\x00junk")
    (root / "pkg" / "stray.pyc").write_bytes(b"\x00")
    (root / "pkg.egg-info").mkdir()
    (root / "pkg.egg-info" / "PKG-INFO").write_text("Name: pkg\n")
    (root / "build" / "lib").mkdir(parents=True)
    (root / "build" / "lib" / "copy.py").write_text("x = 1\n")
    assert key_of(root) == before


@pytest.mark.parametrize("change", ["edit", "add", "rename", "exec-bit", "delete"])
def test_any_change_of_the_context_changes_the_key(tmp_path: Path, change: str) -> None:
    root = make_tree(tmp_path / "ctx")
    before = key_of(root)
    target = root / "pkg" / "sub" / "mod.py"
    if change == "edit":
        target.write_text("def f() -> int:\n    return 2\n")
    elif change == "add":
        (root / "pkg" / "new.py").write_text("")
    elif change == "rename":
        target.rename(target.with_name("other.py"))
    elif change == "exec-bit":
        target.chmod(0o755)
    else:
        target.unlink()
    assert key_of(root) != before


def test_build_args_and_parent_are_part_of_the_key(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "ctx")
    keys = {
        key_of(root),
        key_of(root, {**ARGS, "MINICLOUD_RELEASE": "1.1"}),
        key_of(root, parent="sha256:another-base"),
        key_of(root, {"BASE_IMAGE": "rollgate/base:bookworm"}),
    }
    assert len(keys) == 4


def test_the_wheel_set_is_part_of_the_key(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "a-1.0-py3-none-any.whl").write_bytes(b"one")
    files = {"Dockerfile": make_tree(tmp_path / "ctx") / "Dockerfile", "wheels/a-1.0-py3-none-any.whl":
             wheels / "a-1.0-py3-none-any.whl"}
    before = compute_cache_key(read_context(files), ARGS, "p")
    (wheels / "a-1.0-py3-none-any.whl").write_bytes(b"two")  # same name, other content
    assert compute_cache_key(read_context(files), ARGS, "p") != before


def test_context_tar_is_reproducible_and_holds_exactly_the_snapshot(tmp_path: Path) -> None:
    snapshot = read_context(context_files(make_tree(tmp_path / "ctx")))
    first, second = context_tar(snapshot).getvalue(), context_tar(snapshot).getvalue()
    assert first == second
    with tarfile.open(fileobj=context_tar(snapshot)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == set(snapshot)
        assert members["entrypoint.sh"].mode == 0o755
        assert members["Dockerfile"].mode == 0o644
        extracted = tar.extractfile("pkg/sub/mod.py")
        assert extracted is not None
        assert extracted.read() == snapshot["pkg/sub/mod.py"][1]


def test_repository_images_have_stable_keys() -> None:
    """The real recipes hash the same twice (no clock or temp path leaks into a key)."""
    for name in ("base", "postgres", "haproxy", "minicloud"):
        assert key_of(IMAGES_DIR / name) == key_of(IMAGES_DIR / name), name


def test_release_list_matches_minicloud() -> None:
    """The harness does not import minicloud, so it reads its release table as text."""
    tree = ast.parse((IMAGES_DIR / "minicloud" / "minicloud" / "releases.py").read_text())
    names = next(ast.literal_eval(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", "") == "RELEASE_NAMES" for t in node.targets))
    assert tuple(names) == images.MINICLOUD_RELEASES


def test_release_tags_and_unknown_release() -> None:
    assert images.minicloud_tag("1.1+unpinned") == "rollgate/minicloud:1.1"
    assert [s.tag for s in images.image_specs(releases=["2.0"])][-1] == "rollgate/minicloud:2.0"
    with pytest.raises(RollgateError, match=r"unknown minicloud release 3\.0; valid: 1\.0"):
        images.image_specs(releases=["3.0"])


def test_requirements_come_from_minicloud_pyproject(tmp_path: Path) -> None:
    (tmp_path / "minicloud").mkdir()
    (tmp_path / "minicloud" / "pyproject.toml").write_text(
        '[project]\nname = "minicloud"\ndependencies = ["b>=2", "a>=1"]\n')
    assert image_inputs.minicloud_requirements(tmp_path) == ["a>=1", "b>=2"]
    (tmp_path / "minicloud" / "pyproject.toml").write_text("not toml = = =")
    with pytest.raises(RollgateError, match=r"pyproject\.toml"):
        image_inputs.minicloud_requirements(tmp_path)


def test_complete_wheelhouse_is_reused_without_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pip(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pip must not run for a complete wheelhouse")

    calls: list[list[str]] = []

    def fake_pip(what: str, command: list[str], *args: Any, **kwargs: Any) -> None:
        calls.append(command)
        Path(command[command.index("--dest") + 1], "x-1-py3-none-any.whl").write_bytes(b"w")

    monkeypatch.setattr(image_inputs, "run_logged", fake_pip)
    lines: list[str] = []
    first = image_inputs.ensure_wheelhouse(["a>=1"], tmp_path, lines.append)
    assert len(calls) == 1
    assert "--only-binary=:all:" in calls[0]
    assert "3.11.2" in calls[0]
    assert (first / "requirements.txt").read_text() == "a>=1\n"
    monkeypatch.setattr(image_inputs, "run_logged", no_pip)
    assert image_inputs.ensure_wheelhouse(["a>=1"], tmp_path, lines.append) == first
    assert "cached" in lines[-1]
    monkeypatch.setattr(image_inputs, "run_logged", fake_pip)
    assert image_inputs.ensure_wheelhouse(["a>=2"], tmp_path, lines.append) != first  # new requirements


class FakeEngine:
    """Just enough of the Docker SDK client for the builder's skip-or-build decision."""

    def __init__(self, labels: dict[str, str] | None, build_events: list[dict[str, Any]]) -> None:
        self.labels = labels
        self.build_events = build_events
        self.builds: list[dict[str, Any]] = []
        self.images = SimpleNamespace(get=self._get)
        self.api = SimpleNamespace(build=self._build)

    def _get(self, tag: str) -> Any:
        import docker

        if self.labels is None:
            raise docker.errors.ImageNotFound(tag)
        return SimpleNamespace(id="sha256:" + "1" * 64, short_id="sha256:111111111111", labels=self.labels,
                               attrs={"Size": 5_000_000})

    def _build(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.builds.append(kwargs)
        self.labels = kwargs["labels"]
        return self.build_events


def test_builder_skips_an_image_whose_key_matches(tmp_path: Path) -> None:
    spec = ImageSpec("rollgate/test:1", "test", make_tree(tmp_path / "ctx"))
    engine = FakeEngine(None, [{"stream": "Step 1/1 : FROM scratch\n"}])
    lines: list[str] = []
    builder = ImageBuilder(engine, images_dir=tmp_path, cache_dir=tmp_path / "cache", progress=lines.append)
    first = builder.build_image(spec, "sha256:base")
    assert not first.cached
    assert len(engine.builds) == 1
    assert engine.builds[0]["labels"][LABEL_MANAGED] == "true"
    assert engine.builds[0]["labels"][LABEL_CACHE_KEY] == first.cache_key
    second = ImageBuilder(engine, images_dir=tmp_path, cache_dir=tmp_path / "cache",
                          progress=lines.append).build_image(spec, "sha256:base")
    assert second.cached
    assert len(engine.builds) == 1
    assert "up to date" in lines[-1]
    assert "no work" in lines[-1]
    ImageBuilder(engine, images_dir=tmp_path, cache_dir=tmp_path / "cache").build_image(spec, "sha256:new")
    assert len(engine.builds) == 2  # a new base rebuilds


def test_failed_build_names_the_image_and_shows_the_log_tail(tmp_path: Path) -> None:
    spec = ImageSpec("rollgate/test:1", "test", make_tree(tmp_path / "ctx"))
    events = [{"stream": "Step 2/3 : RUN apt-get install nothing\n"}, {"stream": "E: Unable to locate\n"},
              {"error": "returned a non-zero code: 100", "errorDetail": {"message": "returned a non-zero "
                                                                         "code: 100"}}]
    builder = ImageBuilder(FakeEngine(None, events), images_dir=tmp_path, cache_dir=tmp_path / "cache",
                           progress=lambda line: None)
    with pytest.raises(RollgateError) as caught:
        builder.build_image(spec, "sha256:base")
    message = str(caught.value)
    assert message.startswith("building rollgate/test:1 failed: returned a non-zero code: 100")
    assert "E: Unable to locate" in message
    assert "rollgate_test_1.log" in message


def test_run_logged_kills_a_silent_hang_and_reports_the_tail(tmp_path: Path) -> None:
    with pytest.raises(RollgateError, match=r"(?s)slow step failed \(timed out after 1s\).*before-the-hang"):
        image_inputs.run_logged("slow step", ["sh", "-c", "echo before-the-hang; sleep 30"],
                                tmp_path / "slow.log", timeout=1.0)
    with pytest.raises(RollgateError, match=r"(?s)failing step failed \(exited 3\).*last words"):
        image_inputs.run_logged("failing step", ["sh", "-c", "echo last words; exit 3"],
                                tmp_path / "fail.log", timeout=10.0)
    assert (tmp_path / "fail.log").read_text() == "last words\n"

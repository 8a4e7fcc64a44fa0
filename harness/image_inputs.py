"""What goes into an image build: the context files, their cache key, the wheelhouse.

Split from ``harness.images`` (the builder) because this part needs no Docker:
it decides *whether* an image must be built, and the unit tests exercise it
without an engine.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.errors import RollgateError

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
CACHE_KEY_VERSION = b"rollgate-image-cache-v1"
IGNORED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git", "build", "dist"}
IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", "~", ".egg-info")
WHEEL_DOWNLOAD_TIMEOUT = 600.0
LOG_TAIL_LINES = 25

# The image's interpreter is Debian bookworm's python3 3.11.2. pip 23 does not
# expand manylinux_2_X platforms by itself, so every glibc up to 2.36 is listed.
IMAGE_PYTHON = "3.11.2"
WHEEL_PLATFORMS = ("manylinux2014_x86_64", *(f"manylinux_2_{n}_x86_64" for n in range(17, 37)))
BOOTSTRAP_WHEELS = ("pip", "setuptools", "wheel")  # pip itself, and what builds minicloud's wheel

Progress = Callable[[str], None]


def context_files(directory: Path, prefix: str = "") -> dict[str, Path]:
    """The files of a build context, by their path in it; caches and build leftovers excluded.

    Excluding them keeps the key stable while tests or an editor write bytecode
    and egg-info next to the sources.
    """
    found: dict[str, Path] = {}
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS and not d.endswith(IGNORED_SUFFIXES))
        for name in files:
            if name.endswith(IGNORED_SUFFIXES):
                continue
            path = Path(root) / name
            found[prefix + path.relative_to(directory).as_posix()] = path
    return found


Snapshot = dict[str, tuple[bool, bytes]]  # path in the context -> (executable, content)


def read_context(files: Mapping[str, Path]) -> Snapshot:
    """Read every file once, so the key and the context sent are the same bytes.

    Others edit minicloud while images build; hashing and sending two reads
    could label an image with a key it was not built from.
    """
    return {name: (bool(os.stat(path).st_mode & 0o111), path.read_bytes()) for name, path in files.items()}


def compute_cache_key(snapshot: Snapshot, build_args: Mapping[str, str], parent_id: str) -> str:
    """A hash of everything a build consumes: paths, contents and exec bits, args and parent.

    Modification times and the checkout's location do not count, so a fresh
    clone of the same tree gets the same key.
    """
    digest = hashlib.sha256(CACHE_KEY_VERSION)
    for name in sorted(snapshot):
        executable, content = snapshot[name]
        digest.update(b"\0file\0" + name.encode() + b"\0" + (b"x" if executable else b"-"))
        digest.update(hashlib.sha256(content).digest())
    for name in sorted(build_args):
        digest.update(b"\0arg\0" + name.encode() + b"=" + build_args[name].encode())
    digest.update(b"\0parent\0" + parent_id.encode())
    return digest.hexdigest()


def context_tar(snapshot: Snapshot) -> io.BytesIO:
    """The build context as a tar with neutral owners and times (only contents and modes matter)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in sorted(snapshot):
            executable, content = snapshot[name]
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o755 if executable else 0o644
            tar.addfile(info, io.BytesIO(content))
    buffer.seek(0)
    return buffer


def minicloud_requirements(images_dir: Path = IMAGES_DIR) -> list[str]:
    """minicloud's runtime dependencies, as its pyproject.toml declares them right now."""
    pyproject = images_dir / "minicloud" / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text())
        return sorted(str(r) for r in data["project"].get("dependencies", []))
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise RollgateError(f"{pyproject}: cannot read [project] dependencies: {exc}") from exc


def ensure_wheelhouse(requirements: Sequence[str], cache_dir: Path, progress: Progress) -> Path:
    """Download wheels for the image's Python once per requirement set; return the directory.

    pip cannot reach PyPI from inside a build (certificate checks fail), so the
    host downloads every wheel. The directory is keyed by the requirements and
    platform, so an unchanged minicloud needs no download at all.
    """
    wanted = [*requirements, *BOOTSTRAP_WHEELS]
    recipe = "\n".join([IMAGE_PYTHON, *WHEEL_PLATFORMS, *wanted])
    target = cache_dir / "wheels" / hashlib.sha256(recipe.encode()).hexdigest()[:16]
    if (target / ".complete").exists():
        progress(f"wheelhouse: cached ({target})")
        return target
    progress(f"wheelhouse: downloading wheels for Python {IMAGE_PYTHON}: {', '.join(requirements)}")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    platforms = [arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--dest", str(partial),
               "--python-version", IMAGE_PYTHON, "--implementation", "cp", "--abi", "cp311", *platforms,
               "--only-binary=:all:", *wanted]
    run_logged("wheel download", command, cache_dir / "logs" / "wheels.log", WHEEL_DOWNLOAD_TIMEOUT)
    (partial / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    (partial / ".complete").write_text(recipe)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    return target


def run_logged(what: str, command: list[str], log_path: Path, timeout: float,
                on_line: Callable[[str], None] | None = None) -> None:
    """Run a command with its output in a log file; fail with the log's tail.

    A watchdog kills the whole process group at the timeout, so a silent hang
    (a stalled download) ends too, with every child debootstrap or pip started.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
    timed_out = threading.Event()
    with log_path.open("w") as log_file, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True) as process:

        def kill_group() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout, kill_group)
        watchdog.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                log_file.write(line)
                tail.append(line.rstrip())
                if on_line is not None:
                    on_line(line.rstrip())
            code = process.wait()
        finally:
            watchdog.cancel()
    if code != 0 or timed_out.is_set():
        reason = f"timed out after {timeout:.0f}s" if timed_out.is_set() else f"exited {code}"
        raise RollgateError(f"{what} failed ({reason}): {' '.join(command[:4])} ...\n"
                            f"--- last lines of {log_path} ---\n" + "\n".join(tail))


def unmount_below(path: Path) -> None:
    """Unmount what an interrupted debootstrap left mounted (proc, sys) before deleting its tree."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True, timeout=30)

"""Print the layering figures of issue 12: import cycles in ``harness/``, cloud names outside
``harness/clouds/``, modules over 400 lines.

Run from the repository root: ``python benchmarks/layering.py``. The import graph is read from
the source (every ``import`` statement, also those inside functions, as import-linter counts
them), so a cycle broken only by importing late still shows.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "harness"
CLOUD_NAME = re.compile(r"([\"'])(openstack|minicloud)\1")
BRANCH = re.compile(r"cloud\"?\)? *(==|!=) *[\"'](openstack|minicloud)[\"']")
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The harness modules ``path`` imports (``from a.b import c`` is ``a.b.c`` when that is a module)."""
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(n for n in names if n in modules)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def main() -> None:
    paths = sorted(HARNESS.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imports_of(p, modules) - {module_name(p)} for p in paths}
    found = cycles(graph)
    print(f"import cycles in harness/ (strongly connected groups): {len(found)}")
    for group in found:
        print("   ", " <-> ".join(group))
    outside = [p for p in paths if "clouds" not in p.relative_to(HARNESS).parts]
    names = [(p, n, line) for p in outside for n, line in enumerate(p.read_text().splitlines(), 1)
             if CLOUD_NAME.search(line)]
    print(f"quoted cloud names outside harness/clouds/: {len(names)} lines in {len({p for p, _, _ in names})} files")
    for p, n, line in names:
        print(f"    {p.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    branches = [(p, n) for p, n, line in names if BRANCH.search(line)]
    print(f"branches on a cloud's name outside harness/clouds/: {len(branches)} in "
          f"{len({p for p, _ in branches})} files")
    big = sorted(((len(p.read_text().splitlines()), p) for p in paths), reverse=True)
    big = [(n, p) for n, p in big if n > MAX_LINES]
    print(f"modules over {MAX_LINES} lines: {len(big)}")
    for n, p in big:
        print(f"    {n} {p.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

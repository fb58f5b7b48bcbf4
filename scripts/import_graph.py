#!/usr/bin/env python
"""The import graph of the speech_rnn package, from the source alone (nothing is imported).

    python scripts/import_graph.py [--edges]

Every import counts, at the top of a module or inside a function. Prints the number of
modules and edges, each import cycle, and each import from the core into a tooling
subpackage (``bench``, ``data``, ``synth``, ``deploy``); exits 1 if there is either. The core
is every module directly in ``speech_rnn/`` except ``cli``, the command line, which is where
the tools are plugged in.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "speech_rnn"
TOOLING = ("bench", "data", "synth", "deploy")
ENTRY_POINTS = ("cli",)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(module: str, is_package: bool, node) -> list:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph(package: Path = PACKAGE) -> dict:
    """``{module: {imported module, ...}}`` over the package's own modules."""
    files = {module_name(p): p for p in package.rglob("*.py")}
    graph = {m: set() for m in files}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _imported(module, path.name == "__init__.py", node):
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if (
                    target
                    and target != module
                    and not module.startswith(target + ".")
                    and target != package.name
                ):
                    graph[module].add(target)
    return graph


def cycles(graph: dict) -> list:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def is_core(module: str) -> bool:
    parts = module.split(".")
    return len(parts) == 2 and parts[1] not in TOOLING + ENTRY_POINTS


def core_to_tooling(graph: dict) -> list:
    """``(core module, tooling module)`` for every import against the layering."""
    return sorted(
        (m, t)
        for m, targets in graph.items()
        if is_core(m)
        for t in targets
        if t.split(".")[1] in TOOLING
    )


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    graph = import_graph()
    found, wrong = cycles(graph), core_to_tooling(graph)
    print(
        f"{len(graph)} modules, {sum(map(len, graph.values()))} import edges, "
        f"{len(found)} cycle(s), {len(wrong)} core->tooling import(s)"
    )
    if "--edges" in argv:
        for module in sorted(graph):
            print(f"  {module} -> {' '.join(sorted(graph[module])) or '-'}")
    for group in found:
        print("  cycle:", ", ".join(group))
    for module, target in wrong:
        print(f"  core imports tooling: {module} -> {target}")
    return 1 if found or wrong else 0


if __name__ == "__main__":
    sys.exit(main())

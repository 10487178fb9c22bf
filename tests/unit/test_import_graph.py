"""Issue 12 item 4: ``gamead_core``'s import graph has no cycle (module-level imports, read with ``ast``).

An edge goes from a module to each ``gamead_core`` module it imports at module level (imports under
``if TYPE_CHECKING:`` are for type checkers only and do not count; imports inside functions are deferred and
do not count either). ``from pkg import name`` points at ``pkg.name`` when that is a module, else at
``pkg``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gamead_core

ROOT = Path(gamead_core.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                walk(node.body)
                walk(node.orelse)
            elif isinstance(node, ast.Try):
                walk(node.body)
                for handler in node.handlers:
                    walk(handler.body)
                walk(node.orelse)
                walk(node.finalbody)

    walk(tree.body)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _top_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_gamead_core_imports_have_no_cycle() -> None:
    graph = import_graph()
    assert "gamead_core.registry.kv" in graph["gamead_core.registry.beat"]  # the graph is read at all
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph) or [])


def test_the_registry_does_not_import_the_worker() -> None:
    graph = import_graph()
    registry = [m for m in graph if m == "gamead_core.registry" or m.startswith("gamead_core.registry.")]
    assert registry
    for module in registry:
        assert not any(t.startswith("gamead_core.worker") for t in graph[module]), module


def test_a_worker_imports_no_web_framework() -> None:
    """A worker serves only ``/metrics`` (uvicorn with the API's bounded framing): importing the API's middleware
    for one constant pulled Starlette and FastAPI into every worker, +16 MB of RSS (74 vs 58 MB at import; issue
    14's worker target is ≤ 80 MB, which the rate sweep then missed at 86 MB)."""
    import subprocess
    import sys

    code = ("import sys, gamead_core.worker.runtime, gamead_core.telemetry.metrics_listener; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'starlette'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out

"""``qstore_qiskit.providers`` modules import one another in one direction only.

The graph is built from each module's *module-level* import statements (including those
under ``if TYPE_CHECKING:``, which are module-level too): an edge ``a -> b`` means ``a``
names ``b`` at import or type-check time. Imports inside functions are deliberate lazy
loads (optional dependencies, start-up time) and do not count. The graph must be a DAG,
and each module must import on its own in a fresh interpreter.
"""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys
import unittest

PACKAGE = "qstore_qiskit.providers"
ROOT = pathlib.Path(__file__).resolve().parents[2]
SRC = ROOT / "qstore_qiskit" / "providers"


def _module_level_imports(tree: ast.Module) -> list[ast.stmt]:
    """Import statements at module level, including inside ``if``/``try`` blocks."""
    out: list[ast.stmt] = []
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, (ast.If, ast.Try)):
            stack.extend(node.body)
            stack.extend(getattr(node, "orelse", []))
            stack.extend(getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                stack.extend(handler.body)
    return out


def import_graph() -> dict[str, set[str]]:
    """``{module: {sibling modules it imports}}`` for every module of the package."""
    modules = sorted(p.stem for p in SRC.glob("*.py") if p.stem != "__init__")
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name in modules:
        tree = ast.parse((SRC / f"{name}.py").read_text(), filename=f"{name}.py")
        for node in _module_level_imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:  # from .x import y / from . import x
                    targets = [node.module] if node.module else [a.name for a in node.names]
                elif node.level == 0 and node.module and node.module.startswith(PACKAGE + "."):
                    targets = [node.module[len(PACKAGE) + 1:]]
                elif node.level == 0 and node.module == PACKAGE:
                    targets = [a.name for a in node.names]
            else:
                targets = [a.name[len(PACKAGE) + 1:] for a in node.names if a.name.startswith(PACKAGE + ".")]
            for target in targets:
                head = target.split(".")[0]
                if head in graph and head != name:
                    graph[name].add(head)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules (first == last), or ``None``."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


class TestProviderImports(unittest.TestCase):
    def test_graph_is_acyclic(self):
        graph = import_graph()
        self.assertIn("backend", graph)
        self.assertIsNone(find_cycle(graph), f"import cycle in {PACKAGE}: {find_cycle(graph)}; graph {graph}")

    def test_data_flows_one_way(self):
        graph = import_graph()
        # The job needs what the backend prepared, never the backend (or the provider).
        for low in ("job", "results", "prepared", "stats", "options", "binds", "session", "cost", "service"):
            if low in graph:
                with self.subTest(low):
                    self.assertNotIn("backend", graph[low])
                    self.assertNotIn("provider", graph[low])
        self.assertNotIn("provider", graph["backend"])

    def test_detector_finds_a_planted_cycle(self):
        self.assertEqual(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}), ["a", "b", "c", "a"])
        self.assertIsNone(find_cycle({"a": {"b"}, "b": set()}))

    def test_each_module_imports_alone(self):
        names = sorted(import_graph())
        code = (
            "import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    for key in [k for k in sys.modules if k.startswith('qstore_qiskit')]:\n"
            "        del sys.modules[key]\n"
            f"    importlib.import_module('{PACKAGE}.' + name)\n"
            "print('ok')\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
        self.assertEqual(proc.stdout.strip(), "ok", proc.stderr[-2000:])


if __name__ == "__main__":
    unittest.main()

"""The shape of the package after issue 11: no import cycle between ds2's sub-packages, decoding
independent of training, every checkpoint file name spelled in ds2/checkpoint.py only, and a
training loop small enough to read. Read from the source (ast), nothing is run."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ds2"


def unit_of(module: str) -> str:
    """The sub-package (ds2.train, ds2.decode, ...) or top-level module (ds2.checkpoint) of a module."""
    parts = module.split(".")
    return ".".join(parts[:2])


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The ds2 modules `path` imports, wherever the import statement is (module level or not)."""
    tree = ast.parse(path.read_text(), str(path))
    me = module_name(path)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("ds2")}
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{me}: a relative import (ds2 imports absolutely, so this walk sees them all)"
            if node.module.startswith("ds2"):
                out.add(node.module)
    return out


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        me = unit_of(module_name(path))
        if me == "ds2":
            continue
        for target in imports_of(path):
            other = unit_of(target)
            if other not in (me, "ds2"):
                graph.setdefault(me, set()).add(other)
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_cycle_between_sub_packages():
    graph = unit_graph()
    assert "ds2.train" in graph and "ds2.decode" in graph  # the walk found the package
    cycles = sorted(u for u in graph if u in reachable(graph, u))
    assert not cycles, {u: sorted(graph[u]) for u in cycles}


def test_decoding_never_imports_training():
    graph = unit_graph()
    assert "ds2.train" not in reachable(graph, "ds2.decode"), sorted(reachable(graph, "ds2.decode"))
    assert "ds2.train" not in reachable(graph, "ds2.checkpoint")


def test_average_imports_evaluate_at_module_level():
    tree = ast.parse((PACKAGE / "train/average.py").read_text())
    top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert "ds2.train.evaluate" in top
    nested = [n for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) for n in ast.walk(f)
              if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not [ast.unparse(n) for n in nested if "ds2.train" in ast.unparse(n)]


CHECKPOINT_NAME = re.compile(r"""["'](?:best\.pt|last\.pt|averaged\.pt|averaged\.json)["']|f["']?(?:epoch|step)-\{""")


def code_strings(path: Path) -> list[tuple[int, str]]:
    """String literals of `path` that are not docstrings, as (line, source text)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    lines = path.read_text().splitlines()
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Constant, ast.JoinedStr)) and id(node) not in docstrings:
            if isinstance(node, ast.Constant) and not isinstance(node.value, str):
                continue
            out.append((node.lineno, lines[node.lineno - 1]))
    return out


def test_checkpoint_file_names_live_in_ds2_checkpoint_only():
    mine = [PACKAGE / "train", PACKAGE / "cli/train.py", PACKAGE / "data", PACKAGE / "score.py"]
    files = [p for m in mine for p in ([m] if m.is_file() else m.rglob("*.py"))]
    found = []
    for path in files:
        for line, text in code_strings(path):
            # a name in a message to the user (an f-string error text) is help, not a file the code opens
            if CHECKPOINT_NAME.search(text) and "raise " not in text and "help=" not in text:
                found.append(f"{path.relative_to(PACKAGE)}:{line}: {text.strip()}")
    assert not found, found


def test_trainer_is_at_most_300_lines():
    assert len((PACKAGE / "train/trainer.py").read_text().splitlines()) <= 300

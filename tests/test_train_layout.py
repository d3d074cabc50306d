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


# The floors of docs/design.md: a unit (a sub-package or top-level module of ds2) may import a
# unit on a floor below its own, on its own floor only the pairs of SAME_FLOOR, never one above.
FLOORS = {
    "ds2.atomic": 0, "ds2.files": 0, "ds2.progress": 0, "ds2.precision": 0,
    "ds2.text": 1, "ds2.model": 1, "ds2.score": 1, "ds2.homophones": 1,
    "ds2.config": 2, "ds2.lm": 2,
    "ds2.checkpoint": 3, "ds2.data": 3,
    "ds2.decode": 4, "ds2.corpora": 4,
    "ds2.infer": 5, "ds2.train": 5, "ds2.report": 5,
    "ds2.serve": 6,
    "ds2.cli": 7, "ds2.__main__": 7,
}
SAME_FLOOR = {("ds2.model", "ds2.text"), ("ds2.homophones", "ds2.score"), ("ds2.__main__", "ds2.cli")}
BOTTOM = {u for u, f in FLOORS.items() if f == 0}
# What a unit may import at all, where that is narrower than the floors allow.
ONLY = {"ds2.serve": {"ds2.infer"} | BOTTOM}  # the server knows a model as ds2.infer presents it
# Never reached, directly or through another unit: decoding, checkpoints, inference and serving
# never import training; nothing that uses a model imports corpus preparation.
NEVER_REACHES = {
    "ds2.train": ["ds2.decode", "ds2.checkpoint", "ds2.infer", "ds2.serve", "ds2.report"],
    "ds2.corpora": ["ds2.train", "ds2.infer", "ds2.serve", "ds2.decode"],
    "ds2.infer": ["ds2.train", "ds2.report"],
}
# ds2/__init__.py: __version__ (anyone may import it) and ds2.Transcriber / ds2.StreamingRecognizer
# handed out lazily from ds2.infer; no module of ds2 imports anything else through the package.
PACKAGE_NAMES = {"__version__"}
PACKAGE_IMPORTS = {"ds2.infer"}


def imports_with_names(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, the names imported from it, line) of every ds2 import in `path`, nested ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("ds2")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ds2"):
            out.append((node.module, [a.name for a in node.names], node.lineno))
    return out


def unit_edges() -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) -> where: every import from one unit into another."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        me = unit_of(module_name(path))
        for target, names, line in imports_with_names(path):
            other = unit_of(target)
            if other == "ds2" and names and set(names) <= PACKAGE_NAMES:
                continue  # __version__: floor-free
            if other != me:
                edges.setdefault((me, other), []).append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}{' ' + str(names) if names else ''}")
    return edges


def test_every_unit_of_ds2_has_a_floor():
    units = {unit_of(module_name(p)) for p in PACKAGE.rglob("*.py")} - {"ds2"}
    assert units - FLOORS.keys() == set(), "place it on a floor in docs/design.md and FLOORS here"
    assert FLOORS.keys() - units == set(), "a unit that is gone: remove it from docs/design.md and FLOORS"


def test_no_module_imports_a_floor_above_its_own():
    bad = []
    for (me, other), where in unit_edges().items():
        if me == "ds2":
            if other not in PACKAGE_IMPORTS:
                bad += where
        elif other == "ds2":
            bad += [f"{w} (through the package: import it from its own module)" for w in where]
        elif FLOORS[other] > FLOORS[me] or (FLOORS[other] == FLOORS[me] and (me, other) not in SAME_FLOOR):
            bad += [f"{w} (floor {FLOORS[me]} -> {FLOORS[other]})" for w in where]
        elif me in ONLY and other not in ONLY[me]:
            bad += [f"{w} ({me} imports only {sorted(ONLY[me])})" for w in where]
    assert not bad, "\n".join(bad)


def test_what_must_never_be_reached_is_not():
    graph = unit_graph()
    bad = {(src, dst) for dst, sources in NEVER_REACHES.items() for src in sources if dst in reachable(graph, src)}
    assert not bad, sorted(bad)


def test_design_md_floor_table_is_the_one_tested():
    """docs/design.md's table (`| floor | units | ... |`) names the same units on the same floors."""
    text = (PACKAGE.parent / "docs/design.md").read_text()
    documented = {}
    for m in re.finditer(r"^\| (\d+) \| ([^|]+) \|", text, re.M):
        for unit in re.findall(r"`(ds2\.[\w.]+)`", m.group(2)):
            documented[unit] = int(m.group(1))
    assert documented == FLOORS


# What `--backend onnxruntime` loads: these modules, and every ds2 module they import when they are
# imported, import no torch (imports inside functions and under TYPE_CHECKING run later or never).
TORCH_FREE = ["ds2.infer", "ds2.infer.audio", "ds2.infer.frontend", "ds2.infer.stream", "ds2.infer.onnx_model",
              "ds2.infer.long_audio", "ds2.infer.align", "ds2.infer.transcript", "ds2.infer.transcriber"]


def module_path(module: str) -> Path | None:
    base = PACKAGE.parent.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None  # a compiled extension (ds2.decode._prefix_beam) or a name inside a module


def import_time_imports(path: Path) -> set[str]:
    """The modules `path` imports when it is imported: module level, also inside if/try blocks,
    not inside functions or classes' methods, nor under `if TYPE_CHECKING:`."""
    out = set()

    def visit(body):
        for node in body:
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                out.add(node.module)
                out.update(f"{node.module}.{a.name}" for a in node.names)  # `from ds2.x import y` may be a module
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body), visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body), visit(node.orelse), visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, ast.ClassDef):
                visit([n for n in node.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))])

    visit(ast.parse(path.read_text()).body)
    return out


def test_the_onnxruntime_path_of_infer_imports_no_torch():
    seen, todo, chains = set(), list(TORCH_FREE), {m: [m] for m in TORCH_FREE}
    found = set()
    while todo:
        module = todo.pop()
        parts = module.split(".")
        # importing ds2.a.b runs ds2/a/__init__.py first
        for parent in [".".join(parts[:i]) for i in range(2, len(parts))] + [module]:
            path = module_path(parent)
            if path is None or parent in seen:
                continue
            seen.add(parent)
            chains.setdefault(parent, chains[module] + [parent])
            for target in import_time_imports(path):
                if target.split(".")[0] == "torch":
                    found.add(" -> ".join(chains[parent]) + " imports torch")
                elif target.startswith("ds2.") and target not in seen:
                    chains.setdefault(target, chains[parent] + [target])
                    todo.append(target)
    assert "ds2.decode.greedy" in seen and "ds2.infer.frontend" in seen  # the walk followed the imports
    assert not found, "\n".join(sorted(found))

"""The import graph of src/reasongen, read from the source (no imports run): what each module imports, the layers,
and which source files a stage's code reaches (what its dvc.yaml deps must list)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "reasongen"

# Lowest first. A module may import modules of its own layer or of a lower one, never of a higher one.
LAYERS = (
    ("reasongen.paths", "reasongen.io", "reasongen.seeding", "reasongen.threads", "reasongen.processes",
     "reasongen.config", "reasongen.overrides", "reasongen.errors"),  # plumbing
    ("reasongen.rows", "reasongen.sources", "reasongen.runs", "reasongen.tracking", "reasongen.serving",
     "reasongen.text"),  # services
    ("reasongen.modeling",),  # task-free models: data, training, PEFT, I/O, generation, tokenizers
    ("reasongen.metrics",),  # one definition of each metric
    ("reasongen.adgen", "reasongen.explain"),  # the two tasks' libraries
    ("reasongen.stages",),  # thin DVC stages
    ("reasongen.sweep", "reasongen.promote"),  # workflows over stages
    ("reasongen.commands", "reasongen.cli", "reasongen.__main__", "reasongen.team", "reasongen.report",
     "reasongen"),  # the command line
)
# Packages of one layer that must not import each other (the two tasks stay apart).
SEPARATE = {("reasongen.adgen", "reasongen.explain"), ("reasongen.explain", "reasongen.adgen")}


def module_file(name: str) -> Path | None:
    path = SRC / Path(*name.split("."))
    if (path / "__init__.py").exists():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def all_modules() -> list[str]:
    names = []
    for file in sorted(PACKAGE.rglob("*.py")):
        parts = file.relative_to(SRC).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return [name for name in names if module_file(name)]


@cache
def imports(name: str) -> frozenset[str]:
    """The project modules `name` imports anywhere in its file (function-level imports included)."""
    file = module_file(name)
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("reasongen")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reasongen"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if module_file(sub) else node.module)
    if name == "reasongen.metrics":  # metrics.load(name) imports any metric module of the folder by path
        found |= {m for m in all_modules() if m.startswith("reasongen.metrics.") and m.count(".") == 3}
    return frozenset(m for m in found if module_file(m) and m != name)


def layer(name: str) -> int:
    best = max((prefix for group in LAYERS for prefix in group if name == prefix or name.startswith(prefix + ".")),
               key=len)
    return next(i for i, group in enumerate(LAYERS) if best in group)


def package(name: str) -> str:
    best = max((prefix for group in LAYERS for prefix in group if name == prefix or name.startswith(prefix + ".")),
               key=len)
    return best


def closure(name: str) -> set[str]:
    """Every project module that importing `name` may run (parent packages' __init__ included)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo += imports(current)
        parts = current.split(".")
        todo += [".".join(parts[:i]) for i in range(2, len(parts)) if module_file(".".join(parts[:i]))]
    return seen


def source_files(names: set[str]) -> set[Path]:
    """The files of these modules, without package __init__ files that hold only a docstring."""
    files = {module_file(name) for name in names}
    return {f for f in files if f.name != "__init__.py" or _has_code(f)}


def _has_code(file: Path) -> bool:
    body = ast.parse(file.read_text(encoding="utf-8")).body
    # a docstring and constants such as __version__ are no code a stage's results depend on
    return any(not (isinstance(n, ast.Expr | ast.Assign) and isinstance(n.value, ast.Constant)) for n in body)


def import_graph() -> dict[str, frozenset[str]]:
    return {name: imports(name) for name in all_modules()}


def upward(graph: dict[str, frozenset[str]]) -> list[str]:
    """`a -> b` for every import of a higher layer, or across two packages that must stay apart."""
    return [f"{name} -> {target}" for name, targets in graph.items() for target in sorted(targets)
            if layer(target) > layer(name) or (package(name), package(target)) in SEPARATE
            or (name.startswith("reasongen.stages.") and target.startswith("reasongen.stages."))]


def find_cycle(graph: dict[str, frozenset[str]]) -> list[str] | None:
    """One import cycle (a -> b -> ... -> a), or None."""
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target, [*path, target])):
                return found
        state[name] = "done"
        return None

    return next((found for name in sorted(graph) if name not in state and (found := visit(name, [name]))), None)

"""The house rules of the package, checked so they hold without anyone remembering them.

Folders by responsibility, each with a public face (``__init__`` with ``__all__``); a few
modules loose at the top; no module, class or function past its size; no import cycle, not
even through an import inside a function; no folder reaching into another's private names;
no chain of our own classes deeper than two; the atomic rename written in one place.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sp404d"
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 80
MAX_LOOSE_MODULES = 8


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        yield ".".join(parts), path


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def imports(name: str, path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import of ours, anywhere in the
    module (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("sp404d"):
                    yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.startswith("sp404d"):
                yield target, [a.name for a in node.names], node.lineno


def resolve(target: str, names: list[str], known: set[str]) -> list[str]:
    """The modules an import really loads: ``from sp404d.x import y`` is module ``x.y`` when
    ``y`` is a submodule, else ``x``."""
    found = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
    return found or [target]


def folder_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or (PACKAGE / parts[-1]).is_dir() else "sp404d"


ALL = dict(modules())


def test_no_module_class_or_function_past_its_size() -> None:
    too_big = []
    for name, path in ALL.items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            too_big.append(f"{name}: {lines} lines")
        for node in ast.walk(tree(path)):
            if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
            if size > limit:
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                too_big.append(f"{name}.{node.name}: {kind} of {size} lines")
    assert not too_big, "\n".join(too_big)


def test_no_import_cycle() -> None:
    known = set(ALL)
    graph = {
        name: {m for t, n, _ in imports(name, path) for m in resolve(t, n, known) if m in known}
        - {name}
        for name, path in ALL.items()
    }
    # A package's __init__ that re-exports its own modules is its face, not a cycle.
    for name in graph:
        graph[name] = {m for m in graph[name] if m != name.rpartition(".")[0]}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(cycles)


def test_no_folder_reaches_into_anothers_private_names() -> None:
    reached = []
    known = set(ALL)
    for name, path in ALL.items():
        for target, names, line in imports(name, path):
            if folder_of(target) == folder_of(name):
                continue
            private = [n for n in names if n.startswith("_") and not n.endswith("__")]
            private += [p for p in target.split(".") if p.startswith("_") and p != "__init__"]
            mods = resolve(target, names, known)
            private += [m for m in mods if m.rpartition(".")[2].startswith("_")]
            if private:
                reached.append(f"{name}:{line} takes {target} {private}")
    assert not reached, "\n".join(reached)


def test_folders_have_a_public_face_and_few_modules_are_loose() -> None:
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(loose) <= MAX_LOOSE_MODULES, sorted(loose)
    for folder in (p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"):
        face = tree(folder / "__init__.py")
        named = [
            t.id
            for node in face.body
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Name)
        ]
        assert "__all__" in named, f"{folder.name}/__init__.py has no __all__"


def test_no_chain_of_our_classes_deeper_than_two() -> None:
    """Errors are left out: a root error and the kinds below it (refused, failed, the card
    away) are a taxonomy with no behaviour to follow up and down a chain."""
    bases: dict[str, list[str]] = {}
    for _, path in ALL.items():
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.ClassDef) and not node.name.endswith("Error"):
                bases[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]

    def depth(name: str) -> int:
        return 1 + max((depth(b) for b in bases.get(name, []) if b in bases), default=0)

    deep = [f"{name}: {depth(name)}" for name in bases if depth(name) > 2]
    assert not deep, deep


@pytest.mark.parametrize("call", ["os.replace", "os.rename"])
def test_the_atomic_rename_is_written_in_at_most_two_modules(call: str) -> None:
    modules_with = [
        name for name, path in ALL.items() if f"{call}(" in path.read_text(encoding="utf-8")
    ]
    assert len(modules_with) <= 2, modules_with

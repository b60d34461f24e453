"""The import graph of ``src/cnnlab`` follows DESIGN.md: no import cycles, and every import
points down the layers (cli -> public API -> training / evaluation / viz -> models, data,
analysis, bridge -> runs, registry, shapes, inference -> errors, fileio).

Two refinements of the picture, both in :data:`LAYERS`: the public API's training functions
live in ``training/run.py`` (fit, resume) and ``transfer.py`` (finetune), so those modules sit
at the public-API layer; and training's records (config, checkpoint format, history, freezing,
optimiser choice) sit below ``runs`` and ``bridge``, which read and use them; and the ONNX
side of inference (``export/runtime.py``: an ``.onnx`` file as a run, run by onnxruntime, with
its metadata, extra check and error condensing) sits below evaluation, which runs it.

The graph is read from the source with :mod:`ast`, so it sees every import, including the ones
inside functions (lazy imports are still dependencies); only imports under
``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"

#: Each part of the package (a top-level module or package, or a module named on its own) and
#: its layer: a module may import modules of its own part, of its own package's parts of the
#: same layer, and of any lower layer.
LAYERS: dict[str, float] = {
    "errors": 0,
    "fileio": 0,
    "documents": 0,
    "_lazy": 0,
    "threads": 0.5,
    "shapes": 1,
    "scratch": 2,
    "registry": 2,
    "models": 3,
    "analysis": 4,
    "data": 4,
    "inference": 2.5,
    "training.config": 4.5,
    "training.checkpoint": 4.5,
    "training.history": 4.5,
    "training.freezing": 4.5,
    "training.optim": 4.5,
    "runs": 5,
    "bridge": 5,
    "training": 6,
    "export.runtime": 6.5,
    "export.metadata": 6.5,
    "export.extra": 6.5,
    "export.failure": 6.5,
    "evaluation": 7,
    "viz": 8,
    "export": 8,
    "training.run": 9,
    "report": 9,
    "transfer": 9.5,
    "explore": 9.5,
    "cli": 10,
    "__main__": 11,
    "__init__": 11,
}
#: The NumPy engine imports nothing of cnnlab but these (and NumPy, checked elsewhere).
SCRATCH_MAY_IMPORT = {"scratch", "shapes", "errors"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Collects the cnnlab modules a file imports, skipping ``if TYPE_CHECKING:`` blocks and,
    unless ``lazy``, function bodies."""

    def __init__(self, package: str, lazy: bool) -> None:
        self.package, self.lazy, self.found = package, lazy, set()

    def visit_If(self, node: ast.If) -> None:
        for child in (
            node.orelse if _is_type_checking(node) else [node.test, *node.body, *node.orelse]
        ):
            self.visit(child)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self.lazy:
            self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.visit_FunctionDef(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(a.name for a in node.names if a.name.split(".")[0] == "cnnlab")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")
            anchor = parts[: len(parts) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        if base.split(".")[0] == "cnnlab":  # a module, or names of one (resolved in graph())
            self.found.update({base, *(f"{base}.{a.name}" for a in node.names)})


def imports_of(path: Path, module: str, *, lazy: bool) -> set[str]:
    """The cnnlab modules ``path`` imports: at module level only, or (``lazy``) anywhere."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    collector = _Imports(package, lazy)
    collector.visit(ast.parse(path.read_text(), str(path)))
    return collector.found


def graph(*, lazy: bool) -> dict[str, set[str]]:
    """Module -> the cnnlab modules it imports (names that are not modules dropped)."""
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    edges = {}
    for name, path in files.items():
        found = {m for m in imports_of(path, name, lazy=lazy) if m in files and m != name}
        # ``from cnnlab import shapes`` imports the module ``cnnlab.shapes``, not the public API
        # of ``cnnlab/__init__.py`` (whose lazy names are resolved by ``__getattr__``)
        if "cnnlab" in found and any(m.startswith("cnnlab.") and m.count(".") == 1 for m in found):
            found.discard("cnnlab")
        edges[name] = found
    return edges


def part(module: str) -> str:
    """The longest name in :data:`LAYERS` that ``module`` is or lies in: ``cnnlab.training.loop``
    -> ``training``, ``cnnlab.training.run`` -> ``training.run``; ``cnnlab`` -> ``__init__``."""
    pieces = module.split(".")[1:]
    for end in range(len(pieces), 0, -1):
        if ".".join(pieces[:end]) in LAYERS:
            return ".".join(pieces[:end])
    return pieces[0] if pieces else "__init__"


def test_every_part_has_a_layer():
    parts = {part(m) for m in graph(lazy=False)}
    assert parts <= set(LAYERS), f"parts without a layer in this test: {parts - set(LAYERS)}"


def test_no_import_cycles():
    edges = graph(lazy=True)  # a lazy import that closes a cycle is a cycle all the same
    cycles, state = [], {}

    def walk(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                walk(target, [*stack, target])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            walk(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_imports_point_down_the_layers():
    upward = []
    for module, targets in graph(lazy=True).items():
        for target in targets:
            a, b = part(module), part(target)
            same_package = module.split(".")[:2] == target.split(".")[:2]
            if a != b and (LAYERS[b] > LAYERS[a] or (LAYERS[b] == LAYERS[a] and not same_package)):
                upward.append(f"{module} (layer {LAYERS[a]}) imports {target} (layer {LAYERS[b]})")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))


def test_scratch_imports_only_itself_and_the_shape_formulas():
    for module, targets in graph(lazy=True).items():
        if part(module) == "scratch":
            assert {t.split(".")[1] for t in targets} <= SCRATCH_MAY_IMPORT, module


def test_the_checker_sees_cycles_and_lazy_imports(tmp_path):
    """The graph reader itself: relative, lazy and TYPE_CHECKING imports."""
    package = tmp_path / "cnnlab" / "pkg"
    package.mkdir(parents=True)
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "if TYPE_CHECKING:\n    from cnnlab.pkg import c\n"
        "def f():\n    import cnnlab.pkg.d\n"
    )
    (package / "a.py").write_text(source)
    path = package / "a.py"
    assert imports_of(path, "cnnlab.pkg.a", lazy=False) == {"cnnlab.pkg", "cnnlab.pkg.b"}
    assert imports_of(path, "cnnlab.pkg.a", lazy=True) == {
        "cnnlab.pkg",
        "cnnlab.pkg.b",
        "cnnlab.pkg.d",
    }

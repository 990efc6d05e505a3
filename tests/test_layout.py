"""torch_impl's layout (DESIGN.md "Inside torch_impl"): every module imports, imports run one way through the
layers, no module is imported in a cycle, and no torch_impl import hides inside a function (the old way
of dodging a cycle). The public API of DESIGN.md imports under its documented names.

Layers, lowest first; a module may import torch_impl modules of its own layer or lower, never higher:

    config | pp leaves (tf_math, jpeg, resize, geometry, tf_jpeg) + model.init | pp ops (crop, randaug)
    + model | pp.transforms + optim | pp.backends | pp.pipelines | data | train | old flat paths (re-exports)
"""
from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import torch_impl

ROOT = Path(torch_impl.__file__).parent

# The old flat modules: thin re-exports kept so code written against the flat layout still imports.
COMPAT = {"augment", "preprocess", "fast_pipeline", "inception_crop", "fast_ops", "numba_kernels", "batched_augment",
          "convert", "init", "schedule", "loss", "mixup", "loop", "checkpoint", "metrics", "tfds_files"}

LAYERS = [
    ("config", {"torch_impl.config"}),
    ("pp leaves", {"torch_impl.pp.tf_math", "torch_impl.pp.jpeg", "torch_impl.pp.resize", "torch_impl.pp.geometry",
                   "torch_impl.pp.tf_jpeg", "torch_impl.model.init"}),
    ("pp ops, model", {"torch_impl.pp.crop", "torch_impl.pp.randaug", "torch_impl.model.vit",
                       "torch_impl.model.convert", "torch_impl.model"}),
    ("transforms, optim", {"torch_impl.pp.transforms", "torch_impl.optim.*"}),
    ("backends", {"torch_impl.pp.backends.*"}),
    ("pipelines", {"torch_impl.pp.pipelines", "torch_impl.pp"}),
    ("data", {"torch_impl.data.*"}),
    ("train", {"torch_impl.train.*"}),
    ("old flat paths", {f"torch_impl.{m}" for m in COMPAT} | {"torch_impl"}),
]


def _module_names() -> list[str]:
    names = ["torch_impl"]
    for f in sorted(ROOT.rglob("*.py")):
        rel = f.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if name not in names:
            names.append(name)
    return names


def _path(name: str) -> Path:
    p = ROOT.parent / Path(*name.split("."))
    return p / "__init__.py" if p.is_dir() else p.with_suffix(".py")


def _layer(name: str) -> int:
    for i, (_, members) in enumerate(LAYERS):
        for m in members:
            if name == m or (m.endswith(".*") and (name == m[:-2] or name.startswith(m[:-1]))):
                return i
    raise AssertionError(f"{name} has no layer: add it to tests/test_layout.py LAYERS (see DESIGN.md)")


def _imports(name: str) -> tuple[set[str], list[str]]:
    """(torch_impl modules imported at module level, torch_impl imports found inside functions)."""
    tree = ast.parse(_path(name).read_text())
    is_pkg = _path(name).name == "__init__.py"
    known = set(_module_names())
    # compiled extensions (optional, e.g. pp._tf_jpeg) are leaves outside the graph: importing one inside a
    # function, with its ImportError handled, is how an optional extension is loaded
    extensions = {".".join(f.relative_to(ROOT.parent).parts[:-1] + (f.name.split(".")[0],))
                  for f in ROOT.rglob("*.so")} | {"torch_impl.pp._tf_jpeg"}
    top, lazy = set(), []

    def targets(node) -> set[str]:
        out = set()
        if isinstance(node, ast.Import):
            out = {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:   # relative import
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                base = ".".join(pkg[:len(pkg) - node.level + 1] + ([base] if base else []))
            subs = {f"{base}.{a.name}" for a in node.names}
            # ``from pkg import submodule`` depends on the submodule; ``from pkg import name`` on pkg itself
            out = (subs & known) | ({base} if subs - known - extensions else set())
        return {t for t in out if t in known}

    for node in tree.body:
        top |= targets(node)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if targets(inner):
                    lazy.append(f"{name}:{inner.lineno} imports {sorted(targets(inner))} inside {node.name}()")
    top.discard(name)
    return top, lazy


def test_every_module_imports():
    for m in pkgutil.walk_packages(torch_impl.__path__, "torch_impl."):
        importlib.import_module(m.name)


def test_no_torch_impl_import_inside_a_function():
    lazy = [line for name in _module_names() for line in _imports(name)[1]]
    assert not lazy, "imports inside functions (import at the top; a cycle is a layout bug):\n" + "\n".join(lazy)


def test_imports_run_one_way_through_the_layers():
    upward = []
    for name in _module_names():
        for target in _imports(name)[0]:
            if _layer(target) > _layer(name):
                upward.append(f"{name} ({LAYERS[_layer(name)][0]}) imports {target} ({LAYERS[_layer(target)][0]})")
    assert not upward, "imports against the layer order:\n" + "\n".join(sorted(upward))


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for t in sorted(graph.get(n, ())):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state:
                found = visit(t)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = {}
    for name in _module_names():
        # a package's __init__ re-exporting its submodules is not a cycle: Python runs the __init__ first and
        # the submodules never need it (the layer test keeps them from importing upwards)
        graph[name] = {t for t in _imports(name)[0] if not name.startswith(t + ".")}
    assert _find_cycle(graph) is None, f"import cycle: {' -> '.join(_find_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("module,names", [
    ("torch_impl.augment", ["apply_op", "RandAugment17", "sample_inception_box", "InceptionCrop"]),
    ("torch_impl.preprocess", ["decode_jpeg"]),
    ("torch_impl.fast_pipeline", ["decode_crop_jpeg", "crop_resize_flip", "resize_small", "central_crop"]),
    ("torch_impl.model", ["ViT"]),
    ("torch_impl.convert", ["load_big_vision_params", "big_vision_params"]),
    ("torch_impl.schedule", ["big_vision_steps", "big_vision_lr"]),
    ("torch_impl.optim", ["build_optimizer", "mixup", "train_step"]),
    ("torch_impl.train", ["build_optimizer", "mixup", "train_step"]),
])
def test_the_public_api_of_design_md_imports(module, names):
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{module} lacks {missing} (DESIGN.md 'Public API')"

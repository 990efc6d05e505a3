"""Check families: one module each, discovered by name (no central list to edit).

A family module defines:
  NAME: str                      the family name (= module name, = fixtures/<NAME>/)
  make_requests() -> {case: {array name: np.ndarray}}   the inputs the reference runs on, or instead
  generate(store, *, environ, onednn) -> [paths]       a family whose reference is a whole program
                                                       (dynamics: big_vision's train.py) records itself
  checks(store) -> list[Check]   positive checks and negative controls from a FixtureStore
  figures(store, results, outdir) -> list[Path]         optional, for the report
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str) -> ModuleType:
    if name not in names():
        raise KeyError(f"unknown check family {name!r}; known: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name}")

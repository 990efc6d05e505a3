"""One module per fixture family: ``generate(name, request, bv) -> dict of arrays``.

``request`` is the .npz the parity side wrote (arrays plus a JSON ``spec``); the generator runs big_vision
on it and returns only the outputs. The parity side merges inputs and outputs into the recorded fixture.
"""
import importlib
import pkgutil


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(family: str):
    if family not in available():
        raise SystemExit(f"reference: no generator for family {family!r}; known: {', '.join(available())}")
    return importlib.import_module(f"{__name__}.{family}")

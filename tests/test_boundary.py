"""The framework boundary: torch_impl never pulls in TF/JAX, reference never pulls in torch.

Each package is imported in a fresh interpreter (every submodule, so a stray import anywhere is caught)
and sys.modules is inspected.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = r"""
import importlib, json, pkgutil, sys
pkg = importlib.import_module(sys.argv[1])
failed = {}
for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    if m.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(m.name)
    except Exception as e:  # a module needing an optional runtime piece; reported, not fatal
        failed[m.name] = repr(e)
roots = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"roots": roots, "failed": failed}))
"""

FORBIDDEN = {
    "torch_impl": {"tensorflow", "jax", "jaxlib", "flax", "optax", "tensorflow_datasets"},
    "reference": {"torch", "torchvision"},
    "parity": {"tensorflow", "jax", "jaxlib", "flax", "optax", "tensorflow_datasets"},
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_never_imports_the_other_framework(package):
    out = subprocess.run([sys.executable, "-c", PROBE, package], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    leaked = FORBIDDEN[package] & set(report["roots"])
    assert not leaked, f"importing {package} (all submodules) pulled in {sorted(leaked)}"
    # Every module must import in a plain interpreter, or the probe above proves nothing about it.
    # reference's generators need big_vision only when run, not when imported.
    assert not report["failed"], f"modules of {package} failed to import: {report['failed']}"

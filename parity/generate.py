"""`parity fixtures generate`: run big_vision on each family's requests and record the results."""
from __future__ import annotations

import numpy as np

from parity import families
from parity.reference_runner import run_reference
from parity.store import FixtureStore, decode_spec


def _describe_inputs(arrays) -> dict:
    args = {}
    for k, v in arrays.items():
        if k == "spec":
            args["spec"] = decode_spec(v)
        else:
            args[k] = {"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype)}
    return args


def onednn_mode(family: str, requested: str | None = None) -> str:
    """The oneDNN mode a family is generated with: the family's own ``ONEDNN`` if it pins one (the
    oneDNN-arithmetic fixture set), else ``requested``, else "off" (TF's Eigen kernels, the same on every
    x86-64 CPU)."""
    return getattr(families.get(family), "ONEDNN", None) or requested or "off"


def generate_family(family: str, store: FixtureStore, *, environ=None, onednn: str | None = None) -> list[str]:
    """Regenerate one family into ``store`` (files + manifest entries); returns the written paths.

    A family whose reference is a whole program rather than requests to the reference runner (the
    ``dynamics`` family: big_vision's own train.py, K seeds) records itself through its ``generate``."""
    mod = families.get(family)
    if callable(getattr(mod, "generate", None)):
        return mod.generate(store, environ=environ, onednn=onednn_mode(family, onednn))
    requests = mod.make_requests()
    outputs, provenance = run_reference(family, requests, environ=environ, onednn=onednn_mode(family, onednn))
    files = {}
    for name, req in requests.items():
        clash = set(req) & set(outputs[name])
        if clash:
            raise RuntimeError(f"family {family}: reference outputs reuse input names {sorted(clash)}")
        files[name] = {**req, **outputs[name]}
    return store.write_family(family, files, provenance=provenance,
                              generator_args={n: _describe_inputs(r) for n, r in requests.items()})

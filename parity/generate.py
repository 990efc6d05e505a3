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


def generate_family(family: str, store: FixtureStore, *, environ=None) -> list[str]:
    """Regenerate one family into ``store`` (files + manifest entries); returns the written paths."""
    mod = families.get(family)
    requests = mod.make_requests()
    outputs, provenance = run_reference(family, requests, environ=environ)
    files = {}
    for name, req in requests.items():
        clash = set(req) & set(outputs[name])
        if clash:
            raise RuntimeError(f"family {family}: reference outputs reuse input names {sorted(clash)}")
        files[name] = {**req, **outputs[name]}
    return store.write_family(family, files, provenance=provenance,
                              generator_args={n: _describe_inputs(r) for n, r in requests.items()})

"""Fixtures for the `preprocess` family: big_vision pp strings applied to recorded images in tf.data."""
from __future__ import annotations

import json

from reference.pp import run_pp


def generate(name, request, bv):
    spec = json.loads(str(request["spec"][()]))
    out = {}
    for key, pp in spec["pipelines"].items():
        out[f"out_{key}"] = run_pp(bv, pp, {"image": request["image"]})["image"]
    return out

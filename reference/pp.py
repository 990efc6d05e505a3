"""Run big_vision preprocessing strings the way its input pipeline runs them: inside tf.data.

big_vision's own op tests run each op eagerly and inside tf.data because the two can differ; fixtures
come from the tf.data path because that is what training sees.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

_OP_MODULES = ("pp.ops_general", "pp.ops_image")


def preprocess_fn(bv, pp: str):
    for m in _OP_MODULES:
        bv.module(m)  # registers the ops
    return bv.module("pp.builder").get_preprocess_fn(pp, log_data=False)


def run_pp(bv, pp: str, example: Mapping[str, np.ndarray], *, seed: int | None = None) -> dict[str, np.ndarray]:
    """Apply the pp string to one example inside a tf.data map; returns numpy arrays."""
    import tensorflow as tf
    if seed is not None:
        tf.random.set_seed(seed)
    fn = preprocess_fn(bv, pp)
    ds = tf.data.Dataset.from_tensors({k: tf.constant(v) for k, v in example.items()}).map(fn)
    out = next(iter(ds))
    return {k: v.numpy() for k, v in out.items()}

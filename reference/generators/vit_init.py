"""Fixtures for `vit_init`: per-parameter statistics of big_vision's ViT initialisation over several seeds.

For each requested model config, big_vision's ``models.vit.Model`` is initialised the way big_vision's
train.py does it (``model.init(rng, zeros image batch)["params"]``, jitted) once per seed
``jax.random.PRNGKey(seed)``; for every leaf (named as ``utils.tree_flatten_with_names`` names it) the
mean, std, min and max are recorded (float64), plus its shape. Only statistics are stored, never weights.
"""
from __future__ import annotations

import json

import numpy as np


def generate(name, request, bv):
    import jax
    import jax.numpy as jnp

    spec = json.loads(str(request["spec"][()]))
    vit = bv.module("models.vit")
    u = bv.module("utils")
    model = vit.Model(**spec["model"])
    h, w = spec["image_size"]
    image = jnp.zeros((1, h, w, 3), jnp.float32)
    init = jax.jit(lambda rng: model.init(rng, image)["params"])

    names, shapes, stats = None, None, []
    for seed in spec["seeds"]:
        flat = u.tree_flatten_with_names(init(jax.random.PRNGKey(seed)))[0]
        flat = sorted((k, np.asarray(v)) for k, v in flat)
        if names is None:
            names = [k for k, _ in flat]
            shapes = {k: list(v.shape) for k, v in flat}
        row = []
        for _, v in flat:
            a = v.astype(np.float64)
            row.append([a.mean(), a.std(), a.min(), a.max()])
        stats.append(row)
    return {
        "names": np.array(names),
        "shapes": np.array(json.dumps(shapes, sort_keys=True)),
        "stats": np.asarray(stats, np.float64),      # (seeds, params, [mean, std, min, max])
        "param_count": np.int64(sum(int(np.prod(s)) for s in shapes.values())),
    }

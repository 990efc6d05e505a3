"""The mixup coefficient big_vision's train.py drew at each update of a seed (recorded as ``mixup_a``).

train.py does not log it, but it is a pure function of ``config.seed``; the same derivation, written here
from train.py's behaviour at the pinned commit:
  rng = PRNGKey(seed); rng, rng_init = split(rng); rng, rng_loop = split(rng, 2)     (before the loop)
  update with optimizer count c (= step - 1): rng = fold_in(rng_loop, c)
  u.get_mixup(rng, p): _, rng_mixup = split(rng); a = beta(rng_mixup, p, p); a = max(a, 1 - a)
with ``jax_threefry_partitionable`` on, as train.py sets it. Why record it: the training loss of a step
depends strongly on how much that step mixed (the loss of a 50/50 mix of two classes is ~ln 2 above an
unmixed one), so per-seed late-loss means carry the luck of 36 Beta(0.2, 0.2) draws; knowing the draws lets
the check remove that noise (parity/dynamics/compare.py). The live test runs train.py with the draws
logged and compares them with these, exactly.
"""
from __future__ import annotations

import numpy as np


def draws(seed: int, steps: int, p: float) -> np.ndarray:
    """(steps,) float64: the coefficient of updates 1..steps (1.0 everywhere when p == 0: no mixup)."""
    if not p:
        return np.ones(steps)
    import jax
    import jax.numpy as jnp
    before = jax.config.jax_threefry_partitionable
    jax.config.update("jax_threefry_partitionable", True)
    try:
        rng = jax.random.PRNGKey(seed)
        rng, _rng_init = jax.random.split(rng)
        _rng, rng_loop = jax.random.split(rng, 2)

        @jax.jit
        def one(count):
            rng_step = jax.random.fold_in(rng_loop, count)
            _, rng_mixup = jax.random.split(rng_step)
            a = jax.random.beta(rng_mixup, p, p)
            return jnp.maximum(a, 1.0 - a)
        return np.asarray(jax.vmap(one)(jnp.arange(steps)), np.float64)
    finally:
        jax.config.update("jax_threefry_partitionable", before)

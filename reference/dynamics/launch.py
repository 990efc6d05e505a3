"""One seed of big_vision's own train.py, run unchanged as ``__main__`` in this process.

``python -m reference.dynamics.launch --seed S --config <bv_config.py:json> --workdir DIR``

Before train.py is imported this module supplies, from outside the big_vision folder, what it needs on
a CPU with current libraries, and pins what it leaves unseeded (big_vision's own comment in train.py:
"full training still won't be deterministic ... due to the tf.data pipeline"):

- ``TF_ENABLE_ONEDNN_OPTS=0`` (set by the parent before TF loads; recorded in the fixture): TF's oneDNN
  kernels round differently on some x86 CPUs, so the mode is pinned, not left to the CPU.
- ``np.random.seed(seed)``: big_vision's jsonl DataSource shuffles the file list with the global
  ``np.random`` (``np.random.shuffle(my_idxs)`` in ``get_tfdata``).
- ``tf.random.set_seed(seed)``: tf.data's shuffle buffer and the stateful random ops of the pp ops
  (inception crop box, flip, randaug's op/level choices) take their op seeds from TF's global seed.
  (The config runs the pp map with ``num_parallel_calls=1`` so the draws happen in that seeded order.)
- the inception crop's box sampler: big_vision calls ``tf.image.sample_distorted_bounding_box`` without a
  seed (``seed=0``), which TF seeds from the OS whatever ``tf.random.set_seed`` says (the inception_crop
  generator found this; docs/portability.md). Here the same TF op gets the non-zero op seed ``seed + 1``
  (``reference.box_sampler.pin``), so the crop boxes come from the same kernel and distribution, reproducibly.
- the tensorflow_addons image shim (reference/tfa_shim.py) that ``pp/archive/autoaugment.py`` imports.
- ``big_vision.utils.sync``: it builds a ``jax.sharding.PositionalSharding``, which current JAX removed;
  a 1-D ``NamedSharding`` over all devices is the same placement (one shard per device).
"""
from __future__ import annotations

import argparse
import os
import runpy
import sys


def _sync_with_named_sharding():
    """big_vision.utils.sync's job (block until every device's queue is empty) without PositionalSharding."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import big_vision.utils as u
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("d",))
    x = u.reshard(np.ones(jax.device_count()), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("d")))
    jax.jit(jnp.sum)(x).block_until_ready()


def prepare(seed: int) -> None:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import numpy as np
    import tensorflow as tf
    np.random.seed(seed)
    tf.random.set_seed(seed)
    from reference import big_vision, box_sampler, tfa_shim
    box_sampler.pin(tf, seed + 1)
    big_vision.locate()                         # a clear error when BIG_VISION_DIR is wrong
    tfa_shim.install()
    root = os.environ[big_vision.ENV]
    if root not in sys.path:
        sys.path.insert(0, root)
    import big_vision.utils as u
    u.sync = _sync_with_named_sharding


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--config", required=True, help="big_vision config spec (file.py:arg)")
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args(argv)
    prepare(args.seed)
    sys.argv = ["big_vision/train.py", f"--config={args.config}", f"--workdir={args.workdir}",
                "--logtostderr", "--verbosity=0"]
    runpy.run_module("big_vision.train", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

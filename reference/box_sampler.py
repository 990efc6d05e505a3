"""big_vision's inception crops draw their box with ``tf.image.sample_distorted_bounding_box`` and no seed
(``seed=0``), which TF seeds from the OS whatever ``tf.random.set_seed`` says (``enable_op_determinism``
refuses the call outright), so two runs draw different boxes. ``pin`` gives those calls a fixed non-zero op
seed from outside big_vision: the same TF kernel, the same distribution, reproducible draws. Used by the
inception_crop generator (while its pp function is traced) and by reference.dynamics.launch (for a whole
train.py run)."""
from __future__ import annotations

import contextlib
from collections.abc import Callable


def pin(tf, op_seed: int) -> Callable[[], None]:
    """Make unseeded ``tf.image.sample_distorted_bounding_box`` calls use ``op_seed`` (a caller's own non-zero
    seed is kept); returns the function that restores TF's own."""
    if not op_seed:
        raise ValueError("the box sampler's op seed must be non-zero (0 means an OS-random seed in TF)")
    real = tf.image.sample_distorted_bounding_box

    def seeded(*args, seed=0, **kw):
        return real(*args, seed=seed or op_seed, **kw)

    tf.image.sample_distorted_bounding_box = seeded

    def restore() -> None:
        tf.image.sample_distorted_bounding_box = real
    return restore


@contextlib.contextmanager
def pinned(op_seed: int):
    """``pin`` for the duration of a block (the pp function must be traced inside it)."""
    import tensorflow as tf
    restore = pin(tf, op_seed)
    try:
        yield
    finally:
        restore()

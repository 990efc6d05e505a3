"""Fixtures for the `randaug_ops` family: each of big_vision's 16 randaug ops, at chosen levels and signs.

The ops are run through big_vision's own ``randaug(1, level)`` preprocessing op (``pp/archive/randaug.py``
-> ``distort_image_with_randaugment``), i.e. the exact code path training uses, inside tf.data. Its random
draws (``tf.compat.v1.random_uniform``) are replaced, while the graph is traced, by values taken from the
dataset element: the op index, the uniform that decides the sign (0.75 keeps the argument, 0.25 negates
it: big_vision keeps it when floor(u + 0.5) == 1), the discarded per-op prob, and the cutout centre. Every
other line of big_vision (level_to_arg, tf.cond dispatch, replace value) runs unmodified.

Each op is also run eagerly (big_vision's tests do both because they can differ); the number of pixels
where eager differs from tf.data is recorded per case as ``eager_ndiff`` (the fixtures are the tf.data
outputs).

Request: ``image`` (H, W, 3) uint8 and ``spec`` = {"cases": [[op, level, sign, cy, cx], ...]}.
Outputs: ``outputs`` (U, H, W, 3) uint8, the distinct results; ``index`` (K,) int32, the row of
``outputs`` for each case; ``eager_ndiff`` (K,) int64.
"""
from __future__ import annotations

import contextlib
import json

import numpy as np

OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
       "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "Cutout", "SolarizeAdd")
N_OPS = len(OPS)


@contextlib.contextmanager
def _forced_draws(tf1, draws):
    """Replace tf.compat.v1.random_uniform by the values in ``draws`` (tensors or numbers), recognised by how
    big_vision calls it. ``draws`` = {"op", "u", "cy", "cx"}; records the calls in draws["calls"]."""
    import tensorflow as tf
    real = tf1.random_uniform
    calls = draws.setdefault("calls", [])
    cutout_seq = []

    def fake(shape, minval=0, maxval=None, dtype=tf.float32, seed=None, name=None):
        dtype = tf.as_dtype(dtype)
        if dtype == tf.int32 and isinstance(maxval, int) and maxval == N_OPS and minval == 0:
            calls.append("op")  # op_to_select = random_uniform([], maxval=len(available_ops), dtype=int32)
            return tf.cast(draws["op"], tf.int32)
        if dtype == tf.int32:
            # cutout: centre height then centre width, each uniform in [0, size)
            which = "cy" if len(cutout_seq) % 2 == 0 else "cx"
            cutout_seq.append(which)
            calls.append(which)
            return tf.cast(draws[which], tf.int32)
        if dtype == tf.float32 and minval == 0.2 and maxval == 0.8:
            calls.append("prob")  # sampled and discarded by randaug
            return tf.constant(0.5, tf.float32)
        if dtype == tf.float32 and minval == 0 and maxval is None:
            calls.append("sign")  # _randomly_negate_tensor: keep if floor(u + 0.5) == 1
            return tf.cast(draws["u"], tf.float32)
        raise AssertionError(f"unexpected random_uniform call: shape={shape} minval={minval} maxval={maxval} "
                             f"dtype={dtype}")

    tf1.random_uniform = fake
    try:
        yield
    finally:
        tf1.random_uniform = real


def _case_draws(op, sign, cy, cx):
    return {"op": OPS.index(op), "u": 0.75 if sign > 0 else 0.25, "cy": cy, "cx": cx}


def generate(name, request, bv):
    import tensorflow as tf
    import tensorflow.compat.v1 as tf1

    spec = json.loads(str(request["spec"][()]))
    image = np.asarray(request["image"], np.uint8)
    cases = [tuple(c) for c in spec["cases"]]
    bv.module("pp.archive.randaug")  # registers preprocess_ops.randaug
    aa = bv.module("pp.archive.autoaugment")
    assert aa.tf is tf1, "big_vision's autoaugment no longer uses tf.compat.v1; update this generator"
    builder = bv.module("pp.builder")

    data_out: dict[tuple, np.ndarray] = {}
    eager_out: dict[tuple, np.ndarray] = {}
    for level in sorted({c[1] for c in cases}):
        sub = [c for c in cases if c[1] == level]
        draws_np = {k: np.array([_case_draws(op, s, cy, cx)[k] for op, _, s, cy, cx in sub])
                    for k in ("op", "u", "cy", "cx")}
        elements = {"image": np.repeat(image[None], len(sub), axis=0),
                    **{k: v.astype(np.float32 if k == "u" else np.int32) for k, v in draws_np.items()}}
        pp = builder.get_preprocess_fn(f"randaug(1, {level})", log_data=False)

        def fn(el):
            draws = {k: el[k] for k in ("op", "u", "cy", "cx")}
            with _forced_draws(tf1, draws):
                return pp({"image": el["image"]})["image"]

        # tf.data traces fn inside map(), while the forced draws are installed.
        ds = tf.data.Dataset.from_tensor_slices(elements).map(fn)
        for case, out in zip(sub, ds):
            data_out[case] = out.numpy()

        # Eagerly, the same big_vision function with the same draws as Python numbers.
        for case in sub:
            op, _, s, cy, cx = case
            draws = _case_draws(op, s, cy, cx)
            with _forced_draws(tf1, draws):
                eager_out[case] = aa.distort_image_with_randaugment(tf.constant(image), 1, level).numpy()
            expected = {"op", "prob", "sign"} | ({"cy", "cx"} if op == "Cutout" else set())
            assert set(draws["calls"]) == expected, (case, draws["calls"])

    uniq: list[np.ndarray] = []
    by_bytes: dict[bytes, int] = {}
    index, ndiff = [], []
    for case in cases:
        out = data_out[case]
        assert out.shape == image.shape and out.dtype == np.uint8, (case, out.shape, out.dtype)
        key = out.tobytes()
        if key not in by_bytes:
            by_bytes[key] = len(uniq)
            uniq.append(out)
        index.append(by_bytes[key])
        ndiff.append(int((out != eager_out[case]).any(axis=-1).sum()))
    return {"outputs": np.stack(uniq), "index": np.array(index, np.int32), "eager_ndiff": np.array(ndiff, np.int64)}

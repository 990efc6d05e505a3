"""Fixtures for the `inception_crop` family: crop boxes sampled by big_vision's own ops.

Two ops, both run inside tf.data like training runs them:
- ``decode_jpeg_and_inception_crop`` (the ViT-S/16 train op) on a real JPEG of the requested size. Its
  decoder is swapped for one that returns the crop window it was asked for, so the boxes come out of
  big_vision's code path (extract_jpeg_shape -> sample_distorted_bounding_box -> crop window) untouched.
- ``inception_crop`` on an int32 "coordinate image" (channel 0 = row, channel 1 = column): the crop's
  first pixel is the box's (top, left) and its shape is (h, w).

Seeding: big_vision calls ``tf.image.sample_distorted_bounding_box`` without a seed (its ``seed=0``
default), and TF then seeds the kernel from the OS (``seed=0`` means "random", whatever
``tf.random.set_seed`` says; ``enable_op_determinism`` refuses the call outright). The draws were therefore
different on every run. ``reference.box_sampler.pinned`` pins the op seed from outside big_vision: while big_vision's
pp function is traced, ``tf.image.sample_distorted_bounding_box`` is the same TF op called with a fixed
non-zero seed, so the same kernel draws from the same distribution, reproducibly.
"""
from __future__ import annotations

import json

import numpy as np

from reference import box_sampler
from reference.pp import preprocess_fn


def _boxes_from_train_op(bv, jpeg: bytes, n: int, seed: int) -> np.ndarray:
    import tensorflow as tf
    real = tf.image.decode_and_crop_jpeg

    def window_as_image(contents, crop_window, channels=0, **kw):  # stands in for the JPEG decoder
        return tf.reshape(tf.cast(crop_window, tf.int32), [1, 1, 4])

    tf.random.set_seed(seed)
    tf.image.decode_and_crop_jpeg = window_as_image
    try:
        with box_sampler.pinned(seed):   # the map function is traced (and the op seed fixed) in here
            fn = preprocess_fn(bv, "decode_jpeg_and_inception_crop")
            ds = tf.data.Dataset.from_tensors({"image": tf.constant(jpeg)}).repeat(n).map(fn)
            ds = ds.map(lambda d: tf.reshape(d["image"], [4])).batch(n)
        out = next(iter(ds)).numpy()
    finally:
        tf.image.decode_and_crop_jpeg = real
    return out  # rows: (offset_y, offset_x, height, width)


def _boxes_from_crop_op(bv, height: int, width: int, n: int, seed: int) -> np.ndarray:
    import tensorflow as tf
    yy, xx = np.mgrid[0:height, 0:width].astype(np.int32)
    coords = np.stack([yy, xx, np.zeros_like(yy)], axis=-1)
    tf.random.set_seed(seed)
    with box_sampler.pinned(seed):
        fn = preprocess_fn(bv, "inception_crop")
        ds = tf.data.Dataset.from_tensors({"image": tf.constant(coords)}).repeat(n).map(fn)
    ds = ds.map(lambda d: tf.stack([d["image"][0, 0, 0], d["image"][0, 0, 1],
                                    tf.shape(d["image"])[0], tf.shape(d["image"])[1]])).batch(n)
    return next(iter(ds)).numpy()


def generate(name, request, bv):
    spec = json.loads(str(request["spec"][()]))
    h, w = spec["height"], spec["width"]
    jpeg = request["jpeg"].tobytes()
    train = _boxes_from_train_op(bv, jpeg, spec["n_train"], spec["seed"])
    crop = _boxes_from_crop_op(bv, h, w, spec["n_crop"], spec["seed"] + 1)
    for boxes in (train, crop):
        if not ((boxes[:, 0] + boxes[:, 2] <= h).all() and (boxes[:, 1] + boxes[:, 3] <= w).all()):
            raise RuntimeError(f"inception_crop/{name}: TF returned a box outside the {h}x{w} image")
    dtype = np.int16 if max(h, w) < 2 ** 15 else np.int32
    return {"boxes_train": train.astype(dtype), "boxes_crop": crop.astype(dtype)}

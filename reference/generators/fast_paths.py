"""Fixtures for `fast_paths`: the deterministic half of big_vision's training input op, on real JPEGs.

big_vision's ``decode_jpeg_and_inception_crop(224)`` samples a window with
``sample_distorted_bounding_box``, decodes only that window with ``tf.image.decode_and_crop_jpeg`` (default
DCT method) and resizes it with its ``resize`` op (bilinear, antialias=False). The sampling is checked by
the inception_crop family; here the window is given, and everything after it runs as training runs it,
inside tf.data.

Request: ``jpeg`` (bytes as uint8), ``spec`` = {"windows": [[top, left, h, w], ...],
"resize": [[top, left, h, w, out_h, out_w], ...]}.
Outputs: ``dac_<i>`` decode_and_crop_jpeg(window i); ``full_<i>`` decode_jpeg (default) then the same
slice; ``resized_<j>`` big_vision's resize((out_h, out_w)) of decode_and_crop_jpeg(window j).
"""
from __future__ import annotations

import json

import numpy as np


def _in_tf_data(fn, *args):
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensors(tuple(tf.constant(a) for a in args)).map(fn)
    return next(iter(ds)).numpy()


def generate(name, request, bv):
    import tensorflow as tf
    spec = json.loads(str(request["spec"][()]))
    data = np.asarray(request["jpeg"], np.uint8).tobytes()
    ops_image = bv.module("pp.ops_image")
    out = {}

    def dac(jpeg, window):
        return tf.image.decode_and_crop_jpeg(jpeg, window, channels=3)

    def full(jpeg, window):
        img = tf.image.decode_jpeg(jpeg, channels=3)
        return tf.slice(img, [window[0], window[1], 0], [window[2], window[3], 3])

    for i, win in enumerate(spec["windows"]):
        w = np.asarray(win, np.int32)
        out[f"dac_{i}"] = _in_tf_data(dac, data, w)
        out[f"full_{i}"] = _in_tf_data(full, data, w)
    for j, job in enumerate(spec["resize"]):
        w = np.asarray(job[:4], np.int32)
        resize = ops_image.get_resize((int(job[4]), int(job[5])))

        def dac_resize(jpeg, window, resize=resize):
            return resize({"image": dac(jpeg, window)})["image"]
        out[f"resized_{j}"] = _in_tf_data(dac_resize, data, w)
    return out

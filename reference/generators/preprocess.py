"""Fixtures for the `preprocess` family: big_vision pp strings applied to recorded inputs in tf.data.

Two kinds of request:
- ``image`` (H, W, 3) uint8 + ``pipelines`` {key: pp string}: each output is stored as ``out_<key>``.
- ``jpeg`` (the file's bytes as uint8) + ``jpeg_pipelines`` {key: pp string} + optional ``box``
  (top, left, h, w) + ``summarise`` (store row/column sums and a strided sample instead of the pixels, for
  big photos). With a ``box``, TF's random box sampler is replaced by one that returns that box, so
  big_vision's own ``decode_jpeg_and_inception_crop`` / ``inception_crop`` code runs on a known crop.
  ``boxes`` [[top, left, h, w], ...] + ``box_pipelines`` {key: pp string}: each pipeline runs once per
  forced box (the first ``box_limit[key]`` boxes only, if given), stored as ``out_<key>__w<i>`` (many crop
  windows of one file in one fixture). With
  ``record_errors``, a box on which TF's op fails (e.g. a truncated file) is stored as
  ``error_<key>__w<i>`` = 1 instead: the accept/reject verdict is part of the behaviour to match.
"""
from __future__ import annotations

import contextlib
import json

import numpy as np

from reference.pp import run_pp

STRIDE = 11  # the parity side's SUMMARY_STRIDE


@contextlib.contextmanager
def fixed_box(box):
    """Make tf.image.sample_distorted_bounding_box return ``box`` (top, left, h, w) while active."""
    import tensorflow as tf
    if box is None:
        yield
        return
    real = tf.image.sample_distorted_bounding_box
    top, left, h, w = (int(v) for v in box)

    def sampler(image_size, bounding_boxes, *args, **kwargs):
        begin = tf.constant([top, left, 0], tf.int32)
        size = tf.constant([h, w, -1], tf.int32)
        return begin, size, tf.zeros([1, 1, 4], tf.float32)

    tf.image.sample_distorted_bounding_box = sampler
    try:
        yield
    finally:
        tf.image.sample_distorted_bounding_box = real


def summarise(image: np.ndarray) -> dict[str, np.ndarray]:
    x = image.astype(np.int64)
    return {"rowsum": x.sum(axis=1), "colsum": x.sum(axis=0), "strided": image[::STRIDE, ::STRIDE],
            "shape": np.array(image.shape, np.int64)}


def generate(name, request, bv):
    import tensorflow as tf  # the reference imports TF lazily (the module imports without it)
    spec = json.loads(str(request["spec"][()]))
    out = {}
    for key, pp in spec.get("pipelines", {}).items():
        out[f"out_{key}"] = run_pp(bv, pp, {"image": request["image"]})["image"]
    if "jpeg" in request:
        data = request["jpeg"].tobytes()
        for key, pp in spec.get("jpeg_pipelines", {}).items():
            with fixed_box(spec.get("box")):
                img = run_pp(bv, pp, {"image": data})["image"]
            if key in spec.get("summarise", []):
                out.update({f"out_{key}__{k}": v for k, v in summarise(img).items()})
            else:
                out[f"out_{key}"] = img
        limit = spec.get("box_limit", {})
        for i, box in enumerate(spec.get("boxes", [])):
            for key, pp in spec.get("box_pipelines", {}).items():
                if i >= limit.get(key, len(spec["boxes"])):
                    continue
                with fixed_box(box):
                    try:
                        out[f"out_{key}__w{i}"] = run_pp(bv, pp, {"image": data})["image"]
                    except tf.errors.InvalidArgumentError:  # "jpeg::Uncompress failed": TF's verdict on the window
                        if not spec.get("record_errors"):
                            raise
                        out[f"error_{key}__w{i}"] = np.array(1, np.int8)
    return out

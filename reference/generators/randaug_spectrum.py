"""Fixtures for `randaug_spectrum`: pixel-value statistics of big_vision's RandAugment over many draws.

big_vision's ViT recipe runs `randaug(2, 10)` (the pp op registered by ``pp/archive/randaug.py``, which
calls ``autoaugment.distort_image_with_randaugment``) inside a tf.data map. We run exactly that pp op the
same way, ``n`` times on one calibration image, and record statistics instead of images:

  hist          (n, 256) uint16   per-draw histogram of channel 0 (each draw's sorted-pixel spectrum is
                                  its inverse CDF, so this is the complete per-draw grey-level statistic)
  hist_rgb      (3, 256) int64    histogram of every output value per channel, pooled over the n draws
  colour_count  (n,) int32        per draw, the number of pixels with R != G or G != B
"""
from __future__ import annotations

import json

import numpy as np

from reference.pp import preprocess_fn

# The randaug pp op lives in big_vision's archive package (big_vision's configs add 'archive.randaug' to
# config.pp_modules "to continue using the near-defunct randaug op").
_RANDAUG_MODULE = "pp.archive.randaug"
_BATCH = 64


def _batch_histograms(images: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, 256) counts of channel 0, one histogram per image."""
    b = images.shape[0]
    grey = images[..., 0].reshape(b, -1).astype(np.int64)
    offsets = (np.arange(b, dtype=np.int64) * 256)[:, None]
    return np.bincount((grey + offsets).ravel(), minlength=256 * b).reshape(b, 256)


def randaug_statistics(bv, image: np.ndarray, *, num_layers: int, magnitude: int, n: int, seed: int) -> dict:
    import tensorflow as tf
    bv.module(_RANDAUG_MODULE)  # registers preprocess_ops.randaug
    pp = f"randaug({num_layers}, {magnitude})"
    fn = preprocess_fn(bv, pp)
    tf.random.set_seed(seed)
    # Sequential map (no parallel calls) so a given seed reproduces the same draws; the distribution of
    # each draw is what training's parallel map produces.
    ds = tf.data.Dataset.from_tensors({"image": tf.constant(image)}).repeat(n).map(fn).batch(_BATCH)
    hists, colour, pooled = [], [], np.zeros((3, 256), np.int64)
    for batch in ds:
        x = batch["image"].numpy()
        if x.dtype != np.uint8 or x.shape[1:] != image.shape:
            raise RuntimeError(f"{pp} returned {x.dtype} {x.shape[1:]}, expected uint8 {image.shape}")
        hists.append(_batch_histograms(x))
        colour.append(((x[..., 0] != x[..., 1]) | (x[..., 1] != x[..., 2])).reshape(len(x), -1).sum(1))
        for c in range(3):
            pooled[c] += np.bincount(x[..., c].ravel(), minlength=256)
    hist = np.concatenate(hists)
    if hist.shape[0] != n:
        raise RuntimeError(f"{pp}: got {hist.shape[0]} draws, expected {n}")
    return {"hist": hist.astype(np.uint16), "hist_rgb": pooled,
            "colour_count": np.concatenate(colour).astype(np.int32)}


def generate(name, request, bv):
    spec = json.loads(str(request["spec"][()]))
    image = request["image"]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.shape[0] * image.shape[1] > 65535:
        raise ValueError(f"{name}: 'image' must be uint8 (H, W, 3) with H*W <= 65535 (uint16 histograms), "
                         f"got {image.dtype} {image.shape}")
    return randaug_statistics(bv, image, num_layers=int(spec["num_layers"]), magnitude=int(spec["magnitude"]),
                              n=int(spec["n"]), seed=int(spec["seed"]))

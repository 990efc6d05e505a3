"""Inception-style random crop as big_vision samples it: ``tf.image.sample_distorted_bounding_box``.

big_vision's ``inception_crop`` and ``decode_jpeg_and_inception_crop`` call TF's sampler with no object
boxes (``use_image_if_no_bounding_boxes=True``, ``min_object_covered=0``), ``area_range=(area_min/100,
area_max/100)`` (5%..100%), ``aspect_ratio_range=(0.75, 1.33)`` (TF's default; note 1.33, not 4/3) and
TF's default ``max_attempts=100``. TF's algorithm (``GenerateRandomCrop`` in the TF kernel), which we
re-implement here with a ``torch.Generator`` (same distribution, not the same random stream):

1. aspect ratio ``r ~ U[lo, hi)`` (float32);
2. ``h_min = round(sqrt(min_area / r))``, ``h_max = round(sqrt(max_area / r))`` (float32, round half to
   even); ``h_max`` is lowered until ``round(h_max * r) <= W``, then capped at ``H``;
3. the height is drawn *uniformly as an integer* in ``[min(h_min, h_max), h_max]`` -- so the crop's
   area fraction A has density ~ 1/sqrt(A), unlike torchvision's RandomResizedCrop, which draws the area
   uniformly (and then the side lengths);
4. ``w = round(h * r)``; if the area is below the minimum the height is raised by one, if above the
   maximum lowered by one; the attempt fails if the box still breaks a constraint or does not fit;
5. offsets ``top ~ U{0, .., H - h - 1}`` and ``left ~ U{0, .., W - w - 1}`` (TF draws ``Uniform(H - h)``,
   which excludes ``H - h``: a box never touches the bottom/right edge unless it spans the whole side);
6. after ``max_attempts`` failed attempts the whole image is returned. For ordinary photos this almost
   never happens (capping ``h_max`` makes nearly every attempt succeed); it does for very elongated or
   tiny images, e.g. 100x2660 falls back in ~40% of calls and 10x400 always.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from torch_impl.pp.resize import _pair, resize


BIG_VISION_ASPECT_RATIO_RANGE = (0.75, 1.33)  # TF's default, which big_vision passes on (ratio_max=1.33)


TF_MAX_ATTEMPTS = 100


def _lrintf(x: np.ndarray) -> np.ndarray:
    """C's lrintf in the default rounding mode: round half to even (np.rint does the same)."""
    return np.rint(x).astype(np.int64)


def _uniform_int(n: np.ndarray, generator) -> np.ndarray:
    """Uniform integers in [0, n) for an array of n >= 1 (TF: SimplePhilox::Uniform(n)), drawn from the
    torch generator (float64 draws: the bias is below 2**-40 for any image size)."""
    u = torch.rand(n.shape, dtype=torch.float64, generator=generator).numpy()
    return np.minimum(np.floor(u * n).astype(np.int64), n - 1)


def _check_ranges(height, width, area_range, aspect_ratio_range, max_attempts):
    if int(height) <= 0 or int(width) <= 0:
        raise ValueError(f"inception crop: image size must be positive, got {height}x{width}")
    a0, a1 = (float(v) for v in area_range)
    if not (0 < a0 <= 1 and 0 < a1 <= 1):
        raise ValueError(f"inception crop: area_range must lie in (0, 1], got {tuple(area_range)} "
                         "(big_vision's area_min/area_max are percents: divide by 100)")
    r0, r1 = (float(v) for v in aspect_ratio_range)
    if not (r0 > 0 and r1 > 0):
        raise ValueError(f"inception crop: aspect_ratio_range must be positive, got {tuple(aspect_ratio_range)}")
    if int(max_attempts) <= 0:
        raise ValueError(f"inception crop: max_attempts must be positive, got {max_attempts}")


def _tf_constants(H: int, W: int, area_range, aspect_ratio_range):
    """The float32 constants both samplers draw against, in TF's arithmetic: (min_rel, max_rel, r_lo, r_hi,
    min_area, max_area, eps). Areas are float32 products in TF's order, relative_area * width * height;
    TF's kEps is a float constant used in double arithmetic."""
    f32 = np.float32
    min_rel, max_rel = f32(area_range[0]), f32(area_range[1])
    r_lo, r_hi = f32(aspect_ratio_range[0]), f32(aspect_ratio_range[1])
    return (min_rel, max_rel, r_lo, r_hi, min_rel * f32(W) * f32(H), max_rel * f32(W) * f32(H),
            float(f32(1e-7)))


def sample_inception_boxes(height: int, width: int, n: int, *, area_range: Sequence[float] = (0.05, 1.0),
                           aspect_ratio_range: Sequence[float] = BIG_VISION_ASPECT_RATIO_RANGE,
                           max_attempts: int = TF_MAX_ATTEMPTS,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` independent boxes as an int64 tensor (n, 4) of (top, left, h, w); see the module docstring."""
    _check_ranges(height, width, area_range, aspect_ratio_range, max_attempts)
    H, W = int(height), int(width)
    f32 = np.float32
    min_rel, max_rel, r_lo, r_hi, min_area, max_area, eps = _tf_constants(H, W, area_range, aspect_ratio_range)

    boxes = np.tile(np.array([0, 0, H, W], np.int64), (n, 1))  # the fallback: the whole image
    pending = np.arange(n)
    if min_rel > max_rel:  # TF: GenerateRandomCrop always fails -> whole image
        return torch.from_numpy(boxes)
    # The arithmetic runs in numpy float32 (IEEE, like TF's C++ floats); the randomness comes from the
    # torch generator. Each pass is one attempt for every box still pending.
    for _ in range(int(max_attempts)):
        if pending.size == 0:
            break
        m = pending.size
        u = torch.rand(m, dtype=torch.float32, generator=generator).numpy()
        ratio = u * (r_hi - r_lo) + r_lo
        h = _lrintf(np.sqrt(min_area / ratio))
        h_max = _lrintf(np.sqrt(max_area / ratio))
        too_wide = _lrintf(h_max.astype(f32) * ratio) > W
        if too_wide.any():
            alt = ((W + 0.5 - eps) / ratio.astype(np.float64)).astype(np.int64)  # static_cast<int> truncates
            alt = np.where(_lrintf(alt.astype(f32) * ratio) > W, alt - 1, alt)
            h_max = np.where(too_wide, alt, h_max)
        h_max = np.minimum(h_max, H)
        h = np.minimum(h, h_max)
        grow = h < h_max
        if grow.any():
            h = np.where(grow, h + _uniform_int(np.maximum(h_max - h + 1, 1), generator), h)
        w = _lrintf(h.astype(f32) * ratio)
        area = (w * h).astype(f32)
        low = area < min_area
        h = np.where(low, h + 1, h)
        w = np.where(low, _lrintf(h.astype(f32) * ratio), w)
        area = (w * h).astype(f32)
        high = area > max_area
        h = np.where(high, h - 1, h)
        w = np.where(high, _lrintf(h.astype(f32) * ratio), w)
        area = (w * h).astype(f32)
        ok = (area >= min_area) & (area <= max_area) & (w <= W) & (h <= H) & (w > 0) & (h > 0)
        # TF draws Uniform(H - h) (values 0 .. H - h - 1) when h < H, else 0; the same for the left offset.
        top = np.where(h < H, _uniform_int(np.maximum(H - h, 1), generator), 0)
        left = np.where(w < W, _uniform_int(np.maximum(W - w, 1), generator), 0)
        boxes[pending[ok]] = np.stack([top, left, h, w], axis=1)[ok]
        pending = pending[~ok]
    return torch.from_numpy(boxes)


def sample_inception_box(height: int, width: int, *, area_range: Sequence[float] = (0.05, 1.0),
                         aspect_ratio_range: Sequence[float] = BIG_VISION_ASPECT_RATIO_RANGE,
                         max_attempts: int = TF_MAX_ATTEMPTS,
                         generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
    """One crop box ``(top, left, h, w)`` distributed like big_vision's inception crop on an H x W image."""
    b = sample_inception_boxes(height, width, 1, area_range=area_range, aspect_ratio_range=aspect_ratio_range,
                               max_attempts=max_attempts, generator=generator)[0]
    return int(b[0]), int(b[1]), int(b[2]), int(b[3])


# ---- the inception crop box for one image, without array overhead ------------------------------------------
def _uniform_int1(n: int, generator) -> int:
    # inception_crop._uniform_int for one n: a float64 draw, floor(u * n) capped at n - 1.
    u = float(torch.rand((1,), dtype=torch.float64, generator=generator)[0])
    return min(int(np.floor(u * n)), n - 1)


def sample_inception_box1(height: int, width: int, area_range=(0.05, 1.0), aspect_ratio_range=(0.75, 1.33),
                          max_attempts: int = 100, generator=None) -> tuple[int, int, int, int]:
    """``inception_crop.sample_inception_box`` (n=1): the same float32 arithmetic on numpy scalars and the
    same draws from ``generator`` in the same order, so the same box; ~5x less overhead than the array
    version for a single box. Arguments are assumed checked (FastTrainPipeline checks them once)."""
    H, W = int(height), int(width)
    f32 = np.float32
    min_rel, max_rel, r_lo, r_hi, min_area, max_area, eps = _tf_constants(H, W, area_range, aspect_ratio_range)
    if min_rel > max_rel:
        return 0, 0, H, W
    for _ in range(int(max_attempts)):
        u = torch.rand((1,), dtype=torch.float32, generator=generator).numpy()[0]
        ratio = u * (r_hi - r_lo) + r_lo
        h = int(np.rint(np.sqrt(min_area / ratio)))
        h_max = int(np.rint(np.sqrt(max_area / ratio)))
        if int(np.rint(f32(h_max) * ratio)) > W:
            alt = int((W + 0.5 - eps) / float(ratio))       # static_cast<int> truncates (positive values)
            if int(np.rint(f32(alt) * ratio)) > W:
                alt -= 1
            h_max = alt
        h_max = min(h_max, H)
        h = min(h, h_max)
        # This attempt's float64 draws in one call: [the height draw when h < h_max], top, left -- the values
        # and the generator state of that many single draws in that order (torch's CPU generator fills a
        # tensor element by element; tested against the array sampler, generator states compared).
        draw_h = h < h_max
        us = torch.rand((3 if draw_h else 2,), dtype=torch.float64, generator=generator).tolist()
        if draw_h:
            n = max(h_max - h + 1, 1)
            h = h + min(int(np.floor(us[0] * n)), n - 1)
        w = int(np.rint(f32(h) * ratio))
        if f32(w * h) < min_area:
            h += 1
            w = int(np.rint(f32(h) * ratio))
        if f32(w * h) > max_area:
            h -= 1
            w = int(np.rint(f32(h) * ratio))
        area = f32(w * h)
        ok = min_area <= area <= max_area and 0 < w <= W and 0 < h <= H
        # Both offsets are drawn on every attempt (as the array version does), then 0 where the box spans
        # the whole side (_uniform_int1: floor(u * n) capped at n - 1).
        u_top, u_left = us[-2], us[-1]
        n = max(H - h, 1)
        top = min(int(np.floor(u_top * n)), n - 1) if h < H else 0
        n = max(W - w, 1)
        left = min(int(np.floor(u_left * n)), n - 1) if w < W else 0
        if ok:
            return top, left, h, w
    return 0, 0, H, W


def crop_and_resize(image: torch.Tensor, box: Sequence[int], size: int | Sequence[int] | None, *,
                    method: str = "bilinear", antialias: bool = False) -> torch.Tensor:
    """``tf.slice`` by the box, then big_vision's ``resize(size, method, antialias)`` (uint8 in, uint8 out)."""
    top, left, h, w = (int(v) for v in box)
    H, W = image.shape[-2:]
    if top < 0 or left < 0 or h <= 0 or w <= 0 or top + h > H or left + w > W:
        raise ValueError(f"crop box (top={top}, left={left}, h={h}, w={w}) does not fit the {H}x{W} image")
    crop = image[..., top:top + h, left:left + w]
    if size is None:
        return crop
    return resize(crop, size, method=method, antialias=antialias)


def inception_crop(image: torch.Tensor, size: int | Sequence[int] | None = None, *, area_range=(0.05, 1.0),
                   aspect_ratio_range=BIG_VISION_ASPECT_RATIO_RANGE, method: str = "bilinear",
                   antialias: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """big_vision ``inception_crop(size, area_min, area_max, method, antialias)`` on a (..., 3, H, W) tensor."""
    H, W = image.shape[-2:]
    box = sample_inception_box(H, W, area_range=area_range, aspect_ratio_range=aspect_ratio_range,
                               generator=generator)
    return crop_and_resize(image, box, size, method=method, antialias=antialias)


def central_crop(image: torch.Tensor, size: int | Sequence[int] | None = None) -> torch.Tensor:
    """big_vision ``central_crop(size)``: offsets are ``(H - h) // 2`` and ``(W - w) // 2`` (floor).

    torchvision's ``center_crop`` rounds the offset instead (``int(round((H - h) / 2))``), which moves the
    crop by one pixel whenever H - h is odd. Without ``size`` the largest central square is taken.
    """
    H, W = image.shape[-2:]
    if size is None:
        h = w = min(H, W)
    else:
        h, w = _pair(size)
    if h > H or w > W:
        raise ValueError(f"central_crop: crop {h}x{w} is larger than the image {H}x{W}")
    dy, dx = (H - h) // 2, (W - w) // 2
    return image[..., dy:dy + h, dx:dx + w]


__all__ = ["sample_inception_box", "sample_inception_boxes", "sample_inception_box1", "crop_and_resize",
           "inception_crop", "central_crop", "BIG_VISION_ASPECT_RATIO_RANGE", "TF_MAX_ATTEMPTS"]

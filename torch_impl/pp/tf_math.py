"""TensorFlow's float32 arithmetic as big_vision's pp ops run it, on torch tensors (leaf module).

Every helper evaluates in float32, one rounding per operation, in the order TF's kernels use, so uint8
results are bit-identical to big_vision's, not merely close: ``value_range``, ``rgb_to_grayscale``,
big_vision's ``blend`` (randaug's colour ops), ``std::round`` (ties away from zero) and TF's truncating
float -> uint8 cast.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

_F32 = torch.float32


# ---- arithmetic helpers that follow TF's float32 rounding --------------------------------------------
def _f32(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=_F32)


def _to_uint8_trunc(x: torch.Tensor) -> torch.Tensor:
    # tf.cast(float -> uint8) truncates toward zero; callers keep x in [0, 255].
    return x.to(torch.uint8)


def blend(image1: torch.Tensor, image2: torch.Tensor, factor) -> torch.Tensor:
    """big_vision's blend: ``image1 + factor * (image2 - image1)`` in float32, truncated to uint8, clipped to
    [0, 255] (which changes nothing unless extrapolating: for 0 < factor < 1 the float32 result lies between
    the two integer inputs). ``factor``: a Python float, or a float32 tensor broadcasting against the images
    (one factor per image of a batch). A float factor of 0 / 1 returns an input unchanged."""
    if not isinstance(factor, torch.Tensor):
        if factor == 0.0:
            return image1.clone()
        if factor == 1.0:
            return image2.clone()
        factor = _f32(factor)
    a, b = image1.to(_F32), image2.to(_F32)
    return _to_uint8_trunc((a + factor * (b - a)).clamp(0.0, 255.0))


_blend = blend   # the name parity/families/randaug_ops.py uses


def rgb_to_grayscale(image: torch.Tensor) -> torch.Tensor:
    """tf.image.rgb_to_grayscale on uint8, bit-exact: x * float32(1/255), weights (0.2989, 0.5870, 0.1140)
    summed as (r + g) + b in float32, then scaled by 255.5 and truncated. Returns (..., 1, H, W) uint8.
    (torchvision's rgb_to_grayscale uses 0.2989/0.587/0.114 on integers and rounds differently.)"""
    f = image.to(_F32) * _f32(1.0 / 255.0)
    r, g, b = f[..., 0:1, :, :], f[..., 1:2, :, :], f[..., 2:3, :, :]
    grey = (r * _f32(0.2989) + g * _f32(0.5870)) + b * _f32(0.1140)
    return _to_uint8_trunc(grey * _f32(255.5))


# ---- geometry: tfa/ImageProjectiveTransformV3 semantics --------------------------------------------
def _round_half_away(x: torch.Tensor) -> torch.Tensor:
    # std::round (TF's nearest interpolation): ties away from zero. torch.round would round ties to even.
    t = torch.trunc(x)
    return t + torch.sign(x) * ((x - t).abs() >= 0.5).to(x.dtype)


def value_range(image: torch.Tensor, vmin: float = -1.0, vmax: float = 1.0,
                in_min: float | Sequence[float] = 0.0, in_max: float | Sequence[float] = 255.0, clip_values: bool = False) -> torch.Tensor:
    """big_vision ``value_range(vmin, vmax)``: float32 ``vmin + (x - in_min) / (in_max - in_min) * (vmax - vmin)``,
    evaluated in that order in float32 as TF does (so results match to the last bit)."""
    x = image.to(torch.float32)
    # Per-channel ranges broadcast over the channel axis, which is the last axis in TF and -3 here.
    lo = torch.tensor(in_min, dtype=torch.float32)
    hi = torch.tensor(in_max, dtype=torch.float32)
    if lo.ndim:
        lo = lo.view(-1, 1, 1)
    if hi.ndim:
        hi = hi.view(-1, 1, 1)
    x = (x - lo) / (hi - lo)
    x = vmin + x * (vmax - vmin)
    if clip_values:
        x = x.clamp(vmin, vmax)
    return x


__all__ = ["value_range", "rgb_to_grayscale", "blend"]

"""Pixel geometry with TF's semantics (leaf module): nearest-neighbour projective sampling as
``ImageProjectiveTransformV3`` computes it (the randaug geometric ops) and big_vision's ``flip_lr``."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from torch_impl.pp.tf_math import _F32, _round_half_away


def _projective_nearest(image: torch.Tensor, matrix: Sequence[torch.Tensor], replace: tuple[int, int, int]):
    """Output pixel (x, y) takes the input at round((a0 x + a1 y) + a2, (b0 x + b1 y) + b2) (float32, in the
    order TF's kernel evaluates it); outside the image it gets ``replace`` (big_vision's wrap/unwrap turns
    TF's fill of 0 into 128)."""
    a0, a1, a2, b0, b1, b2 = (m.to(_F32) for m in matrix)
    h, w = image.shape[-2:]
    ys = torch.arange(h, dtype=_F32)[:, None]
    xs = torch.arange(w, dtype=_F32)[None, :]
    ix = _round_half_away((a0 * xs + a1 * ys) + a2)
    iy = _round_half_away((b0 * xs + b1 * ys) + b2)
    inside = (ix >= 0) & (ix <= w - 1) & (iy >= 0) & (iy <= h - 1)
    idx = (iy.clamp(0, h - 1).to(torch.int64) * w + ix.clamp(0, w - 1).to(torch.int64)).reshape(-1)
    flat = image.reshape(*image.shape[:-2], h * w)
    out = flat.index_select(-1, idx).reshape(image.shape)
    fill = torch.tensor(replace, dtype=torch.uint8).reshape(3, 1, 1)
    return torch.where(inside, out, fill)


def projective_tables(h: int, w: int, a0, a1, a2, b0, b1, b2, device=None):
    """Source index (n, h, w) into the flattened image and the inside mask for nearest-neighbour projective
    sampling: output (x, y) reads round((a0 x + a1 y) + a2, (b0 x + b1 y) + b2), ties away from zero, in
    float32 in TF's order. Coefficients: float32 tensors of shape (n, 1, 1)."""
    ys = torch.arange(h, dtype=_F32, device=device).view(1, h, 1)
    xs = torch.arange(w, dtype=_F32, device=device).view(1, 1, w)
    ix = _round_half_away((a0 * xs + a1 * ys) + a2)
    iy = _round_half_away((b0 * xs + b1 * ys) + b2)
    inside = (ix >= 0) & (ix <= w - 1) & (iy >= 0) & (iy <= h - 1)
    idx = iy.clamp(0, h - 1).to(torch.int64) * w + ix.clamp(0, w - 1).to(torch.int64)   # (n, h, w)
    return idx, inside


def flip_lr(image: torch.Tensor, *, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """big_vision ``flip_lr``: mirror left-right with probability ``p`` (tf.image.random_flip_left_right)."""
    if float(torch.rand((), generator=generator)) < p:
        return image.flip(-1)
    return image


__all__ = ["projective_tables", "flip_lr"]

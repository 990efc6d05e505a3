"""Pixel geometry with TF's semantics (leaf module): nearest-neighbour projective sampling as
``ImageProjectiveTransformV3`` computes it (the randaug geometric ops) and big_vision's ``flip_lr``."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from torch_impl.pp.tf_math import _F32, _round_half_away


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


def sample_projective(image: torch.Tensor, coeffs, fill: Sequence[int]) -> torch.Tensor:
    """Nearest-neighbour projective sampling (tfa's ``transform``, ``ImageProjectiveTransformV3``): output pixel
    (x, y) takes the input at round((a0 x + a1 y) + a2, (b0 x + b1 y) + b2) (float32, in the order TF's
    kernel evaluates it; ties away from zero); outside the image it gets ``fill`` (one value per channel:
    big_vision's wrap/unwrap turns TF's fill of 0 into its replace value, 128).

    ``coeffs``: six floats (a0, a1, a2, b0, b1, b2) shared by every image of ``image`` (3, H, W) or
    (N, 3, H, W), or an (N, 6) float32 tensor, one row per image of an (N, 3, H, W) batch."""
    h, w = image.shape[-2:]
    dev = image.device
    if isinstance(coeffs, torch.Tensor):
        c = coeffs.to(device=dev, dtype=_F32)
        idx, inside = projective_tables(h, w, *(c[:, i].view(-1, 1, 1) for i in range(6)), device=dev)
        n, ch = image.shape[0], image.shape[1]
        out = torch.gather(image.reshape(n, ch, h * w), 2, idx.reshape(n, 1, h * w).expand(n, ch, h * w))
        out, inside = out.reshape(image.shape), inside.unsqueeze(1)
    else:
        idx, inside = projective_tables(h, w, *(torch.tensor(float(v), dtype=_F32).view(1, 1, 1) for v in coeffs),
                                        device=dev)
        out = image.reshape(*image.shape[:-2], h * w).index_select(-1, idx.reshape(-1)).reshape(image.shape)
        inside = inside[0]
    return torch.where(inside, out, torch.tensor(tuple(fill), dtype=torch.uint8, device=dev).view(3, 1, 1))


def flip_lr(image: torch.Tensor, *, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """big_vision ``flip_lr``: mirror left-right with probability ``p`` (tf.image.random_flip_left_right)."""
    if float(torch.rand((), generator=generator)) < p:
        return image.flip(-1)
    return image


__all__ = ["projective_tables", "sample_projective", "flip_lr"]

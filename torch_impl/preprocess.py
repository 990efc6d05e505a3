"""big_vision's preprocessing ops on torch uint8 images of shape (3, H, W) (or batches (..., 3, H, W)).

Each function cites the big_vision op (``big_vision/pp/ops_*.py``) whose output it reproduces.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


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

"""TF's image resizing as big_vision's ``resize`` / ``resize_small`` run it, on torch tensors (leaf module).

``resize`` covers bilinear (``resize_bilinear(half_pixel_centers=True)``), bilinear with antialias
(``scale_and_translate`` with the triangle kernel) and area (``resize_area``), in float32 with TF's order of
operations. :func:`axis_table` is TF's bilinear sampling table for one axis (the fast paths gather through
it; a flip is the reversed table).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from torch_impl.pp.tf_math import _F32, _f32


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _resize_bilinear_f32(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    if tuple(x.shape[-2:]) == (out_h, out_w):
        return x.clone()  # TF's no-op resize: a plain cast
    return _bilinear(x, out_h, out_w)


def _triangle_spans(in_size: int, out_size: int, antialias: bool):
    """TF scale_and_translate spans for the triangle kernel (what tf.image.resize(bilinear, antialias=True)
    runs): starts (out,), weights (out, span) already normalised, as float32 computed like TF."""
    scale = _f32(out_size) / _f32(in_size)
    inv_scale = torch.tensor(1.0 / float(scale), dtype=_F32)  # TF: float inv_scale = 1.0 / scale (double division)
    kernel_scale = torch.maximum(inv_scale, _f32(1.0)) if antialias else _f32(1.0)
    span = min(2 * int(math.ceil(float(kernel_scale))) + 1, in_size)
    one_over_ks = _f32(1.0) / kernel_scale
    sample = (torch.arange(out_size, dtype=_F32) + 0.5) * inv_scale
    start = torch.ceil(sample - kernel_scale - 0.5).to(torch.int64).clamp(0, in_size - 1)
    end = torch.floor(sample + kernel_scale - 0.5).to(torch.int64).clamp(0, in_size - 1) + 1
    k = torch.arange(span)
    src = start[:, None] + k[None, :]
    valid = src < end[:, None]
    pos = (src.to(_F32) + 0.5 - sample[:, None]) * one_over_ks
    a = pos.abs()
    w = torch.where((a < 1.0) & valid, 1.0 - a, torch.zeros((), dtype=_F32))
    total = torch.zeros(out_size, dtype=_F32)
    for j in range(span):  # TF sums the weights in order, in float32
        total = total + w[:, j]
    inv_total = _f32(1.0) / total
    w = torch.where(total.abs()[:, None] >= 1000.0 * torch.finfo(_F32).tiny, w * inv_total[:, None], 0.0)
    return start, w, span


def _gather_axis(x: torch.Tensor, starts, weights, span: int, dim: int) -> torch.Tensor:
    """out[i] = 0 + w[i,0] * x[s_i] + w[i,1] * x[s_i + 1] + ... accumulated in order in float32 (TF's
    GatherRows/GatherColumns); taps past the image edge have weight 0 and read a clamped index."""
    n = x.shape[dim]
    out = None
    for j in range(span):
        idx = (starts + j).clamp_max(n - 1)
        w = weights[:, j]
        shape = [1] * x.ndim
        shape[dim] = -1
        term = x.index_select(dim, idx) * w.view(shape)
        out = torch.zeros_like(term) + term if out is None else out + term
    return out


def _resize_triangle_f32(x: torch.Tensor, out_h: int, out_w: int, antialias: bool) -> torch.Tensor:
    in_h, in_w = x.shape[-2:]
    rs, rw, rspan = _triangle_spans(in_h, out_h, antialias)
    cs, cw, cspan = _triangle_spans(in_w, out_w, antialias)
    inter = _gather_axis(x, rs, rw, rspan, x.ndim - 2)  # TF does rows first, then columns
    return _gather_axis(inter, cs, cw, cspan, x.ndim - 1)


def _area_axis(in_size: int, out_size: int):
    """TF resize_area's per-axis cells: output i covers [i * s, (i + 1) * s) with s = in / out (float32);
    returns start index, number of taps, and the per-tap coverage (float32, like TF's start/end scales)."""
    s = _f32(in_size) / _f32(out_size)
    i = torch.arange(out_size, dtype=_F32)
    lo = i * s
    hi = (i + 1) * s
    start = torch.floor(lo).to(torch.int64)
    end = torch.ceil(hi).to(torch.int64)
    ntaps = int((end - start).max())
    taps = start[:, None] + torch.arange(ntaps)[None, :]
    v = taps.to(_F32)
    first = v < lo[:, None]
    past_end = (v + 1) > hi[:, None]
    cover = torch.where(first, torch.where(past_end, s, (v + 1) - lo[:, None]),
                        torch.where(past_end, hi[:, None] - v, _f32(1.0)))
    return start, end, taps, cover, s


def _resize_area_f32(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    in_h, in_w = x.shape[-2:]
    ys, ye, ytaps, ycov, sy = _area_axis(in_h, out_h)
    xs, xe, xtaps, xcov, sx = _area_axis(in_w, out_w)
    zero = _f32(0.0)
    # Per input row and output column: first tap * its coverage, the inner taps summed with weight 1, then
    # the last tap * its coverage (only when the cell spans 2+ columns), in that order (TF's sum_y).
    xi = xtaps.clamp(0, in_w - 1)
    ntx = xe - xs
    row = x[..., xi[:, 0]] * xcov[:, 0]
    for j in range(1, xtaps.shape[1] - 1):
        inner = j < (ntx - 1)
        row = row + torch.where(inner, x[..., xi[:, j]], zero)
    last = (ntx - 1).clamp_min(0)
    xl = xi.gather(1, last[:, None])[:, 0]
    cl = xcov.gather(1, last[:, None])[:, 0]
    row = torch.where(ntx > 1, row + x[..., xl] * cl, row)
    # Rows: sum += sum_y * y_coverage over the cell's rows in order; then * 1 / (sy * sx).
    yi = ytaps.clamp(0, in_h - 1)
    nty = (ye - ys)[:, None]
    acc = torch.zeros(row.shape[:-2] + (out_h, out_w), dtype=_F32)
    for j in range(ytaps.shape[1]):
        use = (j < nty)
        acc = acc + torch.where(use, row[..., yi[:, j], :] * ycov[:, j, None], zero)
    inv = torch.tensor(1.0 / float(sy * sx), dtype=_F32)  # TF: float scale = 1.0 / (height_scale * width_scale)
    return acc * inv


RESIZE_METHODS = ("bilinear", "area")


def resize(image: torch.Tensor, size: int | Sequence[int], method: str = "bilinear", antialias: bool = False) -> torch.Tensor:
    """big_vision ``resize(size, method, antialias)``: ``tf.image.resize`` then clip to the dtype's range and
    cast back to the input dtype (for uint8 the cast *truncates*, it does not round).

    ``bilinear`` without antialias is TF's ``resize_bilinear(half_pixel_centers=True)``; with antialias it is
    ``scale_and_translate`` with the triangle kernel widened by the downscale factor; ``area`` is TF's exact
    area-weighted ``resize_area`` (antialias has no effect on it, as in TF). All computed in float32 with
    TF's order of operations, so uint8 outputs match TF bit for bit on CPU.
    """
    out_h, out_w = _pair(size)
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize: method {method!r} not supported; use one of {RESIZE_METHODS}")
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"resize: output size must be positive, got {out_h}x{out_w}")
    if image.shape[-3] < 1 or image.shape[-2] < 1 or image.shape[-1] < 1:
        raise ValueError(f"resize: empty image of shape {tuple(image.shape)}")
    dtype = image.dtype
    x = image.to(_F32)
    if method == "area":
        y = _resize_area_f32(x, out_h, out_w)
    elif antialias:
        y = _resize_triangle_f32(x, out_h, out_w, True)
    else:
        y = _resize_bilinear_f32(x, out_h, out_w)
    if dtype.is_floating_point:
        return y.to(dtype)
    info = torch.iinfo(dtype)
    # tf.cast(float -> int) truncates toward zero after the clip.
    return y.clamp(info.min, info.max).to(dtype)


def resize_small_size(height: int, width: int, size: int) -> tuple[int, int]:
    """big_vision ``_resize_factor``: factor = size / min(h, w) in float32; each side = round(side * factor)
    (float32, round half to even)."""
    factor = _f32(size) / _f32(min(height, width))
    h = torch.round(_f32(height) * factor).to(torch.int64)
    w = torch.round(_f32(width) * factor).to(torch.int64)
    return int(h), int(w)


def resize_small(image: torch.Tensor, size: int, *, method: str = "area", antialias: bool = False) -> torch.Tensor:
    """big_vision ``resize_small(size, method="area", antialias=False)``: shorter side -> ``size``, aspect kept
    (see :func:`resize_small_size` for the rounding of the other side)."""
    h, w = image.shape[-2:]
    return resize(image, resize_small_size(h, w, size), method=method, antialias=antialias)


# ---- bilinear resize with TF's arithmetic ----------------------------------------------------------------
@lru_cache(maxsize=4096)
def _axis_table(in_size: int, out_size: int, flip: bool = False):
    """TF ResizeBilinear (half_pixel_centers) interpolation for one axis: lower, upper indices and the
    float32 lerp weight. scale = float32(in / out); x_in = (x + 0.5) * scale - 0.5 in float32."""
    scale = np.float32(in_size) / np.float32(out_size)
    x = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    fl = np.floor(x)
    lower = np.maximum(fl, 0).astype(np.int64)
    upper = np.minimum(np.ceil(x), in_size - 1).astype(np.int64)
    lerp = (x - fl).astype(np.float32)
    if flip:
        lower, upper, lerp = lower[::-1].copy(), upper[::-1].copy(), lerp[::-1].copy()
    return torch.from_numpy(lower), torch.from_numpy(upper), torch.from_numpy(lerp)


def _bilinear(image: torch.Tensor, oh: int, ow: int, flip: bool = False) -> torch.Tensor:
    """TF's ResizeBilinear(half_pixel_centers) of (..., C, H, W) -> float32 (..., C, oh, ow) through the
    :func:`_axis_table` tables (``flip`` mirrors left-right for free): the horizontal lerp
    ``left + (right - left) * x_lerp`` of the rows the output needs, then ``top + (bottom - top) * y_lerp``,
    the same float32 expressions as TF, so bit-identical. Gathers run on the input's dtype (uint8: 4x fewer
    bytes), the arithmetic in float32."""
    h, w = image.shape[-2:]
    ly, uy, wy = _axis_table(h, oh)
    lx, ux, wx = _axis_table(w, ow, flip)
    dev = image.device
    if dev.type != "cpu":
        ly, uy, wy, lx, ux, wx = (t.to(dev) for t in (ly, uy, wy, lx, ux, wx))
    # Rows first (gather only the rows the output needs), so the float work is on (oh or h) x ow.
    if 2 * oh < h:
        src = image.index_select(-2, torch.cat([ly, uy]))
        left = src.index_select(-1, lx).to(_F32)
        right = src.index_select(-1, ux).to(_F32)
        horiz = left + (right - left) * wx
        top, bottom = horiz[..., :oh, :], horiz[..., oh:, :]
    else:
        left = image.index_select(-1, lx).to(_F32)
        right = image.index_select(-1, ux).to(_F32)
        horiz = left + (right - left) * wx
        top, bottom = horiz.index_select(-2, ly), horiz.index_select(-2, uy)
    return top + (bottom - top) * wy[:, None]


def resize_bilinear_tf(image: torch.Tensor, size: int | Sequence[int], *, flip: bool = False) -> torch.Tensor:
    """big_vision ``resize(size)`` (bilinear, antialias=False) on uint8 (..., 3, H, W): :func:`_bilinear`,
    clipped to [0, 255] and truncated to uint8 like big_vision's cast. ``flip=True`` also mirrors left-right
    (flip_lr) for free."""
    if image.dtype != torch.uint8:
        raise ValueError(f"resize_bilinear_tf expects uint8, got {image.dtype}")
    oh, ow = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    return _bilinear(image, oh, ow, flip).clamp_(0.0, 255.0).to(torch.uint8)


@lru_cache(maxsize=4096)
def _numpy_tables(h: int, w: int, oh: int, ow: int, flip: bool):
    ly, uy, wy = (t.numpy() for t in _axis_table(h, oh))
    lx, ux, wx = (t.numpy() for t in _axis_table(w, ow, flip))
    return ly, uy, np.ascontiguousarray(wy[:, None]), np.concatenate([lx, ux]), np.ascontiguousarray(wx[:, None]), \
        np.concatenate([ly, uy])


@lru_cache(maxsize=4096)
def _kernel_tables(h: int, w: int, oh: int, ow: int, flip: bool):
    return tuple(t.numpy() for t in _axis_table(h, oh) + _axis_table(w, ow, flip))


__all__ = ["resize", "resize_small", "resize_small_size", "resize_bilinear_tf", "RESIZE_METHODS"]

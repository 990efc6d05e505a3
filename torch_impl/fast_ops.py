"""numpy kernels for the per-image fast path (``torch_impl.fast_pipeline.fast_apply_op``): the same float32
operations, in the same order, as ``torch_impl.augment`` (which matches big_vision's TF arithmetic), on
uint8 (3, H, W) numpy arrays, with fewer passes over the pixels.

Why these are exact and not approximations:

* numpy evaluates each float32 ufunc in IEEE float32 (one rounding per operation, no FMA contraction across
  ufuncs), like torch's CPU kernels and TF's; every expression below keeps augment.py's operand order.
* Only rewrites that are exact by construction are used: ``0 + y == y`` and ``y - 0 == y`` (Brightness
  blends towards zeros), a product computed once and reused (Sharpness' ``x * (1/13)`` taps), and the uint8
  identities ``255 - x == x ^ 255`` (Solarize) and ``min(x + a, 255) == min(x, 255 - a) + a`` for
  ``0 <= a <= 255`` (SolarizeAdd). tests/test_fast_pipeline.py checks each against augment.apply_op on
  every uint8 value, at many levels.
* float32 -> uint8 ``astype`` truncates toward zero, like ``tf.cast``; callers keep values in [0, 255].

Where numba is installed, the costlier kernels (Brightness, Contrast, Color, AutoContrast, Sharpness,
Equalize) run as compiled single-pass loops from ``torch_impl.numba_kernels`` with the same arithmetic; the
numpy versions below are the fallback and give the same bits (tests run both).

Why numpy and not lookup tables: on one CPU core a uint8 table lookup (``np.take``) costs ~1 ns per
pixel (index widening plus a gather), while a contiguous float32 ufunc costs ~0.15 ns, so a few vectorised
float32 passes beat one gather.
"""
from __future__ import annotations

import numpy as np
import torch

from torch_impl import numba_kernels as _nk

__all__ = ["blend", "brightness", "contrast_constant", "autocontrast", "color", "sharpness", "equalize",
           "solarize", "solarize_add", "invert", "posterize", "sample_inception_box1"]

_F32 = np.float32
_ZERO, _MAX = _F32(0.0), _F32(255.0)


def _trunc_u8(x: np.ndarray, clip: bool) -> np.ndarray:
    if clip:
        np.clip(x, _ZERO, _MAX, out=x)
    return x.astype(np.uint8)


def blend(a: np.ndarray, b: np.ndarray, factor: float, a_is_float: bool = False,
          b_float: np.ndarray | None = None) -> np.ndarray:
    """augment._blend: ``a + factor * (b - a)`` in float32, clipped only when extrapolating, truncated.
    ``a`` (uint8, or float32 holding integers when ``a_is_float``) may broadcast against ``b`` (uint8);
    ``b_float``, if given, is ``b`` already converted to float32 (it is overwritten)."""
    if factor == 0.0:
        return np.broadcast_to(a, b.shape).astype(np.uint8)
    if factor == 1.0:
        return b.copy()
    af = a if a_is_float else a.astype(_F32)
    t = b.astype(_F32) if b_float is None else b_float
    t -= af                  # b - a
    t *= _F32(factor)        # factor * (b - a)
    t += af                  # a + factor * (b - a)
    return _trunc_u8(t, not 0.0 < factor < 1.0)


def brightness(x: np.ndarray, factor: float) -> np.ndarray:
    """blend(zeros, x, factor): ``0 + factor * (x - 0)`` is exactly ``factor * x`` in float32."""
    if factor == 0.0:
        return np.zeros_like(x)
    if factor == 1.0:
        return x.copy()
    if _nk.enabled():
        return _nk.brightness(x, factor)
    t = x.astype(_F32)
    t *= _F32(factor)
    return _trunc_u8(t, not 0.0 < factor < 1.0)


def contrast_constant(x: np.ndarray, degenerate: int, factor: float) -> np.ndarray:
    """blend(constant grey ``degenerate``, x, factor): big_vision's Contrast."""
    if factor == 0.0:
        return np.full_like(x, degenerate)
    if factor == 1.0:
        return x.copy()
    if _nk.enabled():
        return _nk.contrast_constant(x, degenerate, factor)
    d = _F32(degenerate)
    t = x.astype(_F32)
    t -= d
    t *= _F32(factor)
    t += d
    return _trunc_u8(t, not 0.0 < factor < 1.0)


def autocontrast(x: np.ndarray) -> np.ndarray:
    """augment._autocontrast: per channel ``x * (255 / (hi - lo)) + (-lo * scale)``, clip, truncate; a flat
    channel (hi <= lo) is returned unchanged."""
    if _nk.enabled():
        return _nk.autocontrast(x)
    flat = x.reshape(3, -1)
    lo = flat.min(axis=1).astype(_F32)
    hi = flat.max(axis=1).astype(_F32)
    is_flat = hi <= lo
    scale = _MAX / np.where(is_flat, _F32(1.0), hi - lo)
    offset = -lo * scale
    t = x.astype(_F32)
    t *= scale[:, None, None]
    t += offset[:, None, None]
    out = _trunc_u8(t, True)
    if is_flat.any():
        out[is_flat] = x[is_flat]
    return out


_GREY_K = _F32(1.0 / 255.0)
_GREY_W = (_F32(0.2989), _F32(0.5870), _F32(0.1140))
_GREY_S = _F32(255.5)


def grey_float(x: np.ndarray, xf: np.ndarray | None = None) -> np.ndarray:
    """augment.rgb_to_grayscale as float32 (1, H, W) holding the truncated integer grey values:
    ``trunc(((r*k*wr + g*k*wg) + b*k*wb) * 255.5)`` with k = float32(1/255). ``xf``: x as float32."""
    f = (x.astype(_F32) if xf is None else xf) * _GREY_K
    r = f[0] * _GREY_W[0]
    r += f[1] * _GREY_W[1]      # r*wr + g*wg
    r += f[2] * _GREY_W[2]      # (r*wr + g*wg) + b*wb
    r *= _GREY_S
    np.trunc(r, out=r)          # tf.cast(float -> uint8) truncation; values are in [0, 255]
    return r[None]


def color(x: np.ndarray, factor: float) -> np.ndarray:
    """blend(grey broadcast to 3 channels, x, factor): big_vision's Color."""
    if factor == 1.0:
        return x.copy()
    if _nk.enabled():
        return _nk.color(x, factor)
    xf = x.astype(_F32)
    return blend(grey_float(x, xf), x, factor, a_is_float=True, b_float=xf)


_K1 = _F32(1.0) / _F32(13.0)
_K5 = _F32(5.0) / _F32(13.0)


def sharpness(x: np.ndarray, factor: float) -> np.ndarray:
    """augment._sharpness: 3x3 SMOOTH kernel (1/13, centre 5/13) summed tap by tap in row-major order in
    float32 on the interior, clip, truncate; border pixels keep x; then blend(smoothed, x, factor)."""
    _, h, w = x.shape
    if factor == 1.0 or h < 3 or w < 3:
        return x.copy() if factor == 1.0 else blend(x, x, factor)
    if _nk.enabled():
        return _nk.sharpness(x, factor)
    xf = x.astype(_F32)
    p1 = xf * _K1                              # the same product for every 1/13 tap
    ih, iw = h - 2, w - 2
    acc = p1[:, 0:ih, 0:iw].copy()             # 0 + first tap
    for r in range(3):
        for c in range(3):
            if r == 0 and c == 0:
                continue
            if r == 1 and c == 1:
                acc += xf[:, 1:1 + ih, 1:1 + iw] * _K5
            else:
                acc += p1[:, r:r + ih, c:c + iw]
    # The smoothed image as float32 integers (clip + truncation of the interior, x on the border), kept in
    # float for the blend: exactly the values blend would get from converting the uint8 image.
    np.clip(acc, _ZERO, _MAX, out=acc)
    smooth = xf.copy()
    np.trunc(acc, out=smooth[:, 1:-1, 1:-1])
    if factor == 0.0:
        return smooth.astype(np.uint8)
    return blend(smooth, x, factor, a_is_float=True, b_float=xf)


def _histograms(x: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(x)
    return np.stack([torch.bincount(t[c].reshape(-1), minlength=256).numpy() for c in range(3)])


def equalize(x: np.ndarray) -> np.ndarray:
    """augment._equalize per channel (PIL's integer arithmetic), applied as one value map per channel."""
    if _nk.enabled():
        return _nk.equalize(x)
    hist = _histograms(x).astype(np.int64)                    # (3, 256)
    top = x.reshape(3, -1).max(axis=1)
    step = (hist.sum(axis=1) - hist[np.arange(3), top]) // 255
    luts = np.zeros((3, 256), np.int64)
    luts[:, 1:] = (np.cumsum(hist[:, :-1], axis=1) + (step // 2)[:, None]) // np.maximum(step, 1)[:, None]
    luts = np.clip(luts, 0, 255).astype(np.uint8)
    luts[step == 0] = np.arange(256, dtype=np.uint8)           # step 0: the channel is unchanged
    out = np.empty_like(x)
    for c in range(3):
        np.take(luts[c], x[c], out=out[c])
    return out


def invert(x: np.ndarray) -> np.ndarray:
    """255 - x, which is x ^ 255 on uint8."""
    return np.bitwise_xor(x, np.uint8(255))


def posterize(x: np.ndarray, bits: int) -> np.ndarray:
    """augment._posterize: (x >> shift) << shift on uint8 (shift = (8 - bits) mod 256, clamped to 7 as TF
    does) keeps the top 8 - shift bits: x & (0xFF << shift)."""
    shift = min((8 - int(bits)) % 256, 7)
    return np.bitwise_and(x, np.uint8((0xFF << shift) & 0xFF))


def solarize(x: np.ndarray, threshold: int) -> np.ndarray:
    """where(x < threshold % 256, x, 255 - x); 255 - x is x ^ 255 on uint8."""
    thr = int(threshold) % 256
    if thr == 0:
        return np.bitwise_xor(x, np.uint8(255))
    mask = (x >= thr).view(np.uint8)
    mask *= np.uint8(255)
    return np.bitwise_xor(x, mask, out=mask)


def solarize_add(x: np.ndarray, addition: int, threshold: int = 128) -> np.ndarray:
    """where(x < threshold, clip(x + addition, 0, 255), x) for addition >= 0."""
    a = int(addition)
    if a < 0:
        raise ValueError(f"solarize_add: addition must be >= 0, got {addition}")
    mask = (x < threshold).view(np.uint8)
    if a + threshold - 1 <= 255:
        # x + a never exceeds 255 where x < threshold: add a on the mask (a 0/1 array times a)
        mask *= np.uint8(a)
        mask += x
        return mask
    a = min(a, 255)
    added = np.minimum(x, np.uint8(255 - a))
    added += np.uint8(a)                     # min(x + a, 255) without overflow
    added -= x
    added *= mask                            # uint8 wrap-around arithmetic: x + mask * (added - x)
    added += x
    return added


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
    f32 = _F32
    min_rel, max_rel = f32(area_range[0]), f32(area_range[1])
    r_lo, r_hi = f32(aspect_ratio_range[0]), f32(aspect_ratio_range[1])
    min_area = min_rel * f32(W) * f32(H)
    max_area = max_rel * f32(W) * f32(H)
    if min_rel > max_rel:
        return 0, 0, H, W
    eps = float(f32(1e-7))
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
        if h < h_max:
            h = h + _uniform_int1(max(h_max - h + 1, 1), generator)
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
        # the whole side.
        top = _uniform_int1(max(H - h, 1), generator) if h < H else _uniform_int1(1, generator) * 0
        left = _uniform_int1(max(W - w, 1), generator) if w < W else _uniform_int1(1, generator) * 0
        if ok:
            return top, left, h, w
    return 0, 0, H, W

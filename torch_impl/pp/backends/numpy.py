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

import threading
import types
from collections.abc import Sequence
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import torch

from torch_impl.pp import randaug as A
from torch_impl.pp.backends import numba as _nk
from torch_impl.pp import tf_jpeg
from torch_impl.pp.jpeg import decode_crop_hwc, window_decode_error
from torch_impl.pp.geometry import projective_tables
from torch_impl.pp.resize import _numpy_tables


__all__ = ["blend", "brightness", "contrast_constant", "autocontrast", "color", "sharpness", "equalize",
           "solarize", "solarize_add", "invert", "posterize", "crop_resize_flip", "to_value_range",
           "fast_apply_op", "fast_randaugment"]


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


def sharpness(x: np.ndarray, factor: float, conv: str = "eigen") -> np.ndarray:
    """randaug._sharpness: 3x3 SMOOTH kernel (1/13, centre 5/13) summed tap by tap in row-major order in
    float32 on the interior, clip, truncate; border pixels keep x; then blend(smoothed, x, factor).
    ``conv="onednn"``: TF's oneDNN arithmetic (fused multiply-add per tap; float64 then one rounding, exact
    as in randaug._sharpness); the numba kernel does the default ("eigen") only."""
    _, h, w = x.shape
    if factor == 1.0 or h < 3 or w < 3:
        return x.copy() if factor == 1.0 else blend(x, x, factor)
    if conv == "onednn":
        xd = x.astype(np.float64)
        ih, iw = h - 2, w - 2
        acc = np.zeros((3, ih, iw), _F32)
        for r in range(3):
            for c in range(3):
                k = float(_K5 if (r, c) == (1, 1) else _K1)
                acc = (acc.astype(np.float64) + xd[:, r:r + ih, c:c + iw] * k).astype(_F32)
        np.clip(acc, _ZERO, _MAX, out=acc)
        smooth = x.astype(_F32)
        np.trunc(acc, out=smooth[:, 1:-1, 1:-1])
        return smooth.astype(np.uint8) if factor == 0.0 else blend(smooth, x, factor, a_is_float=True,
                                                                   b_float=x.astype(_F32))
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


def posterize(x: np.ndarray, shift: int) -> np.ndarray:
    """``randaug`` kernel ``posterize``: (x >> shift) << shift on uint8 keeps the top 8 - shift bits:
    x & (0xFF << shift) (``randaug.posterize_shift`` gives the shift)."""
    return np.bitwise_and(x, np.uint8((0xFF << int(shift)) & 0xFF))


def solarize(x: np.ndarray, threshold: int) -> np.ndarray:
    """``randaug`` kernel ``solarize``: where(x < threshold, x, 255 - x); 255 - x is x ^ 255 on uint8
    (``randaug.solarize_threshold`` gives the threshold, already wrapped to uint8)."""
    thr = int(threshold)
    if thr == 0:
        return np.bitwise_xor(x, np.uint8(255))
    mask = (x >= thr).view(np.uint8)
    mask *= np.uint8(255)
    return np.bitwise_xor(x, mask, out=mask)


def solarize_add(x: np.ndarray, addition: int) -> np.ndarray:
    """``randaug`` kernel ``solarize_add``: where(x < 128, clip(x + addition, 0, 255), x) for addition >= 0."""
    threshold = A.SOLARIZE_ADD_THRESHOLD
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


def resize_backend() -> str:
    """Which kernel the fast path resizes with here: "C (AVX2)" / "C (scalar)" (torch_impl.pp.tf_jpeg, fused
    after the decode), "numba", or "numpy" (all give the same bits; recorded in a run's metadata)."""
    if tf_jpeg.c_resize_enabled():
        from torch_impl.pp import _tf_jpeg
        return "C (AVX2)" if _tf_jpeg._set_resize_options(-1, -1)[0] else "C (scalar)"
    return "numba" if _nk.enabled() else "numpy"


@contextmanager
def forced_resize_backend(name: str | None):
    """Run the fast path with one resize backend: "c" (the C resize fused after the decode; numba stays on for
    the RandAugment kernels where installed), "numba" or "numpy" (the fallback); None leaves the default. The
    previous settings come back on exit. Benchmarks and the parity checks run each backend a user can train with."""
    if name is None:
        yield
        return
    if name not in ("c", "numba", "numpy"):
        raise ValueError(f"resize backend must be 'c', 'numba' or 'numpy', got {name!r}")
    prev_c = tf_jpeg.set_c_resize(name == "c")       # ("c" without the extension raises ImportError)
    prev_nk = _nk.set_enabled(name == "numba" or (name == "c" and _nk.available()))
    try:
        yield
    finally:
        _nk.set_enabled(prev_nk)
        tf_jpeg.set_c_resize(prev_c)


def _resize_hwc(crop: np.ndarray, oh: int, ow: int, flip: bool, value_range: bool = False) -> torch.Tensor:
    """resize_bilinear_tf of an (h, w, 3) uint8 numpy crop (any strides) -> uint8 (3, oh, ow) tensor; with
    ``value_range``, big_vision's value_range(-1, 1) of it (float32, the bits of :func:`to_value_range`).

    On one core, gathering single bytes along a row (np.take on the last axis) costs ~0.5-1 ns per element
    while copying whole rows is nearly free, so every gather here is a row gather: the crop is transposed to
    (3, w, h) (columns become rows) for the horizontal taps, and the (3, ow, h) float32 result is
    transposed back to (3, h, ow) for the vertical taps. The float32 arithmetic is TF's, in TF's order.
    With numba, one compiled loop (``backends.numba.resize_tf``, same arithmetic, value_range fused into
    its last pass) does it all instead."""
    h, w = crop.shape[:2]
    if tf_jpeg.c_resize_enabled():
        return torch.from_numpy(tf_jpeg.resize_hwc(crop, oh, ow, flip, value_range))
    if _nk.enabled():
        return torch.from_numpy(_nk.resize_tf(crop, oh, ow, flip, value_range))
    ly, uy, wy, lxux, wx, lyuy = _numpy_tables(h, w, oh, ow, flip)
    # Horizontal lerp on whichever is fewer: the crop's rows, or the 2*oh rows the output reads.
    few_rows = h <= 2 * oh
    if not few_rows:
        crop = np.take(crop, lyuy, axis=0)
    cwh = np.ascontiguousarray(crop.transpose(2, 1, 0))            # (3, w, rows)
    lr = np.take(cwh, lxux, axis=1).astype(np.float32)             # left columns, then right columns
    left = lr[:, :ow]
    horiz = lr[:, ow:]
    horiz -= left                                                  # TF: left + (right - left) * x_lerp
    horiz *= wx
    horiz += left
    hz = np.ascontiguousarray(horiz.transpose(0, 2, 1))            # (3, rows, ow)
    if few_rows:
        top, out = np.take(hz, ly, axis=1), np.take(hz, uy, axis=1)
    else:
        top, out = hz[:, :oh], hz[:, oh:]
    out -= top                                                     # TF: top + (bottom - top) * y_lerp
    out *= wy
    out += top
    # big_vision's clip + truncating cast (numpy's float32 -> uint8 cast truncates too).
    np.clip(out, np.float32(0.0), np.float32(255.0), out=out)
    img = torch.from_numpy(out.astype(np.uint8))
    return to_value_range(img) if value_range else img


_scratch_local = threading.local()


def _scratch(h: int, w: int) -> np.ndarray:
    """A per-thread (h, w, 3) uint8 buffer for the decoded window: reused, so a large window does not cost
    fresh pages (first-touch faults) on every image. The resize reads it and writes a new output."""
    need = h * w * 3
    buf = getattr(_scratch_local, "buf", None)
    if buf is None or buf.size < need:
        buf = _scratch_local.buf = np.empty(max(need, 1 << 20), np.uint8)
    return buf[:need].reshape(h, w, 3)


def crop_resize_flip(data: bytes, box: Sequence[int], size: int = 224, *, flip: bool = False,
                     fast_dct: bool = True, path=None, exact: bool = True, value_range: bool = False,
                     out: torch.Tensor | None = None) -> torch.Tensor:
    """decode_and_crop_jpeg(box) -> resize(size) -> (optional) flip_lr, as uint8 (3, size, size). The decode
    is TF's crop-window decode (:func:`torch_impl.pp.jpeg.decode_crop_hwc`: same pixels, same verdict on
    truncated files, ``ImageDecodeError`` naming ``path``). ``value_range=True`` goes on to big_vision's
    value_range(-1, 1) in the resize's last pass: float32, the bits of ``to_value_range`` of the uint8 image.

    With the C extension (the default where it is built) the decode and the resize are one C call
    (:func:`torch_impl.pp.tf_jpeg.decode_resize`, GIL released) that writes into ``out`` (a contiguous
    (3, size, size) tensor of the output dtype, e.g. a row of a preallocated batch) when given and returns it;
    the other paths return a new tensor, which the batch assembly (data.batching.fill_batch) copies into its
    row. Every backend gives the same bits."""
    bh, bw = int(box[2]), int(box[3])
    if out is not None and (out.dtype != (torch.float32 if value_range else torch.uint8) or
                            tuple(out.shape) != (3, size, size) or out.device.type != "cpu"):
        out = None      # not this output's buffer: a new tensor (the caller copies or stacks it)
    if exact and tf_jpeg.c_resize_enabled() and tf_jpeg.available() and bh > 0 and bw > 0 and \
            bytes(data[:3]) == b"\xff\xd8\xff":
        o = out.numpy() if out is not None and out.is_contiguous() else None
        try:
            res = tf_jpeg.decode_resize(data, box, size, flip=flip, value_range=value_range, fast_dct=fast_dct,
                                        out=o)
        except tf_jpeg.JpegDecodeError as e:
            raise window_decode_error(e, box, path) from None
        return out if o is not None else torch.from_numpy(res)
    crop = decode_crop_hwc(data, box, fast_dct=fast_dct, path=path, exact=exact,
                           out=_scratch(bh, bw) if bh > 0 and bw > 0 else None)
    return _resize_hwc(crop, size, size, flip, value_range)


def to_value_range(image: torch.Tensor, vmin: float = -1.0, vmax: float = 1.0) -> torch.Tensor:
    """big_vision ``value_range(vmin, vmax)`` from uint8: float32 ``vmin + (x / 255) * (vmax - vmin)``
    (TF's order: subtract 0, divide by 255, then scale and shift)."""
    if vmin == -1.0 and vmax == 1.0 and image.device.type == "cpu":
        # fl(x / 127.5) == 2 * fl(x / 255) exactly (127.5 and the doubling are exact, rounding commutes with
        # scaling by 2), so this is the same float32 result in two passes (convert+divide, subtract) instead
        # of four; checked on all 256 values in tests/test_fast_pipeline.py.
        if _nk.enabled():
            return torch.from_numpy(_nk.value_range_m1p1(image.numpy()))
        out = np.divide(image.numpy(), np.float32(127.5), dtype=np.float32)
        out -= np.float32(1.0)
        return torch.from_numpy(out)
    # Divide by a 0-dim tensor on the image's device, not by the Python float: for ``tensor / scalar`` torch's
    # CUDA kernel multiplies by the float32 reciprocal (1/255), which is 1 ulp off TF's true division for
    # 126 of the 256 values (111 still after the scaling); a device tensor divisor keeps the IEEE division.
    # (torch's CPU kernel divides truly either way.)
    x = image.to(torch.float32) / torch.full((), 255.0, dtype=torch.float32, device=image.device)
    return x.mul_(vmax - vmin).add_(vmin)


# ---- RandAugment on one image: the kernels of torch_impl.pp.randaug.KERNELS on numpy arrays ---------------
@lru_cache(maxsize=256)
def _geometry(coeffs: tuple[float, ...], h: int, w: int):
    """The projective map as a gather table into the flattened image with one extra slot (index h*w) holding
    the fill value; or, when the table is exactly a whole-image shift (Translate, and any op whose table
    happens to be one), ``(dy, dx)``: out[y, x] = in[y + dy, x + dx] where that is inside, else the fill."""
    idx, inside = projective_tables(h, w, *(torch.tensor(v, dtype=torch.float32).view(1, 1, 1) for v in coeffs))
    table = torch.where(inside[0], idx[0], h * w).reshape(-1).numpy()
    # Detect a shift from one pixel, then confirm it against the whole table (exact by construction).
    for dy, dx in _shift_candidates(table, h, w):
        if np.array_equal(_shift_table(dy, dx, h, w), table):
            return (dy, dx)
    return table


def _shift_candidates(table: np.ndarray, h: int, w: int):
    inside = np.flatnonzero(table < h * w)
    if inside.size == 0:
        return [(h, w)]                       # everything filled: a shift out of the image
    k = int(inside[0])
    return [(int(table[k]) // w - k // w, int(table[k]) % w - k % w)]


def _shift_table(dy: int, dx: int, h: int, w: int) -> np.ndarray:
    ys, xs = np.arange(h)[:, None] + dy, np.arange(w)[None, :] + dx
    ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    return np.where(ok, ys * w + xs, h * w).reshape(-1)


def affine(x: np.ndarray, coeffs: tuple[float, ...], fill) -> np.ndarray:
    """``randaug`` kernel ``affine``: nearest-neighbour projective sampling through a cached gather table
    (or a plain shift), ``fill`` (one value per channel) outside the image."""
    _, h, w = x.shape
    geo = _geometry(tuple(coeffs), h, w)
    fill = np.asarray(fill, np.uint8)
    if isinstance(geo, tuple):
        dy, dx = geo
        out = np.empty_like(x)
        out[:] = fill[:, None, None]
        oy0, oy1 = max(0, -dy), min(h, h - dy)
        ox0, ox1 = max(0, -dx), min(w, w - dx)
        if oy1 > oy0 and ox1 > ox0:
            out[:, oy0:oy1, ox0:ox1] = x[:, oy0 + dy:oy1 + dy, ox0 + dx:ox1 + dx]
        return out
    if _nk.enabled():
        return _nk.gather_fill(x, geo, fill)
    src = np.empty((3, h * w + 1), np.uint8)
    src[:, :-1] = x.reshape(3, -1)
    src[:, -1] = fill
    return np.take(src, geo, axis=1).reshape(3, h, w)


def cutout(x: np.ndarray, box, fill) -> np.ndarray:
    """``randaug`` kernel ``cutout``: the box (top, bottom, left, right) gets ``fill``."""
    top, bottom, left, right = box
    out = x.copy()
    if bottom > top and right > left:
        out[:, top:bottom, left:right] = np.asarray(fill, np.uint8)[:, None, None]
    return out


def blend_constant(x: np.ndarray, value: int, factor: float) -> np.ndarray:
    """``randaug`` kernel ``blend_constant`` (Brightness: value 0; big_vision's Contrast: its degenerate)."""
    return brightness(x, factor) if value == 0 else contrast_constant(x, value, factor)


def blend_mean_grey(x: np.ndarray, factor: float) -> np.ndarray:
    """``randaug`` kernel ``blend_mean_grey`` (contrast="fixed"): the mean grey computed by randaug.mean_grey
    itself (a float64 reduction: the same code gives the same value), then the constant blend."""
    return contrast_constant(x, int(A.mean_grey(torch.from_numpy(x))), factor)


NUMPY_KERNELS = types.SimpleNamespace(
    autocontrast=autocontrast, equalize=equalize, invert=invert, posterize=posterize, solarize=solarize,
    solarize_add=solarize_add, blend_constant=blend_constant, blend_grey=color, blend_mean_grey=blend_mean_grey,
    sharpness=sharpness, affine=affine, cutout=cutout)
assert set(vars(NUMPY_KERNELS)) == set(A.KERNELS)


def fast_apply_op(image: torch.Tensor, name: str, level: float, *, sign: int = 1, cutout_center=None,
                  replace=128, contrast: str = "big_vision", sharpness_conv: str = "eigen") -> torch.Tensor:
    """``torch_impl.pp.randaug.apply_op`` on one uint8 (3, H, W) image through the numpy kernels (numba where
    enabled): the same dispatch (``randaug.kernel_call``), the same float32 operations. Parity with apply_op
    is checked in tests/test_fast_pipeline.py and on the recorded randaug_ops fixtures (parity family
    fast_paths). Cutout needs ``cutout_center``."""
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"fast_apply_op expects a uint8 (3, H, W) tensor, got {image.dtype} {tuple(image.shape)}")
    _, h, w = image.shape
    kernel, args = A.kernel_call(name, level, sign, height=h, width=w, contrast=contrast, fill=replace,
                                 cutout_center=cutout_center, sharpness_conv=sharpness_conv)
    x = image.numpy() if image.is_contiguous() else image.contiguous().numpy()
    return torch.from_numpy(getattr(NUMPY_KERNELS, kernel)(x, *args))


def fast_randaugment(image: torch.Tensor, num_ops: int = 2, magnitude: float = 10, *,
                     generator: torch.Generator | None = None, fill=128,
                     contrast: str = "big_vision") -> torch.Tensor:
    """``torch_impl.pp.randaug.randaugment`` (same draws from ``generator``, same result) through fast_apply_op."""
    for p in A.sample_randaug_params(num_ops, *image.shape[-2:], generator=generator):
        image = fast_apply_op(image, p["name"], magnitude, sign=p["sign"], cutout_center=p["cutout_center"],
                              replace=fill, contrast=contrast)
    return image

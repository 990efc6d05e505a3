"""Compiled (numba) kernels for the per-image fast CPU path: the same float32 operations, in the same order, as
``torch_impl.fast_ops`` / ``torch_impl.augment`` (which match big_vision's TF arithmetic), in one pass over
the pixels instead of several numpy passes.

Why they are exact, not approximations:

* numba compiles with ``fastmath=False`` (the default, kept here): LLVM then neither reassociates float
  expressions nor contracts ``a * b + c`` into an FMA, so every ``+ - * /`` is one IEEE float32 rounding,
  like numpy's ufuncs, torch's CPU kernels and TF. All operands are float32: a Python float or an integer in
  a float expression would promote to float64 (numba's typing), so every constant here is a float32
  argument or a float32 global.
* float -> uint8 casts truncate toward zero (``fptoui``), like ``tf.cast``; values are clipped first.
* Every kernel is checked against ``torch_impl.augment.apply_op`` / ``preprocess.resize`` on all 256 values
  and many shapes in tests/test_fast_pipeline.py (for both backends), and the fast_paths parity family
  checks the whole fast pipeline against big_vision's recorded outputs.

Why numba: on one core the numpy kernels spend most of their time on temporaries, dtype-conversion loops
and byte gathers (``np.take``); a compiled loop reads each source pixel once. numba is optional: without it
(or with ``VIT_PARITY_NUMBA=0``) ``torch_impl.fast_ops`` and ``fast_pipeline`` use their numpy kernels,
which give the same bits.
"""
from __future__ import annotations

import os

import numpy as np

from torch_impl.pp.resize import _kernel_tables

__all__ = ["available", "enabled", "warm_up", "set_enabled", "resize_hwc", "resize_tf", "value_range_m1p1",
           "brightness", "contrast_constant",
           "color", "autocontrast", "sharpness", "equalize", "gather_fill"]

try:  # pragma: no cover - depends on the environment
    import numba as _numba
except ImportError:  # pragma: no cover
    _numba = None

_ENABLED = _numba is not None and os.environ.get("VIT_PARITY_NUMBA", "1") not in ("0", "false", "no")


def available() -> bool:
    """Whether numba is installed (the kernels can be switched on)."""
    return _numba is not None


def enabled() -> bool:
    """Whether the fast path uses these kernels (numba importable and not switched off)."""
    return _ENABLED


def set_enabled(on: bool) -> bool:
    """Switch the compiled kernels on or off (tests run both backends); returns the previous setting.
    Switching on without numba installed raises."""
    global _ENABLED
    if on and _numba is None:
        raise ImportError("torch_impl.numba_kernels needs numba (`pip install numba`)")
    prev, _ENABLED = _ENABLED, bool(on)
    return prev


def _njit(fn):
    if _numba is None:  # pragma: no cover - the numpy kernels are used instead
        return fn
    # cache=True: compiled once per machine (in __pycache__), so DataLoader workers and later runs load it.
    # nogil: the kernels hold no Python objects, so threads can run them side by side.
    return _numba.njit(cache=True, nogil=True, fastmath=False)(fn)


_F0 = np.float32(0.0)
_F255 = np.float32(255.0)


@_njit
def _clip_trunc(v):
    if v < _F0:
        v = _F0
    elif v > _F255:
        v = _F255
    return np.uint8(v)


# ---- crop + bilinear resize (TF ResizeBilinear, half-pixel centres) + flip (+ value_range) ----------------------
_F0_5 = np.float32(0.5)
_F127_5 = np.float32(127.5)
_F1 = np.float32(1.0)


@_njit
def _axis_kernel(in_size, out_size, flip, lower, upper, lerp):
    # pp.resize._axis_table computed in the kernel (no Python-level table cache to miss on ImageNet's many crop
    # sizes): the same float32 ops in the same order, scale = in / out, x = (i + 0.5) * scale - 0.5,
    # lower = max(floor(x), 0), upper = min(ceil(x), in - 1), lerp = x - floor(x); a flip reverses the table.
    # Checked equal to _axis_table for every in_size up to 2048 (tests/test_fast_pipeline.py).
    scale = np.float32(in_size) / np.float32(out_size)
    top = np.float32(in_size - 1)
    for i in range(out_size):
        x = (np.float32(i) + _F0_5) * scale - _F0_5
        fl = np.floor(x)
        j = out_size - 1 - i if flip else i
        lower[j] = np.int64(max(fl, _F0))
        upper[j] = np.int64(min(np.ceil(x), top))
        lerp[j] = x - fl


@_njit
def _horizontal_row(row, rowf, lx3, ux3, wx, dst):
    # TF's horizontal lerp of one input row (interleaved RGB bytes): left + (right - left) * x_lerp, written
    # channel-planar (dst[c * ow + x]) so the vertical pass runs on contiguous float32 rows. The row is
    # converted to float32 once first (a vectorised loop), so the gathers below read floats: ~1.4x faster
    # than converting each gathered byte.
    for i in range(row.shape[0]):
        rowf[i] = np.float32(row[i])
    ow = lx3.shape[0]
    for x in range(ow):
        a, b, fx = lx3[x], ux3[x], wx[x]
        for c in range(3):
            left = rowf[a + c]
            dst[c * ow + x] = left + (rowf[b + c] - left) * fx


@_njit
def _resize_kernel(src, ly, uy, wy, lx3, ux3, wx, out, to_float):
    # src: (h, w * 3) uint8 rows of the crop (any row stride); out: (3, oh, ow) uint8, or float32 when
    # to_float. TF's order: the horizontal lerp of the two input rows, then top + (bottom - top) * y_lerp,
    # clipped to [0, 255] and truncated (big_vision's cast to uint8). to_float then applies value_range(-1, 1)
    # to that uint8 value exactly as _value_range_kernel does (x / 127.5 - 1, see to_value_range), so the
    # fused output has the same bits as resize, then value_range, without the uint8 image in between.
    # Each input row's horizontal lerp is computed once and reused by consecutive output rows.
    oh, ow = ly.shape[0], lx3.shape[0]
    rowf = np.empty(src.shape[1], np.float32)
    top = np.empty(3 * ow, np.float32)
    bottom = np.empty(3 * ow, np.float32)
    row_top, row_bottom = -1, -1
    for y in range(oh):
        r0, r1, fy = ly[y], uy[y], wy[y]
        if r0 != row_top:
            if r0 == row_bottom:
                top, bottom = bottom, top
                row_top, row_bottom = row_bottom, -1
            else:
                _horizontal_row(src[r0], rowf, lx3, ux3, wx, top)
                row_top = r0
        if r1 != row_bottom:
            if r1 == row_top:
                bottom[:] = top
            else:
                _horizontal_row(src[r1], rowf, lx3, ux3, wx, bottom)
            row_bottom = r1
        for c in range(3):
            o, base = out[c, y], c * ow
            if to_float:
                for x in range(ow):
                    t = top[base + x]
                    o[x] = np.float32(_clip_trunc(t + (bottom[base + x] - t) * fy)) / _F127_5 - _F1
            else:
                for x in range(ow):
                    t = top[base + x]
                    o[x] = _clip_trunc(t + (bottom[base + x] - t) * fy)


@_njit
def _resize_tf_kernel(src, width, flip, out, to_float):
    oh, ow = out.shape[1], out.shape[2]
    ly, uy, wy = np.empty(oh, np.int64), np.empty(oh, np.int64), np.empty(oh, np.float32)
    lx, ux, wx = np.empty(ow, np.int64), np.empty(ow, np.int64), np.empty(ow, np.float32)
    _axis_kernel(src.shape[0], oh, False, ly, uy, wy)
    _axis_kernel(width, ow, flip, lx, ux, wx)
    _resize_kernel(src, ly, uy, wy, lx * 3, ux * 3, wx, out, to_float)


def _rows(crop: np.ndarray) -> np.ndarray:
    h, w = crop.shape[:2]
    if crop.strides[1:] != (3, 1):
        crop = np.ascontiguousarray(crop)
    return crop.reshape(h, w * 3)


def resize_hwc(crop: np.ndarray, tables) -> np.ndarray:
    """(h, w, 3) uint8 crop (rows may be strided, e.g. a slice of the decoded image) -> (3, oh, ow) uint8,
    with the axis tables ``(ly, uy, wy, lx, ux, wx)`` of ``pp.resize._kernel_tables`` (a flip is a
    reversed column table)."""
    ly, uy, wy, lx, ux, wx = tables
    out = np.empty((3, ly.shape[0], lx.shape[0]), np.uint8)
    _resize_kernel(_rows(crop), ly, uy, wy, lx * 3, ux * 3, wx, out, False)
    return out


def resize_tf(crop: np.ndarray, oh: int, ow: int, flip: bool = False, value_range: bool = False) -> np.ndarray:
    """(h, w, 3) uint8 crop -> big_vision ``resize((oh, ow))`` (TF bilinear, half-pixel centres, clip +
    truncating cast) as uint8 (3, oh, ow), mirrored left-right when ``flip``; with ``value_range`` it goes on
    to big_vision's ``value_range(-1, 1)`` in the same pass: float32 (3, oh, ow), the same bits as
    :func:`value_range_m1p1` of the uint8 result. The axis tables are computed in the kernel."""
    out = np.empty((3, int(oh), int(ow)), np.float32 if value_range else np.uint8)
    _resize_tf_kernel(_rows(crop), crop.shape[1], bool(flip), out, bool(value_range))
    return out


# ---- value_range(-1, 1) ---------------------------------------------------------------------------------------


@_njit
def _value_range_kernel(x, out):
    for i in range(x.shape[0]):
        out[i] = np.float32(x[i]) / _F127_5 - _F1


def value_range_m1p1(x: np.ndarray) -> np.ndarray:
    """``x / 127.5 - 1`` in float32, which equals big_vision's ``(x / 255) * 2 - 1`` (see
    fast_pipeline.to_value_range) for uint8 x."""
    out = np.empty(x.shape, np.float32)
    _value_range_kernel(np.ascontiguousarray(x).reshape(-1), out.reshape(-1))
    return out


# ---- colour ops (uint8 (3, H, W) -> uint8) ----------------------------------------------------------------------
@_njit
def _blend_const_kernel(x, d, factor, clip, out):
    # d + factor * (x - d): Brightness (d = 0, where 0 + y == y and y - 0 == y exactly) and Contrast.
    xs, os_ = x.reshape(-1), out.reshape(-1)
    for i in range(xs.shape[0]):
        t = (np.float32(xs[i]) - d) * factor + d
        os_[i] = _clip_trunc(t) if clip else np.uint8(t)


def contrast_constant(x: np.ndarray, degenerate: int, factor: float) -> np.ndarray:
    out = np.empty_like(x)
    _blend_const_kernel(np.ascontiguousarray(x), np.float32(degenerate), np.float32(factor),
                        not 0.0 < factor < 1.0, out)
    return out


def brightness(x: np.ndarray, factor: float) -> np.ndarray:
    """blend(zeros, x, factor): the constant blend towards 0."""
    return contrast_constant(x, 0, factor)


_GREY_K = np.float32(1.0 / 255.0)
_GREY_WR, _GREY_WG, _GREY_WB = np.float32(0.2989), np.float32(0.5870), np.float32(0.1140)
_GREY_S = np.float32(255.5)


@_njit
def _color_kernel(x, factor, clip, out):
    # grey = trunc(((r*k*wr + g*k*wg) + b*k*wb) * 255.5), then blend(grey, x, factor) = grey + f * (x - grey).
    _, h, w = x.shape
    for i in range(h):
        for j in range(w):
            r, g, b = np.float32(x[0, i, j]), np.float32(x[1, i, j]), np.float32(x[2, i, j])
            grey = (((r * _GREY_K) * _GREY_WR + (g * _GREY_K) * _GREY_WG) + (b * _GREY_K) * _GREY_WB) * _GREY_S
            grey = np.float32(np.uint8(grey))           # tf.cast truncation; the value is in [0, 255]
            for c in range(3):
                t = (np.float32(x[c, i, j]) - grey) * factor + grey
                out[c, i, j] = _clip_trunc(t) if clip else np.uint8(t)


def color(x: np.ndarray, factor: float) -> np.ndarray:
    out = np.empty_like(x)
    _color_kernel(x, np.float32(factor), not 0.0 < factor < 1.0, out)
    return out


@_njit
def _autocontrast_kernel(x, out):
    n = x.shape[1] * x.shape[2]
    for c in range(3):
        xs, os_ = x[c].reshape(-1), out[c].reshape(-1)
        lo, hi = xs[0], xs[0]
        for i in range(n):
            v = xs[i]
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        if hi <= lo:                    # a flat channel is returned unchanged
            for i in range(n):
                os_[i] = xs[i]
            continue
        flo = np.float32(lo)
        scale = _F255 / (np.float32(hi) - flo)
        offset = -flo * scale
        for i in range(n):
            os_[i] = _clip_trunc(np.float32(xs[i]) * scale + offset)


def autocontrast(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    _autocontrast_kernel(np.ascontiguousarray(x), out)
    return out


_K1 = np.float32(1.0) / np.float32(13.0)
_K5 = np.float32(5.0) / np.float32(13.0)


@_njit
def _sharpness_kernel(x, factor, clip, smooth_only, out):
    # The 3x3 SMOOTH kernel (1/13, centre 5/13) summed tap by tap in row-major order in float32 on the
    # interior, clipped and truncated; then blend(smoothed, x, factor). Border pixels keep x (the blend of
    # x with itself is x exactly). Row slices and no branches in the inner loop, so LLVM vectorises it.
    _, h, w = x.shape
    out[:] = x
    for c in range(3):
        for i in range(1, h - 1):
            r0, r1, r2, o = x[c, i - 1], x[c, i], x[c, i + 1], out[c, i]
            for j in range(1, w - 1):
                acc = np.float32(r0[j - 1]) * _K1
                acc += np.float32(r0[j]) * _K1
                acc += np.float32(r0[j + 1]) * _K1
                acc += np.float32(r1[j - 1]) * _K1
                acc += np.float32(r1[j]) * _K5
                acc += np.float32(r1[j + 1]) * _K1
                acc += np.float32(r2[j - 1]) * _K1
                acc += np.float32(r2[j]) * _K1
                acc += np.float32(r2[j + 1]) * _K1
                s = np.float32(_clip_trunc(acc))
                if smooth_only:
                    o[j] = np.uint8(s)
                elif clip:
                    o[j] = _clip_trunc((np.float32(r1[j]) - s) * factor + s)
                else:
                    o[j] = np.uint8((np.float32(r1[j]) - s) * factor + s)


def sharpness(x: np.ndarray, factor: float) -> np.ndarray:
    """For images of at least 3x3 and factor != 1 (fast_ops.sharpness handles the rest)."""
    out = np.empty_like(x)
    _sharpness_kernel(np.ascontiguousarray(x), np.float32(factor), not 0.0 < factor < 1.0, factor == 0.0, out)
    return out


@_njit
def _equalize_kernel(x, out):
    # PIL's integer equalize per channel (augment._equalize): step = (count - count of the top value) // 255,
    # lut[v] = (cumsum below v + step // 2) // step, clipped; step 0 leaves the channel unchanged.
    for c in range(3):
        xs, os_ = x[c].reshape(-1), out[c].reshape(-1)
        hist = np.zeros(256, np.int64)
        top = 0
        for i in range(xs.shape[0]):
            v = xs[i]
            hist[v] += 1
            if v > top:
                top = v
        step = (xs.shape[0] - hist[top]) // 255
        if step == 0:
            for i in range(xs.shape[0]):
                os_[i] = xs[i]
            continue
        lut = np.empty(256, np.uint8)
        acc = step // 2
        for v in range(256):
            q = acc // step
            lut[v] = 255 if q > 255 else q
            acc += hist[v]
        for i in range(xs.shape[0]):
            os_[i] = lut[xs[i]]


def equalize(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    _equalize_kernel(np.ascontiguousarray(x), out)
    return out


# ---- geometric ops: a gather through a table with a fill slot ---------------------------------------------------
@_njit
def _gather_fill_kernel(x, table, fill, out):
    n = table.shape[0]
    for c in range(3):
        xs, os_ = x[c].reshape(-1), out[c].reshape(-1)
        for i in range(n):
            k = table[i]
            os_[i] = fill[c] if k >= n else xs[k]


def gather_fill(x: np.ndarray, table: np.ndarray, fill) -> np.ndarray:
    """out[c].flat[i] = x[c].flat[table[i]], or ``fill[c]`` where table[i] == H*W (outside the source)."""
    out = np.empty_like(x)
    _gather_fill_kernel(np.ascontiguousarray(x), table, np.ascontiguousarray(fill, dtype=np.uint8), out)
    return out


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel now, in this process: DataLoader workers forked
    afterwards inherit the machine code instead of each compiling it (seconds per worker on a cold cache)."""
    if not _ENABLED:
        return
    x = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    for clip_factor in (0.5, 1.5):
        brightness(x, clip_factor)
        contrast_constant(x, 3, clip_factor)
        color(x, clip_factor)
        sharpness(x, clip_factor)
    sharpness(x, 0.0)
    autocontrast(x)
    equalize(x)
    gather_fill(x, np.zeros(20, np.int64), (128, 128, 128))
    value_range_m1p1(x)
    hwc = np.ascontiguousarray(x.transpose(1, 2, 0))
    resize_hwc(hwc, _kernel_tables(4, 5, 3, 3, False))
    resize_hwc(np.ascontiguousarray(np.zeros((6, 7, 3), np.uint8))[1:5, 1:6], _kernel_tables(4, 5, 3, 3, True))
    for value_range in (False, True):
        resize_tf(hwc, 3, 3, True, value_range)

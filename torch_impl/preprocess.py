"""big_vision's preprocessing ops on torch uint8 images of shape (3, H, W) (or batches (..., 3, H, W)).

Each function cites the big_vision op (``big_vision/pp/ops_*.py``) whose output it reproduces.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
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


# ---------------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------------
class ImageDecodeError(ValueError):
    """An encoded image could not be decoded; the message names the file (when known) and the fix."""


def _where(path) -> str:
    return f"{path}: " if path is not None else ""


def _decode_fast_dct(data: bytes, path) -> "np.ndarray":
    """TF's default JPEG decode (libjpeg-turbo's fast integer IDCT, fancy upsampling) via simplejpeg."""
    try:
        import simplejpeg
    except ImportError as e:
        raise ImportError(
            "decode_jpeg(precise=False) reproduces TF's default (fast-DCT) JPEG decode, which big_vision's "
            "`decode` and `decode_jpeg_and_inception_crop` use; it needs the `simplejpeg` package "
            "(`pip install simplejpeg`). Or pass precise=True for the accurate decode "
            "(big_vision `decode(precise=True)`).") from e
    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=False)
    except ValueError as e:
        raise ImageDecodeError(f"{_where(path)}cannot decode this JPEG with the fast DCT ({e}). "
                               "If the file is truncated or corrupt, re-download or re-encode it.") from e


def _cmyk_fast_dct(data: bytes, path) -> "np.ndarray":
    """CMYK/YCCK JPEG with the fast DCT: raw CMYK from libjpeg-turbo, Adobe files un-inverted (as PIL and
    TF both do), then PIL's CMYK -> RGB conversion, which equals TF's for the accurate decode."""
    import re

    import simplejpeg
    from PIL import Image
    try:
        cmyk = simplejpeg.decode_jpeg(data, colorspace="CMYK", fastdct=True, fastupsample=False)
    except ValueError as e:
        raise ImageDecodeError(f"{_where(path)}cannot decode this CMYK JPEG ({e}). If the file is truncated or "
                               "corrupt, re-download or re-encode it.") from e
    if re.search(rb"\xff\xee..Adobe", data[:1 << 16], re.S):
        cmyk = 255 - cmyk
    return np.asarray(Image.fromarray(np.ascontiguousarray(cmyk), "CMYK").convert("RGB"))


def decode_jpeg(data: bytes, *, precise: bool = True, path=None) -> torch.Tensor:
    """Decode an encoded image to RGB uint8 (3, H, W), like big_vision's ``decode``.

    ``precise=True`` equals big_vision ``decode(precise=True)`` = ``tf.image.decode_jpeg(channels=3,
    dct_method="INTEGER_ACCURATE")`` bit for bit; it uses PIL (libjpeg-turbo's accurate integer IDCT).
    ``precise=False`` equals big_vision's default ``decode`` (``tf.io.decode_image``, whose JPEG path uses
    libjpeg-turbo's *fast* integer IDCT, up to ~11 levels away from the accurate one); it needs
    ``simplejpeg``. ViT-S/16's config uses the default (``decode``, ``decode_jpeg_and_inception_crop``).

    Like TF with ``channels=3``: grayscale and CMYK JPEGs come back as RGB, and a PNG/GIF/BMP/WebP
    file with a .jpg name is decoded anyway (alpha is dropped). Truncated or corrupt data raises
    :class:`ImageDecodeError` naming ``path`` (TF also fails on these: "jpeg::Uncompress failed").
    """
    import io

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif isinstance(data, torch.Tensor):
        data = data.cpu().numpy().tobytes()
    elif isinstance(data, np.ndarray):
        data = data.tobytes()
    if not isinstance(data, bytes):
        raise TypeError(f"{_where(path)}decode_jpeg expects the encoded bytes, got {type(data).__name__}")
    if not data:
        raise ImageDecodeError(f"{_where(path)}empty file: nothing to decode")
    is_jpeg = data[:3] == b"\xff\xd8\xff"
    if is_jpeg and not precise:
        arr = None
        try:
            import simplejpeg
            header = simplejpeg.decode_jpeg_header(data)
            if header[2] in ("CMYK", "YCCK"):
                arr = _cmyk_fast_dct(data, path)
            else:
                arr = _decode_fast_dct(data, path)
        except ImportError:
            _decode_fast_dct(data, path)  # raises the explanatory ImportError
        except ValueError as e:
            raise ImageDecodeError(f"{_where(path)}not a decodable JPEG ({e}). If the file is truncated or "
                                   "corrupt, re-download or re-encode it.") from e
        if arr is not None:
            return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # PIL raises OSError("image file is truncated") here for truncated data
            if im.mode != "RGB":
                im = im.convert("RGB")  # L, CMYK (Adobe-inverted handled by PIL), P, RGBA -> RGB like TF
            arr = np.asarray(im)
    except UnidentifiedImageError as e:
        raise ImageDecodeError(f"{_where(path)}unknown image format (first bytes {data[:8]!r}); expected a "
                               "JPEG (or PNG/GIF/BMP/WebP). The file is probably corrupt or not an image.") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(f"{_where(path)}cannot decode image ({e}). The file is truncated or corrupt: "
                               "re-download or re-encode it (TF fails on it too).") from e
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


# ---------------------------------------------------------------------------------------------------
# Resizing: TF's kernels re-done in float32 with TF's own order of operations
# ---------------------------------------------------------------------------------------------------
_F32 = torch.float32


def _f32(x) -> torch.Tensor:
    return torch.tensor(x, dtype=_F32)


def _bilinear_axis(in_size: int, out_size: int):
    """TF resize_bilinear(half_pixel_centers=True) sampling along one axis: source = (i + 0.5) * scale - 0.5
    in float32 with scale = in / out; lower index clamped at 0, upper at in - 1, weight = src - floor(src)."""
    scale = _f32(in_size) / _f32(out_size)
    src = (torch.arange(out_size, dtype=_F32) + 0.5) * scale - 0.5
    fl = torch.floor(src)
    lower = fl.to(torch.int64).clamp_min(0)
    upper = torch.ceil(src).to(torch.int64).clamp_max(in_size - 1)
    return lower, upper, src - fl


def _resize_bilinear_f32(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    in_h, in_w = x.shape[-2:]
    if (in_h, in_w) == (out_h, out_w):
        return x.clone()  # TF's no-op resize: a plain cast
    yl, yu, yw = _bilinear_axis(in_h, out_h)
    xl, xu, xw = _bilinear_axis(in_w, out_w)
    top, bottom = x[..., yl, :], x[..., yu, :]
    tl, tr, bl, br = top[..., xl], top[..., xu], bottom[..., xl], bottom[..., xu]
    # TF: top = tl + (tr - tl) * xlerp; bottom likewise; out = top + (bottom - top) * ylerp
    t = tl + (tr - tl) * xw
    b = bl + (br - bl) * xw
    return t + (b - t) * yw[:, None]


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


def flip_lr(image: torch.Tensor, *, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """big_vision ``flip_lr``: mirror left-right with probability ``p`` (tf.image.random_flip_left_right)."""
    if float(torch.rand((), generator=generator)) < p:
        return image.flip(-1)
    return image

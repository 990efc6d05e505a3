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


# ---------------------------------------------------------------------------------------------------
# torchvision v2 Transforms (thin wrappers over the kernels above) and the two ViT-S/16 pipelines
# ---------------------------------------------------------------------------------------------------
from typing import Any  # noqa: E402

from PIL import Image as _PILImage  # noqa: E402
from torchvision import tv_tensors  # noqa: E402
from torchvision.transforms import v2  # noqa: E402


def _image_size(x) -> tuple[int, int]:
    """(H, W) of encoded bytes (header only, like tf.image.extract_jpeg_shape), a PIL image or a tensor."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        import io
        try:
            with _PILImage.open(io.BytesIO(bytes(x))) as im:
                w, h = im.size
        except Exception as e:  # noqa: BLE001 - PIL raises several types for bad headers
            raise ImageDecodeError(f"cannot read the image size from the encoded bytes ({e}); the file is "
                                   "corrupt or not an image") from e
        return h, w
    h, w = v2.functional.get_size(x)
    return int(h), int(w)


def _as_tensor(x, precise: bool) -> tuple[torch.Tensor, Any]:
    """Decoded uint8 (C, H, W) tensor and the input it came from (to re-wrap the output like it)."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        return decode_jpeg(bytes(x), precise=precise), None
    if isinstance(x, _PILImage.Image):
        return v2.functional.pil_to_tensor(x if x.mode == "RGB" else x.convert("RGB")), x
    return x.as_subclass(torch.Tensor), x


def _like(out: torch.Tensor, like: Any):
    if like is None or type(like) is torch.Tensor:
        return out
    if isinstance(like, _PILImage.Image):
        return v2.functional.to_pil_image(out) if out.dtype == torch.uint8 else out
    if isinstance(like, (tv_tensors.Image, tv_tensors.Video)):
        return tv_tensors.wrap(out, like=like)
    return out


class _ImageTransform(v2.Transform):
    """Base: transforms encoded bytes, PIL images, plain tensors and tv_tensors Image/Video alike."""
    _transformed_types = (bytes, bytearray, torch.Tensor, _PILImage.Image)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {}

    def _get_params(self, flat_inputs):  # torchvision 0.19/0.20 name
        return self.make_params(flat_inputs)

    def kernel(self, image: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.TVTensor) and not isinstance(inpt, (tv_tensors.Image, tv_tensors.Video)):
            raise TypeError(f"{type(self).__name__} handles images only, got {type(inpt).__name__}")
        x, like = _as_tensor(inpt, getattr(self, "precise", True))
        return _like(self.kernel(x, params), like)

    def _transform(self, inpt, params):  # torchvision 0.19/0.20 name
        return self.transform(inpt, params)


class DecodeJpeg(_ImageTransform):
    """big_vision ``decode`` (``precise=False``, its default) / ``decode(precise=True)`` on encoded bytes."""

    def __init__(self, *, precise: bool = False) -> None:
        super().__init__()
        self.precise = bool(precise)

    def kernel(self, image, params):
        return image


class DecodeJpegAndInceptionCrop(_ImageTransform):
    """big_vision ``decode_jpeg_and_inception_crop(size)``: box from the file's header, decode, crop, resize.

    big_vision decodes only the crop window (``tf.image.decode_and_crop_jpeg``, TF's default fast DCT);
    we decode the whole file and crop, which is identical except the window's first/last column on
    chroma-subsampled JPEGs (up to ~9 levels there; see docs/preprocessing.md). Decoded inputs (tensors,
    PIL) are cropped directly, like big_vision's ``decode|inception_crop(size)``.
    """

    def __init__(self, size: int | Sequence[int] | None = 224, *, area_range: Sequence[float] = (0.05, 1.0),
                 aspect_ratio_range: Sequence[float] = (0.75, 1.33), method: str = "bilinear",
                 antialias: bool = False, precise: bool = False, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.size = None if size is None else _pair(size)
        self.area_range = tuple(float(a) for a in area_range)
        self.aspect_ratio_range = tuple(float(a) for a in aspect_ratio_range)
        self.method, self.antialias, self.precise = method, bool(antialias), bool(precise)
        self.generator = generator

    def make_params(self, flat_inputs):
        from torch_impl.inception_crop import sample_inception_box
        sizes = {_image_size(x) for x in flat_inputs}
        if len(sizes) != 1:
            raise ValueError(f"{type(self).__name__}: the images of one call must share one size, got {sorted(sizes)}")
        (h, w), = sizes
        return {"box": sample_inception_box(h, w, area_range=self.area_range,
                                            aspect_ratio_range=self.aspect_ratio_range, generator=self.generator)}

    def kernel(self, image, params):
        from torch_impl.inception_crop import crop_and_resize
        return crop_and_resize(image, params["box"], self.size, method=self.method, antialias=self.antialias)


class FlipLR(_ImageTransform):
    """big_vision ``flip_lr``: left-right mirror with probability ``p`` (one draw per call)."""

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p, self.generator = float(p), generator

    def make_params(self, flat_inputs):
        return {"flip": float(torch.rand((), generator=self.generator)) < self.p}

    def kernel(self, image, params):
        return image.flip(-1) if params["flip"] else image


class ResizeSmall(_ImageTransform):
    """big_vision ``resize_small(size, method="area", antialias=False)``."""

    def __init__(self, size: int, *, method: str = "area", antialias: bool = False) -> None:
        super().__init__()
        self.size, self.method, self.antialias = int(size), method, bool(antialias)

    def kernel(self, image, params):
        return resize_small(image, self.size, method=self.method, antialias=self.antialias)


class Resize(_ImageTransform):
    """big_vision ``resize(size, method="bilinear", antialias=False)``."""

    def __init__(self, size: int | Sequence[int], *, method: str = "bilinear", antialias: bool = False) -> None:
        super().__init__()
        self.size, self.method, self.antialias = _pair(size), method, bool(antialias)

    def kernel(self, image, params):
        return resize(image, self.size, method=self.method, antialias=self.antialias)


class CentralCrop(_ImageTransform):
    """big_vision ``central_crop(size)`` (offsets floored, unlike torchvision's center_crop)."""

    def __init__(self, size: int | Sequence[int] | None = None) -> None:
        super().__init__()
        self.size = size

    def kernel(self, image, params):
        return central_crop(image, self.size)


class ValueRange(_ImageTransform):
    """big_vision ``value_range(vmin, vmax)``: uint8 [0, 255] -> float32 [vmin, vmax]."""

    def __init__(self, vmin: float = -1.0, vmax: float = 1.0) -> None:
        super().__init__()
        self.vmin, self.vmax = float(vmin), float(vmax)

    def kernel(self, image, params):
        return value_range(image, self.vmin, self.vmax)


def train_pipeline(size: int = 224, *, randaug: Any = "big_vision", area_range: Sequence[float] = (0.05, 1.0),
                   precise: bool = False, generator: torch.Generator | None = None) -> v2.Compose:
    """ViT-S/16's train pp ``decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2,10)|value_range(-1,1)``.

    Input: the encoded file (bytes) or a decoded image. ``randaug="big_vision"`` builds
    ``torch_impl.augment.RandAugment17(2, 10)``; pass any v2 Transform instead, or ``None`` to skip it.
    ``precise=False`` is big_vision's default decode (fast DCT, needs ``simplejpeg``).
    """
    if isinstance(randaug, str):
        if randaug != "big_vision":
            raise ValueError(f"train_pipeline: randaug must be 'big_vision', a Transform or None, got {randaug!r}")
        try:
            from torch_impl.augment import RandAugment17
        except ImportError as e:
            raise ImportError("train_pipeline: torch_impl.augment.RandAugment17 is not available; pass "
                              "randaug=None (or your own transform)") from e
        randaug = RandAugment17(2, 10, generator=generator)
    steps = [DecodeJpegAndInceptionCrop(size, area_range=area_range, precise=precise, generator=generator),
             FlipLR(generator=generator)]
    if randaug is not None:
        steps.append(randaug)
    steps.append(ValueRange(-1, 1))
    return v2.Compose(steps)


def eval_pipeline(size: int = 224, resize_to: int = 256, *, precise: bool = False) -> v2.Compose:
    """ViT-S/16's eval pp ``decode|resize_small(256)|central_crop(224)|value_range(-1,1)``."""
    return v2.Compose([DecodeJpeg(precise=precise), ResizeSmall(resize_to), CentralCrop(size), ValueRange(-1, 1)])

"""The fast CPU training input pipeline: big_vision's
``decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2,10)|value_range(-1,1)`` on uint8 tensors.

What makes it fast (each piece is parity-checked in ``parity/families/fast_paths.py``):

* Decode with libjpeg-turbo through ``simplejpeg`` (PyPI, bundles libjpeg-turbo 3.x) using the FAST
  integer IDCT: TensorFlow's default JPEG decode (the one big_vision's training op uses; it does not ask for
  ``INTEGER_ACCURATE``) is libjpeg's ``JDCT_IFAST``, and simplejpeg's ``fastdct=True`` equals it bit for bit.
* Decode only down to the crop window's bottom row: the JPEG header's height is lowered to
  ``bottom + 2`` so libjpeg-turbo stops early (the two extra rows keep the chroma upsampling of the last
  row identical to a full decode). Rows above the window and columns outside it are still decoded:
  no PyPI binding exposes libjpeg-turbo's ``jpeg_crop_scanline`` crop-window decode (simplejpeg decodes
  whole images, PyTurboJPEG only crops losslessly into a new JPEG and needs a system libturbojpeg >= 3).
* Known difference from big_vision (measured, not hidden): TF's ``decode_and_crop_jpeg`` (libjpeg-turbo's
  partial decode) treats the crop's right edge as an image edge for chroma upsampling, so the crop's LAST
  column can differ from "decode the whole image, then crop" (by up to ~20 levels, in about half of the
  windows, only when the window stops short of the image's right edge). Every other pixel is identical.
  We decode like TF's full decode; the fast_paths family checks both statements against TF.
* Crop, bilinear resize (TF's ``ResizeBilinear``, half-pixel centres, float32 lerps in TF's order, then
  big_vision's clip + truncating cast) and the random horizontal flip are one gather: the flip reverses the
  column tables, so no flipped copy is made.
* RandAugment runs on the 224x224 uint8 result with ``torch_impl.augment.apply_op`` semantics.
* Where numba is installed, the resize, value_range and the costlier RandAugment ops are compiled
  single-pass loops (``torch_impl.numba_kernels``, same float32 arithmetic); otherwise numpy kernels with the
  same result.

``decode_crop_jpeg`` / ``resize_bilinear_tf`` / ``crop_resize_flip`` are the kernels;
``FastTrainPipeline`` strings them together with one ``torch.Generator`` per pipeline.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch

from torch_impl import numba_kernels as _nk

__all__ = ["jpeg_shape", "decode_jpeg_fast", "decode_crop_jpeg", "resize_bilinear_tf", "crop_resize_flip",
           "to_value_range", "fast_apply_op", "fast_randaugment", "FastTrainPipeline"]

_SOF_BASELINE = (0xC0, 0xC1)   # Huffman sequential: the only ones where lowering the height is safe


def _simplejpeg():
    try:
        import simplejpeg
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("torch_impl.fast_pipeline needs simplejpeg (libjpeg-turbo bindings from PyPI): "
                          "`pip install simplejpeg`") from e
    return simplejpeg


def _check_bytes(data) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"JPEG data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if data[:3] != b"\xff\xd8\xff":
        raise ValueError("not a JPEG file (no SOI marker FF D8 FF at the start); decode other formats with "
                         "torch_impl.preprocess / PIL")
    return data


def _sof(data: bytes) -> tuple[int, int, int, int]:
    """(marker, offset of the 2-byte height, height, width) of the frame header, scanning the markers."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ValueError(f"corrupt JPEG: expected a marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:          # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                break
            h = int.from_bytes(data[i + 5:i + 7], "big")
            w = int.from_bytes(data[i + 7:i + 9], "big")
            return marker, i + 5, h, w
        if marker == 0xDA:          # start of scan before any frame header
            break
        i += 2 + length
    raise ValueError("corrupt JPEG: no frame header (SOF marker) found")


def jpeg_shape(data: bytes) -> tuple[int, int]:
    """(height, width) from the JPEG header, without decoding (like tf.image.extract_jpeg_shape)."""
    _, _, h, w = _sof(_check_bytes(data))
    return h, w


def device_decodable(data: bytes) -> bool:
    """A JPEG that nvjpeg (torchvision.io.decode_jpeg on CUDA) decodes to RGB like the CPU path would:
    baseline, extended or progressive Huffman, three components. CMYK, grayscale and anything unusual stay
    on the CPU path."""
    try:
        marker, off, _, _ = _sof(_check_bytes(data))
    except ValueError:
        return False
    return marker in (0xC0, 0xC1, 0xC2) and off + 4 < len(data) and data[off + 4] == 3


def decode_jpeg_fast(data: bytes, *, fast_dct: bool = True, rows: int | None = None) -> np.ndarray:
    """Decode to RGB uint8 (H, W, 3) numpy. ``fast_dct=True`` equals TF's default decode (JDCT_IFAST),
    ``False`` its ``dct_method="INTEGER_ACCURATE"`` (= PIL). ``rows``: only the top ``rows`` rows are
    needed; decoding stops early where that is exact (baseline JPEGs)."""
    data = _check_bytes(data)
    sj = _simplejpeg()
    marker, off, h, _ = _sof(data)
    if rows is not None and marker in _SOF_BASELINE and rows + 2 < h:
        # Lower the frame height: libjpeg-turbo then stops after the needed rows. Two extra rows keep the
        # last needed row's vertical chroma upsampling (it reads the next chroma row) identical.
        patched = bytearray(data)
        patched[off:off + 2] = (rows + 2).to_bytes(2, "big")
        # strict=False: the unread rest of the scan is "extraneous data", a warning, not an error.
        return sj.decode_jpeg(bytes(patched), colorspace="RGB", fastdct=fast_dct, fastupsample=False,
                              strict=False)
    return sj.decode_jpeg(data, colorspace="RGB", fastdct=fast_dct, fastupsample=False)


def _check_box(box, h: int, w: int) -> tuple[int, int, int, int]:
    try:
        top, left, bh, bw = (int(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"box must be (top, left, height, width) integers, got {box!r}") from None
    if bh < 1 or bw < 1 or top < 0 or left < 0 or top + bh > h or left + bw > w:
        raise ValueError(f"box {box!r} (top, left, height, width) does not fit the {h}x{w} image")
    return top, left, bh, bw


def decode_crop_jpeg(data: bytes, box: Sequence[int], *, fast_dct: bool = True) -> torch.Tensor:
    """The crop ``box=(top, left, height, width)`` of the decoded JPEG as uint8 (3, h, w) (a view into the
    decoded rows). Equals TF's ``decode_jpeg`` followed by slicing; see the module doc for the one column
    where TF's ``decode_and_crop_jpeg`` differs."""
    h, w = jpeg_shape(data)
    top, left, bh, bw = _check_box(box, h, w)
    rgb = decode_jpeg_fast(data, fast_dct=fast_dct, rows=top + bh)
    return torch.from_numpy(rgb).permute(2, 0, 1)[:, top:top + bh, left:left + bw]


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


def resize_bilinear_tf(image: torch.Tensor, size: int | Sequence[int], *, flip: bool = False) -> torch.Tensor:
    """big_vision ``resize(size)`` (bilinear, antialias=False) on uint8 (..., 3, H, W): TF's float32
    ``top + (bottom - top) * y_lerp`` of ``left + (right - left) * x_lerp``, clipped to [0, 255] and
    truncated to uint8 like big_vision's cast. ``flip=True`` also mirrors left-right (flip_lr) for free."""
    if image.dtype != torch.uint8:
        raise ValueError(f"resize_bilinear_tf expects uint8, got {image.dtype}")
    oh, ow = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    h, w = image.shape[-2:]
    ly, uy, wy = _axis_table(h, oh)
    lx, ux, wx = _axis_table(w, ow, flip)
    dev = image.device
    if dev.type != "cpu":
        ly, uy, wy, lx, ux, wx = (t.to(dev) for t in (ly, uy, wy, lx, ux, wx))
    # Rows first (gather only the rows the output needs), so the float work is on (oh or h) x ow.
    # Horizontal lerp per input row, then vertical: the same float32 expressions as TF, so bit-identical.
    if 2 * oh < h:
        rows = torch.cat([ly, uy])
        src = image.index_select(-2, rows)
        left = src.index_select(-1, lx).float()
        right = src.index_select(-1, ux).float()
        horiz = left + (right - left) * wx
        top, bottom = horiz[..., :oh, :], horiz[..., oh:, :]
    else:
        left = image.index_select(-1, lx).float()
        right = image.index_select(-1, ux).float()
        horiz = left + (right - left) * wx
        top, bottom = horiz.index_select(-2, ly), horiz.index_select(-2, uy)
    out = top + (bottom - top) * wy[:, None]
    return out.clamp_(0.0, 255.0).to(torch.uint8)


@lru_cache(maxsize=4096)
def _numpy_tables(h: int, w: int, oh: int, ow: int, flip: bool):
    ly, uy, wy = (t.numpy() for t in _axis_table(h, oh))
    lx, ux, wx = (t.numpy() for t in _axis_table(w, ow, flip))
    return ly, uy, np.ascontiguousarray(wy[:, None]), np.concatenate([lx, ux]), np.ascontiguousarray(wx[:, None]), \
        np.concatenate([ly, uy])


@lru_cache(maxsize=4096)
def _kernel_tables(h: int, w: int, oh: int, ow: int, flip: bool):
    return tuple(t.numpy() for t in _axis_table(h, oh) + _axis_table(w, ow, flip))


def _resize_hwc(crop: np.ndarray, oh: int, ow: int, flip: bool) -> torch.Tensor:
    """resize_bilinear_tf of an (h, w, 3) uint8 numpy crop (any strides) -> uint8 (3, oh, ow) tensor.

    On one core, gathering single bytes along a row (np.take on the last axis) costs ~0.5-1 ns per element
    while copying whole rows is nearly free, so every gather here is a row gather: the crop is transposed to
    (3, w, h) (columns become rows) for the horizontal taps, and the (3, ow, h) float32 result is
    transposed back to (3, h, ow) for the vertical taps. The float32 arithmetic is TF's, in TF's order.
    With numba, one compiled loop (``numba_kernels.resize_hwc``, same arithmetic) does it all instead."""
    h, w = crop.shape[:2]
    if _nk.enabled():
        return torch.from_numpy(_nk.resize_hwc(crop, _kernel_tables(h, w, oh, ow, flip)))
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
    return torch.from_numpy(out.astype(np.uint8))


def crop_resize_flip(data: bytes, box: Sequence[int], size: int = 224, *, flip: bool = False,
                     fast_dct: bool = True) -> torch.Tensor:
    """decode_and_crop_jpeg(box) -> resize(size) -> (optional) flip_lr, as uint8 (3, size, size)."""
    h, w = jpeg_shape(data)
    top, left, bh, bw = _check_box(box, h, w)
    rgb = decode_jpeg_fast(data, fast_dct=fast_dct, rows=top + bh)
    return _resize_hwc(rgb[top:top + bh, left:left + bw], size, size, flip)


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


class FastTrainPipeline:
    """bytes -> float32 (3, size, size) in [-1, 1]: big_vision's ViT training preprocessing, fast.

    ``box_sampler(height, width, generator) -> (top, left, h, w)`` defaults to
    ``torch_impl.inception_crop.sample_inception_box`` (big_vision's crop distribution);
    ``randaug`` is ``(num_ops, magnitude)`` or None; ``generator`` seeds every random draw.
    ``output="float"`` gives value_range(-1, 1) floats, ``"uint8"`` stops before it.
    """

    def __init__(self, size: int = 224, *, randaug: tuple[int, float] | None = (2, 10), flip: bool = True,
                 area_range: tuple[float, float] = (0.05, 1.0), fast_dct: bool = True,
                 box_sampler: Callable | None = None, generator: torch.Generator | None = None,
                 output: str = "float"):
        if output not in ("float", "uint8"):
            raise ValueError(f"output must be 'float' or 'uint8', got {output!r}")
        self.size, self.flip, self.fast_dct, self.output = int(size), bool(flip), bool(fast_dct), output
        from torch_impl.inception_crop import BIG_VISION_ASPECT_RATIO_RANGE, _check_ranges
        _check_ranges(1, 1, area_range, BIG_VISION_ASPECT_RATIO_RANGE, 1)
        self.area_range = tuple(float(a) for a in area_range)
        self.randaug = None if randaug is None else (int(randaug[0]), float(randaug[1]))
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self._box_sampler = box_sampler

    def sample_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        if self._box_sampler is not None:
            return tuple(int(v) for v in self._box_sampler(height, width, self.generator))
        if height > 0 and width > 0:
            # = inception_crop.sample_inception_box (same draws, same box), without its array overhead.
            from torch_impl.fast_ops import sample_inception_box1
            return sample_inception_box1(height, width, self.area_range, generator=self.generator)
        from torch_impl.inception_crop import sample_inception_box
        return tuple(int(v) for v in sample_inception_box(height, width, area_range=self.area_range,
                                                          generator=self.generator))

    def plan(self, data: bytes) -> tuple[tuple[int, int, int, int], bool]:
        """This image's random draws, in ``__call__``'s order, without decoding: (crop box, flip). The
        device-decode path (``runtime.device_decode``) ships them with the JPEG bytes."""
        h, w = jpeg_shape(data)
        box = self.sample_box(h, w)
        flip = self.flip and bool(torch.randint(0, 2, (1,), generator=self.generator))
        return box, flip

    def __call__(self, data: bytes) -> torch.Tensor:
        box, flip = self.plan(data)
        img = crop_resize_flip(data, box, self.size, flip=flip, fast_dct=self.fast_dct)
        if self.randaug is not None:
            img = fast_randaugment(img, self.randaug[0], self.randaug[1], generator=self.generator)
        return img if self.output == "uint8" else to_value_range(img)


# ---- RandAugment on one image, fast: LUTs for pointwise ops, cached tables for geometric ops -------------------
_GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY")
# Ops run by the numpy kernels of torch_impl.fast_ops (Contrast only in big_vision's mode); Cutout is a
# slice assignment in fast_apply_op.
_NUMPY_OPS = ("AutoContrast", "Equalize", "Invert", "Posterize", "Solarize", "SolarizeAdd", "Color", "Contrast",
              "Brightness", "Sharpness")


@lru_cache(maxsize=256)
def _geometry(name: str, level: float, sign: int, h: int, w: int):
    """The op as a gather table into the flattened image with one extra slot (index h*w) holding the fill
    value; or, when the table is exactly a whole-image shift (Translate, and any op whose table happens
    to be one), ``(dy, dx)``: out[y, x] = in[y + dy, x + dx] where that is inside, else the fill."""
    from torch_impl.batched_augment import geometry_coefficients, projective_tables
    coeffs = geometry_coefficients(name, h, w, torch.tensor([level]), torch.tensor([sign]))
    idx, inside = projective_tables(h, w, *coeffs)
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


def _geometric_apply(x: np.ndarray, geo, replace: int) -> np.ndarray:
    _, h, w = x.shape
    if isinstance(geo, tuple):
        dy, dx = geo
        out = np.full_like(x, replace)
        oy0, oy1 = max(0, -dy), min(h, h - dy)
        ox0, ox1 = max(0, -dx), min(w, w - dx)
        if oy1 > oy0 and ox1 > ox0:
            out[:, oy0:oy1, ox0:ox1] = x[:, oy0 + dy:oy1 + dy, ox0 + dx:ox1 + dx]
        return out
    if _nk.enabled():
        return _nk.gather_fill(x, geo, replace)
    src = np.empty((3, h * w + 1), np.uint8)
    src[:, :-1] = x.reshape(3, -1)
    src[:, -1] = replace
    return np.take(src, geo, axis=1).reshape(3, h, w)


def _contrast_degenerate(h: int, w: int) -> int:
    # big_vision: the 256-bin histogram's sum (= pixel count, in float32) / 256, clipped to 255, truncated.
    return int(min(np.float32(h * w) / np.float32(256.0), np.float32(255.0)))


def _numpy_op(x: np.ndarray, name: str, level: float, contrast: str) -> np.ndarray:
    from torch_impl import augment as A
    from torch_impl import fast_ops as O
    if name == "AutoContrast":
        return O.autocontrast(x)
    if name == "Equalize":
        return O.equalize(x)
    if name == "Invert":
        return O.invert(x)
    arg = A.op_argument(name, level)
    if name == "Posterize":
        return O.posterize(x, arg)
    if name == "Solarize":
        return O.solarize(x, arg)
    if name == "SolarizeAdd":
        return O.solarize_add(x, arg)
    if name == "Brightness":
        return O.brightness(x, arg)
    if name == "Color":
        return O.color(x, arg)
    if name == "Sharpness":
        return O.sharpness(x, arg)
    if name == "Contrast" and contrast == "big_vision":
        return O.contrast_constant(x, _contrast_degenerate(*x.shape[1:]), arg)
    return A.apply_op(torch.from_numpy(x), name, level, contrast=contrast).numpy()


def fast_apply_op(image: torch.Tensor, name: str, level: float, *, sign: int = 1, cutout_center=None,
                  replace: int = 128, contrast: str = "big_vision") -> torch.Tensor:
    """``torch_impl.augment.apply_op`` on one uint8 (3, H, W) image, faster: numpy kernels with the same float32
    operations (``torch_impl.fast_ops``) for the colour ops, cached gather tables (or a plain shift) for the
    geometric ops, a slice for Cutout. Parity with apply_op is checked in
    tests/test_fast_pipeline.py and on the recorded randaug_ops fixtures (parity/families/fast_paths.py)."""
    from torch_impl import augment as A
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"fast_apply_op expects a uint8 (3, H, W) tensor, got {image.dtype} {tuple(image.shape)}")
    if (isinstance(replace, bool) or not isinstance(replace, int) or not 0 <= replace <= 255
            or contrast not in A.CONTRAST_MODES):  # apply_op handles (or rejects with a clear error) the rest
        return A.apply_op(image, name, level, sign=sign, replace=replace, cutout_center=cutout_center,
                          contrast=contrast)
    level = A._check_level(level)
    _, h, w = image.shape
    x = image.numpy() if image.is_contiguous() else image.contiguous().numpy()
    if name in _GEOMETRIC:
        return torch.from_numpy(_geometric_apply(x, _geometry(name, level, A._check_sign(sign), h, w), replace))
    if name in _NUMPY_OPS:
        return torch.from_numpy(_numpy_op(x, name, level, contrast))
    if name == "Cutout":
        if cutout_center is None:
            raise ValueError("fast_apply_op: Cutout needs cutout_center")
        pad = A.op_argument(name, level)
        cy, cx = A._check_center(cutout_center, h, w)
        out = x.copy()
        top, bottom = max(0, cy - pad), h - max(0, h - cy - pad)
        left, right = max(0, cx - pad), w - max(0, w - cx - pad)
        if bottom > top and right > left:
            out[:, top:bottom, left:right] = replace
        return torch.from_numpy(out)
    return A.apply_op(image, name, level, sign=sign, replace=replace, cutout_center=cutout_center,
                      contrast=contrast)


def fast_randaugment(image: torch.Tensor, num_ops: int = 2, magnitude: float = 10, *,
                     generator: torch.Generator | None = None, fill: int = 128,
                     contrast: str = "big_vision") -> torch.Tensor:
    """``torch_impl.augment.randaugment`` (same draws from ``generator``, same result) through fast_apply_op."""
    from torch_impl.augment import sample_randaug_params
    for p in sample_randaug_params(num_ops, *image.shape[-2:], generator=generator):
        image = fast_apply_op(image, p["name"], magnitude, sign=p["sign"], cutout_center=p["cutout_center"],
                              replace=fill, contrast=contrast)
    return image

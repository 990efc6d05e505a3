"""TensorFlow's JPEG decoder, reproduced on libjpeg-turbo: ``decode_and_crop`` is
``tf.image.decode_and_crop_jpeg(data, window, channels=3)`` (what big_vision's training op
``decode_jpeg_and_inception_crop`` calls) and ``decode`` is ``tf.io.decode_jpeg(data, channels=3)``, bit for
bit and with the same accept/reject verdict (leaf module; numpy only).

Why a decoder of our own: TF decodes only the crop window (libjpeg-turbo's ``jpeg_crop_scanline`` +
``jpeg_skip_scanlines``), and the window then acts as the image for chroma upsampling, so on 4:2:0 / 4:2:2
JPEGs its edge columns differ from "decode everything, then slice" (up to ~20 levels). No PyPI binding
exposes that partial decode, so ``csrc/tf_jpeg/_tf_jpeg.c`` (built by ``pip install``) makes TF's libjpeg calls
in TF's order (tensorflow/core/lib/jpeg/jpeg_mem.cc): fast integer IDCT by default, fancy upsampling, the
crop x moved down to the iMCU boundary by libjpeg and the requested columns copied out, CMYK converted with
TF's integer formula, and TF's memory source (a truncated file fails exactly where TF's fails: when the rows
the window needs run past the data; a file cut below the window decodes, as in TF).

The libjpeg-turbo library itself comes from the ``imagecodecs`` wheel (PyPI; it ships libjpeg-turbo 3.1 as
a shared library exporting the libjpeg API incl. ``jpeg_crop_scanline``/``jpeg_skip_scanlines``). The
extension loads it with dlopen at first use; ``VIT_PARITY_LIBJPEG=/path/libjpeg.so.8`` picks another
libjpeg-turbo (>= 1.5, libjpeg 8 ABI). If either piece is missing, :func:`status` says why, and callers
fall back to decode-then-crop loudly (:func:`warn_fallback`).

The GIL is released while decoding; each call has its own decompressor, so threads and worker processes
decode independently. ``out=`` takes a preallocated (h, w, 3) uint8 array.

``decode_resize`` is the fast training path's whole per-image step in one C call (GIL released): the
crop-window decode above into a per-thread scratch buffer, then big_vision's ``resize(size)`` (TF
ResizeBilinear, half-pixel centres, float32 lerps in TF's order, clip, truncating cast), ``flip_lr`` and
optionally ``value_range(-1, 1)``, written channel-planar into a caller's buffer (e.g. a row of a batch).
``resize_hwc`` is that resize alone on a decoded array. Both give the bits of the numba and numpy kernels
(torch_impl.pp.backends; checked in tests/test_fast_pipeline.py and the fast_paths family).
``VIT_PARITY_C_RESIZE=0`` (or :func:`set_c_resize`) switches the C resize off: the pipelines then use the
numba / numpy kernels (same bits).
"""
from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["JpegDecodeError", "DecoderStatus", "status", "available", "require", "warn_fallback", "header",
           "decode_and_crop", "decode", "FALLBACK_MESSAGE", "c_resize_available", "c_resize_enabled",
           "set_c_resize", "decode_resize", "resize_hwc"]

ENV_LIBRARY = "VIT_PARITY_LIBJPEG"
ENV_C_RESIZE = "VIT_PARITY_C_RESIZE"
FALLBACK_MESSAGE = ("the exact crop-window JPEG decode (TF's decode_and_crop_jpeg) is unavailable: {reason}. "
                    "Falling back to decode-then-crop, which differs from big_vision in the crop window's "
                    "edge columns on chroma-subsampled JPEGs (up to ~20 levels). Fix: `pip install -e .` "
                    "with a C compiler and the `imagecodecs` wheel installed (see docs/preprocessing.md).")


class JpegDecodeError(ValueError):
    """TF's decoder would fail on this input ("jpeg::Uncompress failed"). ``kind``: "truncated" (the data
    ends before the rows the window needs), "libjpeg" (libjpeg's own error: corrupt or unsupported data),
    "window" (the crop window does not fit), "size" (empty or over TF's 2^29-sample limit), "components"."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{message}")
        self.kind, self.message = kind, message


@dataclasses.dataclass(frozen=True)
class DecoderStatus:
    available: bool
    reason: str                 # why not, when not available
    library: str | None = None  # the libjpeg-turbo shared library loaded
    version: str | None = None  # its version string, when it carries one

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


_lock = threading.Lock()
_status: DecoderStatus | None = None
_ext = None
_warned = False


def _candidates() -> list[str]:
    env = os.environ.get(ENV_LIBRARY)
    if env:
        return [env]
    spec = importlib.util.find_spec("imagecodecs")
    if spec is None or not spec.submodule_search_locations:
        return []
    pkg = Path(list(spec.submodule_search_locations)[0])
    # manylinux wheels: a separate libjpeg-turbo (auditwheel-renamed libjpeg-<hash>.so.8.x) beside the package;
    # other builds link it into the _jpeg8 extension itself.
    libs = sorted(glob.glob(str(pkg.parent / "imagecodecs.libs" / "libjpeg-*.so*")))
    libs = [p for p in libs if "jpegxr" not in p and "jpegxl" not in p]
    return libs + sorted(glob.glob(str(pkg / "_jpeg8*.so")))


def _version_of(path: str) -> str | None:
    try:
        blob = Path(path).read_bytes()
    except OSError:
        return None
    i = blob.find(b"libjpeg-turbo version ")
    if i < 0:
        return None
    return blob[i + len(b"libjpeg-turbo version "):blob.find(b"\0", i)].decode("ascii", "replace").split(" ")[0]


def _load() -> DecoderStatus:
    global _ext
    try:
        from torch_impl.pp import _tf_jpeg as ext
    except ImportError as e:
        return DecoderStatus(False, f"the C extension torch_impl.pp._tf_jpeg is not built ({e}); it is compiled "
                                    "by `pip install -e .` (needs a C compiler and Python's headers)")
    cands = _candidates()
    if not cands:
        return DecoderStatus(False, "no libjpeg-turbo library found: the `imagecodecs` package (which bundles "
                                    f"it) is not installed and {ENV_LIBRARY} is not set")
    errors = []
    for path in cands:
        try:
            ext.init(path)
        except OSError as e:
            errors.append(str(e))
            continue
        _ext = ext
        return DecoderStatus(True, "", path, _version_of(path))
    return DecoderStatus(False, "no usable libjpeg-turbo: " + "; ".join(errors))


def status() -> DecoderStatus:
    """Whether the exact decoder is usable here, and which library it runs (loads it on first call)."""
    global _status
    if _status is None:
        with _lock:
            if _status is None:
                _status = _load()
    return _status


def available() -> bool:
    return status().available


def require():
    st = status()
    if not st.available:
        raise RuntimeError(FALLBACK_MESSAGE.format(reason=st.reason).split(" Falling back")[0] +
                           " Fix: `pip install -e .` with a C compiler and `imagecodecs`.")
    return _ext


def warn_fallback(stacklevel: int = 2) -> None:
    """One warning per process that the exact decoder is missing and decode-then-crop is used instead."""
    global _warned
    st = status()
    if st.available or _warned:
        return
    _warned = True
    warnings.warn(FALLBACK_MESSAGE.format(reason=st.reason), RuntimeWarning, stacklevel=stacklevel + 1)


def _as_buffer(data) -> bytes | memoryview:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return data
    if isinstance(data, np.ndarray):
        return memoryview(np.ascontiguousarray(data).reshape(-1).view(np.uint8))
    raise TypeError(f"JPEG data must be bytes, got {type(data).__name__}")


def _call(fn, *args):
    try:
        return fn(*args)
    except _ext.DecodeError as e:
        kind, message = e.args
        raise JpegDecodeError(kind, message) from None


def header(data, *, start: bool = False) -> tuple[int, int]:
    """(height, width) of the decoded image (TF's ``extract_jpeg_shape`` for a JPEG), headers only.
    ``start=True`` also runs ``jpeg_start_decompress`` (checks the first scan's tables; reads every scan of a
    progressive file), as ``extract_jpeg_shape`` does. Raises :class:`JpegDecodeError` where libjpeg fails."""
    ext = require()
    h, w = _call(ext.header, _as_buffer(data), int(bool(start)))[:2]
    return h, w


def _out(out, h: int, w: int) -> np.ndarray:
    if out is None:
        return np.empty((h, w, 3), np.uint8)
    if out.dtype != np.uint8 or out.shape[:2] != (h, w) or out.shape[2:] != (3,) or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous uint8 array of shape ({h}, {w}, 3), got {out.dtype} "
                         f"{tuple(out.shape)}")
    return out


def decode_and_crop(data, box: Sequence[int], *, fast_dct: bool = True, out: np.ndarray | None = None) -> np.ndarray:
    """``tf.image.decode_and_crop_jpeg(data, [top, left, height, width], channels=3)`` as uint8 (h, w, 3).
    ``fast_dct=False`` is ``dct_method="INTEGER_ACCURATE"``. Raises :class:`JpegDecodeError` where TF fails."""
    ext = require()
    top, left, h, w = (int(v) for v in box)
    if h < 1 or w < 1:
        raise JpegDecodeError("window", f"crop window {tuple(box)} is empty")
    arr = _out(out, h, w)
    _call(ext.decode, _as_buffer(data), arr, top, left, h, w, 1, int(bool(fast_dct)))
    return arr


def decode(data, *, fast_dct: bool = True) -> np.ndarray:
    """``tf.io.decode_jpeg(data, channels=3)`` (fast IDCT, TF's default) as uint8 (H, W, 3)."""
    ext = require()
    buf = _as_buffer(data)
    h, w = _call(ext.header, buf)[:2]
    arr = np.empty((h, w, 3), np.uint8)
    _call(ext.decode, buf, arr, 0, 0, h, w, 0, int(bool(fast_dct)))
    return arr


# ---- the C resize (+ flip, + value_range), fused after the crop-window decode ----------------------------------
_RESIZE_EXT: list = []


def _resize_ext():
    if not _RESIZE_EXT:        # looked up once (this is on the per-image path)
        try:
            from torch_impl.pp import _tf_jpeg as ext
        except ImportError:
            ext = None
        _RESIZE_EXT.append(ext if ext is not None and hasattr(ext, "resize") else None)
    return _RESIZE_EXT[0]


_C_RESIZE = os.environ.get(ENV_C_RESIZE, "1") not in ("0", "false", "no")


def c_resize_available() -> bool:
    """Whether the C extension (with its resize) is built here."""
    return _resize_ext() is not None


def c_resize_enabled() -> bool:
    """Whether the fast path resizes in C (the extension is built and the resize not switched off)."""
    return _C_RESIZE and c_resize_available()


def set_c_resize(on: bool) -> bool:
    """Switch the C resize on or off (tests and the parity checks run every backend); returns the previous
    setting. Switching on without the extension raises."""
    global _C_RESIZE
    if on and not c_resize_available():
        raise ImportError("the C resize needs the extension torch_impl.pp._tf_jpeg (`pip install -e .`)")
    prev, _C_RESIZE = _C_RESIZE, bool(on)
    return prev


def _resize_out(out, oh: int, ow: int, value_range: bool) -> np.ndarray:
    dtype = np.float32 if value_range else np.uint8
    if out is None:
        return np.empty((3, oh, ow), dtype)
    if out.dtype != dtype or out.shape != (3, oh, ow) or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"out must be a writable C-contiguous {np.dtype(dtype).name} array of shape (3, {oh}, "
                         f"{ow}), got {out.dtype} {tuple(out.shape)}")
    return out


def decode_resize(data, box: Sequence[int], size: int | tuple[int, int], *, flip: bool = False,
                  value_range: bool = False, fast_dct: bool = True, out: np.ndarray | None = None) -> np.ndarray:
    """``decode_and_crop(data, box)`` -> big_vision ``resize(size)`` -> ``flip_lr`` (when ``flip``) -> with
    ``value_range`` big_vision's ``value_range(-1, 1)``, in one C call: uint8 (or float32) (3, oh, ow),
    written into ``out`` when given. Raises :class:`JpegDecodeError` where TF's decode fails."""
    ext = require()
    top, left, h, w = (int(v) for v in box)
    if h < 1 or w < 1:
        raise JpegDecodeError("window", f"crop window {tuple(box)} is empty")
    oh, ow = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    arr = _resize_out(out, oh, ow, value_range)
    _call(ext.decode_resize, _as_buffer(data), arr, top, left, h, w, int(bool(fast_dct)), oh, ow, int(bool(flip)),
          int(bool(value_range)))
    return arr


def resize_hwc(crop: np.ndarray, oh: int, ow: int, flip: bool = False, value_range: bool = False,
               out: np.ndarray | None = None) -> np.ndarray:
    """The resize of :func:`decode_resize` on a decoded (h, w, 3) uint8 array (rows may be strided, e.g. a
    slice of a larger image): uint8 (or float32 with ``value_range``) (3, oh, ow)."""
    ext = _resize_ext()
    if ext is None:
        raise ImportError("the C resize needs the extension torch_impl.pp._tf_jpeg (`pip install -e .`)")
    h, w = crop.shape[:2]
    if (crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3 or crop.strides[1:] != (3, 1)
            or (h > 1 and crop.strides[0] < w * 3)):
        crop = np.ascontiguousarray(crop, dtype=np.uint8)
    arr = _resize_out(out, int(oh), int(ow), value_range)
    stride = int(crop.strides[0]) if h > 1 else w * 3
    # the rows as one flat byte view from the first pixel (no copy of a strided slice)
    flat = np.lib.stride_tricks.as_strided(crop, shape=((h - 1) * stride + w * 3,), strides=(1,))
    ext.resize(flat, stride, h, w, arr, int(oh), int(ow), int(bool(flip)), int(bool(value_range)))
    return arr

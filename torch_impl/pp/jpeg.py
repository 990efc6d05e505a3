"""JPEG decoding as big_vision's ``decode`` / ``decode_jpeg_and_inception_crop`` do it (leaf module).

* :func:`decode_jpeg`: big_vision ``decode`` (TF's default fast-DCT decode, ``precise=False``) and
  ``decode(precise=True)`` (INTEGER_ACCURATE), any format TF's ``decode_image`` reads, corrupt files raising
  :class:`ImageDecodeError` naming the file.
* :func:`decode_crop_hwc` / :func:`decode_crop_jpeg`: big_vision's train-op decode,
  ``tf.image.decode_and_crop_jpeg`` (only the crop window, TF's default fast integer IDCT), bit for bit and
  with TF's accept/reject verdict on truncated files, through :mod:`torch_impl.pp.tf_jpeg` (TF's libjpeg
  calls on libjpeg-turbo). TF's partial decode treats the window as the image for chroma upsampling, so on
  4:2:0 / 4:2:2 files its edge columns differ from "decode everything, then slice" (up to ~20 levels); the
  preprocess family's ``train_window_*`` rows check it on 10 encodings. Without the C extension it falls back,
  loudly, to the previous decode (below).
* :func:`decode_jpeg_fast`: whole images (or the rows down to a given one) through ``simplejpeg`` (PyPI,
  bundles libjpeg-turbo 3.x) with the FAST integer IDCT: TF's default ``decode_jpeg``, bit for bit. Used by
  the fallback and by benchmarks; lowering the JPEG header's height to ``bottom + 2`` stops libjpeg-turbo
  after the needed rows (the two extra rows keep the last row's chroma upsampling identical).
"""
from __future__ import annotations

import io
import re
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from torch_impl.pp import tf_jpeg

try:  # optional: the fast-DCT decode (TF's default) needs it; precise=True does not
    import simplejpeg
except ImportError:  # pragma: no cover - depends on the environment
    simplejpeg = None


# ---------------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------------
class ImageDecodeError(ValueError):
    """An encoded image could not be decoded; the message names the file (when known) and the fix.
    ``reason``: "truncated" (the data ends before what the decode needs), "corrupt" (the decoder rejects
    the data), "not_an_image" (no known image format) -- the categories a training run counts."""

    def __init__(self, message: str, *, reason: str = "corrupt"):
        super().__init__(message)
        self.reason = reason


def _where(path) -> str:
    return f"{path}: " if path is not None else ""


def _decode_fast_dct(data: bytes, path) -> "np.ndarray":
    """TF's default JPEG decode (libjpeg-turbo's fast integer IDCT, fancy upsampling) via simplejpeg."""
    if simplejpeg is None:
        raise ImportError(
            "decode_jpeg(precise=False) reproduces TF's default (fast-DCT) JPEG decode, which big_vision's "
            "`decode` and `decode_jpeg_and_inception_crop` use; it needs the `simplejpeg` package "
            "(`pip install simplejpeg`). Or pass precise=True for the accurate decode "
            "(big_vision `decode(precise=True)`).")
    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=False)
    except ValueError as e:
        raise ImageDecodeError(f"{_where(path)}cannot decode this JPEG with the fast DCT ({e}). "
                               "If the file is truncated or corrupt, re-download or re-encode it.") from e


def _cmyk_fast_dct(data: bytes, path) -> "np.ndarray":
    """CMYK/YCCK JPEG with the fast DCT: raw CMYK from libjpeg-turbo, Adobe files un-inverted (as PIL and
    TF both do), then PIL's CMYK -> RGB conversion, which equals TF's for the accurate decode."""
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
        if simplejpeg is None:
            _decode_fast_dct(data, path)  # raises the explanatory ImportError
        try:
            header = simplejpeg.decode_jpeg_header(data)
        except ValueError as e:
            raise ImageDecodeError(f"{_where(path)}not a decodable JPEG ({e}). If the file is truncated or "
                                   "corrupt, re-download or re-encode it.") from e
        arr = _cmyk_fast_dct(data, path) if header[2] in ("CMYK", "YCCK") else _decode_fast_dct(data, path)
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # PIL raises OSError("image file is truncated") here for truncated data
            if im.mode != "RGB":
                im = im.convert("RGB")  # L, CMYK (Adobe-inverted handled by PIL), P, RGBA -> RGB like TF
            arr = np.asarray(im)
    except UnidentifiedImageError as e:
        raise ImageDecodeError(f"{_where(path)}unknown image format (first bytes {data[:8]!r}); expected a "
                               "JPEG (or PNG/GIF/BMP/WebP). The file is probably corrupt or not an image.",
                               reason="not_an_image") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(f"{_where(path)}cannot decode image ({e}). The file is truncated or corrupt: "
                               "re-download or re-encode it (TF fails on it too).") from e
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


_SOF_BASELINE = (0xC0, 0xC1)   # Huffman sequential: the only ones where lowering the height is safe


def _simplejpeg():
    if simplejpeg is None:  # pragma: no cover - depends on the environment
        raise ImportError("the fast JPEG path (torch_impl.pp.jpeg.decode_jpeg_fast) needs simplejpeg "
                          "(libjpeg-turbo bindings from PyPI): `pip install simplejpeg`")
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


def crop_decoder_status():
    """Whether the exact crop-window decode (:mod:`torch_impl.pp.tf_jpeg`) is in use here, and why not."""
    return tf_jpeg.status()


_REASON = {"truncated": "truncated", "libjpeg": "corrupt", "window": "corrupt", "size": "corrupt",
           "components": "corrupt"}


def window_decode_error(e: "tf_jpeg.JpegDecodeError", box: Sequence[int], path=None) -> ImageDecodeError:
    """The :class:`ImageDecodeError` for TF's decode failing on a crop window (the fast paths raise the same)."""
    reason = _REASON.get(e.kind, "corrupt")
    fix = ("the file is truncated: re-download it" if reason == "truncated" else
           "the file is corrupt: re-download or re-encode it")
    return ImageDecodeError(f"{_where(path)}big_vision's decode_and_crop_jpeg fails on the crop window "
                            f"{tuple(int(v) for v in box)} ({e.message}); {fix}", reason=reason)


def decode_crop_hwc(data, box: Sequence[int], *, fast_dct: bool = True, path=None,
                    out: np.ndarray | None = None, exact: bool = True) -> np.ndarray:
    """big_vision's train-op decode of one window: ``tf.image.decode_and_crop_jpeg(data, box, channels=3)``
    as uint8 (h, w, 3), bit for bit and with TF's accept/reject verdict (a window that needs rows past the
    end of a truncated file fails; see :mod:`torch_impl.pp.tf_jpeg`). ``out``: a preallocated (h, w, 3)
    uint8 array to fill. Failures raise :class:`ImageDecodeError` naming ``path`` with ``reason``
    "truncated" or "corrupt".

    Without the exact decoder (C extension not built, no libjpeg-turbo library) this warns once and falls
    back to the previous decode (rows down to the window's bottom, then a slice: the window's edge columns
    differ on chroma-subsampled files). ``exact=False`` asks for that previous decode on purpose (benchmarks
    compare the two)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{_where(path)}JPEG data must be bytes, got {type(data).__name__}")
    if bytes(data[:3]) != b"\xff\xd8\xff":
        raise ImageDecodeError(f"{_where(path)}not a JPEG file (no SOI marker FF D8 FF at the start; first bytes "
                               f"{bytes(data[:8])!r}): big_vision's decode_and_crop_jpeg refuses it",
                               reason="not_an_image")
    if exact and tf_jpeg.available():
        try:
            return tf_jpeg.decode_and_crop(data, box, fast_dct=fast_dct, out=out)
        except tf_jpeg.JpegDecodeError as e:
            raise window_decode_error(e, box, path) from None
    if exact:
        tf_jpeg.warn_fallback(stacklevel=2)
    try:
        h, w = jpeg_shape(data)
        top, left, bh, bw = _check_box(box, h, w)
        rgb = decode_jpeg_fast(data, fast_dct=fast_dct, rows=top + bh)
    except ValueError as e:
        raise ImageDecodeError(f"{_where(path)}cannot decode this JPEG ({e}); if the file is truncated or "
                               "corrupt, re-download or re-encode it") from e
    crop = rgb[top:top + bh, left:left + bw]
    if out is not None:
        out[...] = crop
        return out
    return crop


def check_window(data: bytes, box: Sequence[int], *, path=None) -> None:
    """Raise :class:`ImageDecodeError` where big_vision's ``decode_and_crop_jpeg`` fails on this window, as
    :func:`decode_crop_hwc` would, without decoding the window when the answer is certain (the device-decode
    path, ``runtime.device_decode``, decodes on the GPU but must skip the same samples as the CPU paths).

    A baseline file whose data ends with the EOI marker cannot run out of data before any row, so reading its
    headers and starting the decompressor (libjpeg checks the scan's tables there, as TF's shape op does)
    gives the verdict; anything else -- a cut file, trailing bytes, a progressive file (libjpeg reads all its
    scans before the first row anyway) -- is decoded for the verdict (the same call as the CPU paths)."""
    if not tf_jpeg.available():
        decode_crop_hwc(data, box, path=path)        # (the loud fallback decode)
        return
    try:
        complete = bytes(data[-2:]) == b"\xff\xd9" and _sof(bytes(data))[0] in _SOF_BASELINE
    except ValueError:
        complete = False
    if not complete:
        decode_crop_hwc(data, box, path=path)
        return
    try:
        tf_jpeg.header(data, start=True)
    except tf_jpeg.JpegDecodeError as e:
        reason = _REASON.get(e.kind, "corrupt")
        raise ImageDecodeError(f"{_where(path)}big_vision's decode_and_crop_jpeg fails on this file ({e.message})",
                               reason=reason) from None


def decode_crop_jpeg(data: bytes, box: Sequence[int], *, fast_dct: bool = True, path=None) -> torch.Tensor:
    """big_vision's ``decode_and_crop_jpeg`` of ``box=(top, left, height, width)`` as uint8 (3, h, w):
    :func:`decode_crop_hwc` as a tensor (channels-first view)."""
    return torch.from_numpy(decode_crop_hwc(data, box, fast_dct=fast_dct, path=path)).permute(2, 0, 1)


__all__ = ["ImageDecodeError", "decode_jpeg", "jpeg_shape", "device_decodable", "decode_jpeg_fast",
           "decode_crop_jpeg", "decode_crop_hwc", "check_window", "crop_decoder_status"]

"""big_vision's pp ops as torchvision v2 Transforms: thin wrappers over the kernels of ``torch_impl.pp``
(decode, inception crop, flip, resize, central crop, value_range, RandAugment). They take encoded bytes,
PIL images, plain uint8 tensors and tv_tensors Image/Video alike."""
from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image as _PILImage
from torchvision import tv_tensors
from torchvision.transforms import v2

from torch_impl.pp.crop import (BIG_VISION_ASPECT_RATIO_RANGE, _check_ranges, central_crop, crop_and_resize,
                                sample_inception_box)
from torch_impl.pp.jpeg import ImageDecodeError, decode_crop_jpeg, decode_jpeg
from torch_impl.pp.randaug import (CONTRAST_MODES, DEFAULT_REPLACE, _check_image, _check_level, _check_num_ops,
                                   _replace_values, apply_randaug, sample_randaug_params)
from torch_impl.pp.resize import _pair, resize, resize_small
from torch_impl.pp.tf_math import value_range


def _image_size(x) -> tuple[int, int]:
    """(H, W) of encoded bytes (header only, like tf.image.extract_jpeg_shape), a PIL image or a tensor."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        try:
            with _PILImage.open(io.BytesIO(bytes(x))) as im:
                w, h = im.size
        except (OSError, SyntaxError, ValueError, _PILImage.DecompressionBombError) as e:   # PIL's bad-header errors
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


def decode_jpeg_and_crop(data, box: Sequence[int], size: int | Sequence[int] | None = 224, *,
                         method: str = "bilinear", antialias: bool = False, precise: bool = False,
                         path=None) -> torch.Tensor:
    """The deterministic half of big_vision's ``decode_jpeg_and_inception_crop(size)`` for a given ``box``:
    ``tf.image.decode_and_crop_jpeg`` (only the window; TF's default fast IDCT, ``precise=True`` for
    INTEGER_ACCURATE) then big_vision's ``resize(size)`` (``size=None``: the raw window), uint8 (3, h, w).
    JPEG bytes go through :func:`torch_impl.pp.jpeg.decode_crop_jpeg` (TF's partial decode and its verdict on
    truncated files); other formats named .jpg, which TF's op refuses, are decoded whole and sliced."""
    data = bytes(data)
    if data[:3] == b"\xff\xd8\xff":
        crop = decode_crop_jpeg(data, box, fast_dct=not precise, path=path)
        box = (0, 0, crop.shape[1], crop.shape[2])
    else:
        crop = decode_jpeg(data, precise=precise, path=path)
    return crop_and_resize(crop, box, size, method=method, antialias=antialias)


class DecodeJpegAndInceptionCrop(_ImageTransform):
    """big_vision ``decode_jpeg_and_inception_crop(size)``: box from the file's header, decode, crop, resize.

    Encoded JPEGs are decoded like big_vision: only the crop window (``tf.image.decode_and_crop_jpeg``,
    through :func:`decode_jpeg_and_crop`), which on chroma-subsampled files differs from decoding the whole
    file and slicing in the window's edge columns (docs/preprocessing.md). Decoded inputs (tensors, PIL) are
    cropped directly, like big_vision's ``decode|inception_crop(size)``.
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
        sizes = {_image_size(x) for x in flat_inputs}
        if len(sizes) != 1:
            raise ValueError(f"{type(self).__name__}: the images of one call must share one size, got {sorted(sizes)}")
        (h, w), = sizes
        return {"box": sample_inception_box(h, w, area_range=self.area_range,
                                            aspect_ratio_range=self.aspect_ratio_range, generator=self.generator)}

    def kernel(self, image, params):
        return crop_and_resize(image, params["box"], self.size, method=self.method, antialias=self.antialias)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, (bytes, bytearray, memoryview)):
            return decode_jpeg_and_crop(inpt, params["box"], self.size, method=self.method,
                                        antialias=self.antialias, precise=self.precise)
        return super().transform(inpt, params)


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


class RandAugment17(v2.Transform):
    """big_vision's RandAugment as a torchvision v2 Transform: ``num_ops`` ops drawn uniformly among big_vision's
    16 (always applied), at level ``magnitude`` (0..10), random sign for Rotate/Shear/Translate, uniform
    Cutout centre, fill ``fill`` (128). Works on uint8 tensors (3, H, W), ``tv_tensors.Image`` and RGB PIL
    images; all images of one call share the drawn ops. Pass ``generator`` for reproducible draws.
    """

    def __init__(self, num_ops: int = 2, magnitude: float = 10, fill=DEFAULT_REPLACE, contrast: str = "big_vision",
                 *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.num_ops = _check_num_ops(num_ops)
        self.magnitude = _check_level(magnitude)
        self.fill = _replace_values(fill)
        if contrast not in CONTRAST_MODES:
            raise ValueError(f"contrast must be one of {CONTRAST_MODES}, got {contrast!r}")
        self.contrast = contrast
        self.generator = generator

    # torchvision >= 0.21 calls make_params/transform; 0.19-0.20 call _get_params/_transform. Define both.
    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        sizes = set()
        for inpt in flat_inputs:
            if isinstance(inpt, (tv_tensors.BoundingBoxes, tv_tensors.Mask, tv_tensors.Video)):
                raise TypeError(f"RandAugment17 transforms RGB images only; got a {type(inpt).__name__}, which "
                                f"it would not keep aligned with the image")
            sizes.add(tuple(v2.functional.get_size(inpt)))
        if len(sizes) > 1:
            raise ValueError(f"RandAugment17: all images of one call must have the same size, got {sorted(sizes)}")
        h, w = sizes.pop() if sizes else (1, 1)
        return {"ops": sample_randaug_params(self.num_ops, h, w, generator=self.generator)}

    def _get_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return self.make_params(flat_inputs)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        F = v2.functional
        if isinstance(inpt, _PILImage.Image):
            if inpt.mode != "RGB":
                raise ValueError(f"RandAugment17 needs an RGB PIL image, got mode {inpt.mode!r}; use "
                                 f"image.convert('RGB')")
            out = apply_randaug(F.pil_to_tensor(inpt), params["ops"], self.magnitude, replace=self.fill,
                                contrast=self.contrast)
            return F.to_pil_image(out)
        plain = inpt.as_subclass(torch.Tensor)
        out = apply_randaug(_check_image(plain), params["ops"], self.magnitude, replace=self.fill,
                            contrast=self.contrast)
        if isinstance(inpt, tv_tensors.TVTensor):
            return tv_tensors.wrap(out, like=inpt)
        return out

    def _transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self.transform(inpt, params)

    def extra_repr(self) -> str:
        return (f"num_ops={self.num_ops}, magnitude={self.magnitude:g}, fill={self.fill[0] if len(set(self.fill)) == 1 else self.fill}, "
                f"contrast={self.contrast!r}")


class InceptionCrop(v2.Transform):
    """torchvision v2 Transform: big_vision's inception crop, then a resize to ``size`` like big_vision
    (TF bilinear with half-pixel centres, antialias off by default, uint8 truncation).

    Works on plain tensors (..., C, H, W), ``tv_tensors.Image``/``Video`` and PIL images (all images of one
    call share the box); other tv_tensors (boxes, masks) get the same crop through torchvision's own
    ``crop``/``resize`` kernels. ``generator`` makes it reproducible.
    """

    def __init__(self, size: int | Sequence[int] | None = 224, *, area_range: Sequence[float] = (0.05, 1.0),
                 aspect_ratio_range: Sequence[float] = BIG_VISION_ASPECT_RATIO_RANGE, method: str = "bilinear",
                 antialias: bool = False, generator: torch.Generator | None = None) -> None:
        super().__init__()
        _check_ranges(1, 1, area_range, aspect_ratio_range, 1)
        self.size = None if size is None else _pair(size)
        self.area_range = tuple(float(a) for a in area_range)
        self.aspect_ratio_range = tuple(float(a) for a in aspect_ratio_range)
        self.method = method
        self.antialias = bool(antialias)
        self.generator = generator

    # torchvision >= 0.21 calls make_params/transform; 0.19-0.20 call _get_params/_transform.
    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        sizes = {tuple(v2.functional.get_size(x)) for x in flat_inputs
                 if isinstance(x, torch.Tensor) or _is_pil(x)}
        sizes = {s for s in sizes if len(s) == 2}
        if len(sizes) != 1:
            raise ValueError(f"InceptionCrop: the inputs of one call must share one image size, got {sorted(sizes)}")
        (H, W), = sizes
        box = sample_inception_box(H, W, area_range=self.area_range, aspect_ratio_range=self.aspect_ratio_range,
                                   generator=self.generator)
        return {"box": box}

    _get_params = make_params

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        box = params["box"]
        if _is_pil(inpt):
            out = crop_and_resize(v2.functional.pil_to_tensor(inpt), box, self.size, method=self.method,
                                  antialias=self.antialias)
            return v2.functional.to_pil_image(out, mode=inpt.mode)
        if isinstance(inpt, (tv_tensors.Image, tv_tensors.Video)) or type(inpt) is torch.Tensor:
            out = crop_and_resize(inpt.as_subclass(torch.Tensor), box, self.size, method=self.method,
                                  antialias=self.antialias)
            return out if type(inpt) is torch.Tensor else tv_tensors.wrap(out, like=inpt)
        top, left, h, w = box  # boxes, masks, keypoints: torchvision's kernels do the geometry
        out = v2.functional.crop(inpt, top, left, h, w)
        return out if self.size is None else v2.functional.resize(out, list(self.size))

    _transform = transform

    def extra_repr(self) -> str:
        return (f"size={self.size}, area_range={self.area_range}, aspect_ratio_range={self.aspect_ratio_range}, "
                f"method={self.method!r}, antialias={self.antialias}")


def _is_pil(x) -> bool:
    return isinstance(x, _PILImage.Image)


__all__ = ["decode_jpeg_and_crop", "DecodeJpeg", "DecodeJpegAndInceptionCrop", "FlipLR", "ResizeSmall", "Resize", "CentralCrop",
           "ValueRange", "RandAugment17", "InceptionCrop"]

"""Inception-style random crop as big_vision samples it: ``tf.image.sample_distorted_bounding_box``.

big_vision's ``inception_crop`` and ``decode_jpeg_and_inception_crop`` call TF's sampler with no object
boxes (``use_image_if_no_bounding_boxes=True``, ``min_object_covered=0``), ``area_range=(area_min/100,
area_max/100)`` (5%..100%), ``aspect_ratio_range=(0.75, 1.33)`` (TF's default; note 1.33, not 4/3) and
TF's default ``max_attempts=100``. TF's algorithm (``GenerateRandomCrop`` in the TF kernel), which we
re-implement here with a ``torch.Generator`` (same distribution, not the same random stream):

1. aspect ratio ``r ~ U[lo, hi)`` (float32);
2. ``h_min = round(sqrt(min_area / r))``, ``h_max = round(sqrt(max_area / r))`` (float32, round half to
   even); ``h_max`` is lowered until ``round(h_max * r) <= W``, then capped at ``H``;
3. the height is drawn *uniformly as an integer* in ``[min(h_min, h_max), h_max]`` -- so the crop's
   area fraction A has density ~ 1/sqrt(A), unlike torchvision's RandomResizedCrop, which draws the area
   uniformly (and then the side lengths);
4. ``w = round(h * r)``; if the area is below the minimum the height is raised by one, if above the
   maximum lowered by one; the attempt fails if the box still breaks a constraint or does not fit;
5. offsets ``top ~ U{0, .., H - h - 1}`` and ``left ~ U{0, .., W - w - 1}`` (TF draws ``Uniform(H - h)``,
   which excludes ``H - h``: a box never touches the bottom/right edge unless it spans the whole side);
6. after ``max_attempts`` failed attempts the whole image is returned. For ordinary photos this almost
   never happens (capping ``h_max`` makes nearly every attempt succeed); it does for very elongated or
   tiny images, e.g. 100x2660 falls back in ~40% of calls and 10x400 always.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from torch_impl.preprocess import _pair, resize

BIG_VISION_ASPECT_RATIO_RANGE = (0.75, 1.33)  # TF's default, which big_vision passes on (ratio_max=1.33)
TF_MAX_ATTEMPTS = 100


def _lrintf(x: np.ndarray) -> np.ndarray:
    """C's lrintf in the default rounding mode: round half to even (np.rint does the same)."""
    return np.rint(x).astype(np.int64)


def _uniform_int(n: np.ndarray, generator) -> np.ndarray:
    """Uniform integers in [0, n) for an array of n >= 1 (TF: SimplePhilox::Uniform(n)), drawn from the
    torch generator (float64 draws: the bias is below 2**-40 for any image size)."""
    u = torch.rand(n.shape, dtype=torch.float64, generator=generator).numpy()
    return np.minimum(np.floor(u * n).astype(np.int64), n - 1)


def _check_ranges(height, width, area_range, aspect_ratio_range, max_attempts):
    if int(height) <= 0 or int(width) <= 0:
        raise ValueError(f"inception crop: image size must be positive, got {height}x{width}")
    a0, a1 = (float(v) for v in area_range)
    if not (0 < a0 <= 1 and 0 < a1 <= 1):
        raise ValueError(f"inception crop: area_range must lie in (0, 1], got {tuple(area_range)} "
                         "(big_vision's area_min/area_max are percents: divide by 100)")
    r0, r1 = (float(v) for v in aspect_ratio_range)
    if not (r0 > 0 and r1 > 0):
        raise ValueError(f"inception crop: aspect_ratio_range must be positive, got {tuple(aspect_ratio_range)}")
    if int(max_attempts) <= 0:
        raise ValueError(f"inception crop: max_attempts must be positive, got {max_attempts}")


def sample_inception_boxes(height: int, width: int, n: int, *, area_range: Sequence[float] = (0.05, 1.0),
                           aspect_ratio_range: Sequence[float] = BIG_VISION_ASPECT_RATIO_RANGE,
                           max_attempts: int = TF_MAX_ATTEMPTS,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` independent boxes as an int64 tensor (n, 4) of (top, left, h, w); see the module docstring."""
    _check_ranges(height, width, area_range, aspect_ratio_range, max_attempts)
    H, W = int(height), int(width)
    f32 = np.float32
    min_rel, max_rel = f32(area_range[0]), f32(area_range[1])
    r_lo, r_hi = f32(aspect_ratio_range[0]), f32(aspect_ratio_range[1])
    # float32 products in TF's order: relative_area * width * height
    min_area = min_rel * f32(W) * f32(H)
    max_area = max_rel * f32(W) * f32(H)
    eps = float(f32(1e-7))  # TF's kEps is a float constant used in double arithmetic

    boxes = np.tile(np.array([0, 0, H, W], np.int64), (n, 1))  # the fallback: the whole image
    pending = np.arange(n)
    if min_rel > max_rel:  # TF: GenerateRandomCrop always fails -> whole image
        return torch.from_numpy(boxes)
    # The arithmetic runs in numpy float32 (IEEE, like TF's C++ floats); the randomness comes from the
    # torch generator. Each pass is one attempt for every box still pending.
    for _ in range(int(max_attempts)):
        if pending.size == 0:
            break
        m = pending.size
        u = torch.rand(m, dtype=torch.float32, generator=generator).numpy()
        ratio = u * (r_hi - r_lo) + r_lo
        h = _lrintf(np.sqrt(min_area / ratio))
        h_max = _lrintf(np.sqrt(max_area / ratio))
        too_wide = _lrintf(h_max.astype(f32) * ratio) > W
        if too_wide.any():
            alt = ((W + 0.5 - eps) / ratio.astype(np.float64)).astype(np.int64)  # static_cast<int> truncates
            alt = np.where(_lrintf(alt.astype(f32) * ratio) > W, alt - 1, alt)
            h_max = np.where(too_wide, alt, h_max)
        h_max = np.minimum(h_max, H)
        h = np.minimum(h, h_max)
        grow = h < h_max
        if grow.any():
            h = np.where(grow, h + _uniform_int(np.maximum(h_max - h + 1, 1), generator), h)
        w = _lrintf(h.astype(f32) * ratio)
        area = (w * h).astype(f32)
        low = area < min_area
        h = np.where(low, h + 1, h)
        w = np.where(low, _lrintf(h.astype(f32) * ratio), w)
        area = (w * h).astype(f32)
        high = area > max_area
        h = np.where(high, h - 1, h)
        w = np.where(high, _lrintf(h.astype(f32) * ratio), w)
        area = (w * h).astype(f32)
        ok = (area >= min_area) & (area <= max_area) & (w <= W) & (h <= H) & (w > 0) & (h > 0)
        # TF draws Uniform(H - h) (values 0 .. H - h - 1) when h < H, else 0; the same for the left offset.
        top = np.where(h < H, _uniform_int(np.maximum(H - h, 1), generator), 0)
        left = np.where(w < W, _uniform_int(np.maximum(W - w, 1), generator), 0)
        boxes[pending[ok]] = np.stack([top, left, h, w], axis=1)[ok]
        pending = pending[~ok]
    return torch.from_numpy(boxes)


def sample_inception_box(height: int, width: int, *, area_range: Sequence[float] = (0.05, 1.0),
                         aspect_ratio_range: Sequence[float] = BIG_VISION_ASPECT_RATIO_RANGE,
                         max_attempts: int = TF_MAX_ATTEMPTS,
                         generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
    """One crop box ``(top, left, h, w)`` distributed like big_vision's inception crop on an H x W image."""
    b = sample_inception_boxes(height, width, 1, area_range=area_range, aspect_ratio_range=aspect_ratio_range,
                               max_attempts=max_attempts, generator=generator)[0]
    return int(b[0]), int(b[1]), int(b[2]), int(b[3])


def crop_and_resize(image: torch.Tensor, box: Sequence[int], size: int | Sequence[int] | None, *,
                    method: str = "bilinear", antialias: bool = False) -> torch.Tensor:
    """``tf.slice`` by the box, then big_vision's ``resize(size, method, antialias)`` (uint8 in, uint8 out)."""
    top, left, h, w = (int(v) for v in box)
    H, W = image.shape[-2:]
    if top < 0 or left < 0 or h <= 0 or w <= 0 or top + h > H or left + w > W:
        raise ValueError(f"crop box (top={top}, left={left}, h={h}, w={w}) does not fit the {H}x{W} image")
    crop = image[..., top:top + h, left:left + w]
    if size is None:
        return crop
    return resize(crop, size, method=method, antialias=antialias)


def inception_crop(image: torch.Tensor, size: int | Sequence[int] | None = None, *, area_range=(0.05, 1.0),
                   aspect_ratio_range=BIG_VISION_ASPECT_RATIO_RANGE, method: str = "bilinear",
                   antialias: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """big_vision ``inception_crop(size, area_min, area_max, method, antialias)`` on a (..., 3, H, W) tensor."""
    H, W = image.shape[-2:]
    box = sample_inception_box(H, W, area_range=area_range, aspect_ratio_range=aspect_ratio_range,
                               generator=generator)
    return crop_and_resize(image, box, size, method=method, antialias=antialias)


def _v2():
    from torchvision.transforms import v2
    return v2


class InceptionCrop(_v2().Transform):
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
        v2 = _v2()
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
        v2 = _v2()
        from torchvision import tv_tensors
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
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, Image.Image)


__all__ = ["sample_inception_box", "sample_inception_boxes", "crop_and_resize", "inception_crop",
           "InceptionCrop", "BIG_VISION_ASPECT_RATIO_RANGE", "TF_MAX_ATTEMPTS"]

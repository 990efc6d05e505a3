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

import torch

from torch_impl.preprocess import _pair, resize

BIG_VISION_ASPECT_RATIO_RANGE = (0.75, 1.33)  # TF's default, which big_vision passes on (ratio_max=1.33)
TF_MAX_ATTEMPTS = 100
_F32 = torch.float32


def _lrintf(x: torch.Tensor) -> torch.Tensor:
    """C's lrintf in the default rounding mode: round half to even (torch.round does the same)."""
    return torch.round(x).to(torch.int64)


def _uniform_int(n: torch.Tensor, generator) -> torch.Tensor:
    """Exactly-uniform-enough integers in [0, n) for a tensor of n >= 1 (TF: SimplePhilox::Uniform(n))."""
    u = torch.rand(n.shape, dtype=torch.float64, generator=generator)
    return torch.minimum((u * n.to(torch.float64)).floor().to(torch.int64), n - 1)


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
    min_rel, max_rel = torch.tensor([float(area_range[0]), float(area_range[1])], dtype=_F32)
    r_lo, r_hi = torch.tensor([float(aspect_ratio_range[0]), float(aspect_ratio_range[1])], dtype=_F32)
    # float32 products in TF's order: relative_area * width * height
    min_area = min_rel * W * H
    max_area = max_rel * W * H
    eps = float(torch.tensor(1e-7, dtype=_F32))  # TF's kEps is a float constant used in double arithmetic

    boxes = torch.tensor([0, 0, H, W], dtype=torch.int64).repeat(n, 1)  # the fallback: the whole image
    pending = torch.arange(n)
    if min_rel > max_rel:  # TF: GenerateRandomCrop always fails -> whole image
        return boxes
    for _ in range(int(max_attempts)):
        if pending.numel() == 0:
            break
        m = pending.numel()
        ratio = torch.rand(m, dtype=_F32, generator=generator) * (r_hi - r_lo) + r_lo
        h = _lrintf(torch.sqrt(min_area / ratio))
        h_max = _lrintf(torch.sqrt(max_area / ratio))
        too_wide = _lrintf(h_max.to(_F32) * ratio) > W
        if bool(too_wide.any()):
            alt = ((W + 0.5 - eps) / ratio.to(torch.float64)).to(torch.int64)  # truncation, as static_cast<int>
            alt = torch.where(_lrintf(alt.to(_F32) * ratio) > W, alt - 1, alt)
            h_max = torch.where(too_wide, alt, h_max)
        h_max = h_max.clamp_max(H)
        h = torch.minimum(h, h_max)
        grow = h < h_max
        if bool(grow.any()):
            h = torch.where(grow, h + _uniform_int((h_max - h + 1).clamp_min(1), generator), h)
        w = _lrintf(h.to(_F32) * ratio)
        area = (w * h).to(_F32)
        low = area < min_area
        h = torch.where(low, h + 1, h)
        w = torch.where(low, _lrintf(h.to(_F32) * ratio), w)
        area = (w * h).to(_F32)
        high = area > max_area
        h = torch.where(high, h - 1, h)
        w = torch.where(high, _lrintf(h.to(_F32) * ratio), w)
        area = (w * h).to(_F32)
        ok = (area >= min_area) & (area <= max_area) & (w <= W) & (h <= H) & (w > 0) & (h > 0)
        # TF draws Uniform(H - h) (values 0 .. H - h - 1) when h < H, else 0; the same for the left offset.
        top = torch.where(h < H, _uniform_int((H - h).clamp_min(1), generator), 0)
        left = torch.where(w < W, _uniform_int((W - w).clamp_min(1), generator), 0)
        done = pending[ok]
        boxes[done] = torch.stack([top[ok], left[ok], h[ok], w[ok]], dim=1)
        pending = pending[~ok]
    return boxes


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

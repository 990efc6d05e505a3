"""big_vision's RandAugment in PyTorch, bit-exact on uint8 images.

big_vision's ``randaug(num_layers, magnitude)`` (``big_vision/pp/archive/autoaugment.py``, a fork of the
TPU EfficientNet AutoAugment code) draws ``num_layers`` ops uniformly among 16 and always applies them
(the per-op ``prob`` it samples is discarded). ``apply_op`` is the functional kernel for one op; it
reproduces big_vision's level-to-argument mapping, its uint8 arithmetic and its TensorFlow rounding,
including the known quirks (see docs/augmentation.md for the table):

* Solarize at level 10 has threshold 256; on uint8 that wraps to 0, so every pixel is inverted.
* Posterize at levels 0-2 keeps 0 bits: a shift by 8, which TF clamps to 7, so the output is {0, 128}.
* Contrast blends towards ``pixel_count / 256`` (clipped to 255, 196 at 224x224) instead of the mean grey
  (``contrast="big_vision"``); ``contrast="fixed"`` uses the mean grey.
* Rotate by positive degrees turns the content counter-clockwise on screen (its docstring says
  clockwise); TranslateX(+p) moves content left, TranslateY(+p) up; ShearX(+s) reads x + s*y.
* Geometric ops use nearest-neighbour sampling with TF's ``std::round`` (half away from zero) and fill
  the empty area with ``replace`` (128) through big_vision's wrap/unwrap alpha channel.
* Sharpness blurs with PIL's SMOOTH kernel (1 1 1 / 1 5 1 / 1 1 1, /13) on the interior only and keeps
  the original border pixels.

Images are ``torch.uint8`` tensors of shape (3, H, W) or (N, 3, H, W) (the same op for every image of a
batch). All float arithmetic is float32 with the operation order TensorFlow uses, so outputs are
bit-identical to big_vision, not merely close.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from torch_impl.pp.geometry import _projective_nearest
from torch_impl.pp.tf_math import _F32, _blend, _f32, _round_half_away, _to_uint8_trunc, rgb_to_grayscale


__all__ = ["OPS", "SIGNED_OPS", "MAX_LEVEL", "CONTRAST_MODES", "apply_op", "op_argument", "randaugment",
           "sample_randaug_params", "apply_randaug", "sample_cutout_center", "rgb_to_grayscale",
           "geometry_coefficients"]


MAX_LEVEL = 10.0          # big_vision's _MAX_LEVEL


CUTOUT_CONST = 40         # big_vision's randaug HParams(cutout_const=40, translate_const=100)


TRANSLATE_CONST = 100


DEFAULT_REPLACE = 128     # big_vision's replace_value = [128] * 3


# The 16 ops in big_vision's order (its random op index selects from this list).
OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
       "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "Cutout", "SolarizeAdd")


# Only these get big_vision's random negation of their argument.
SIGNED_OPS = ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY")


CONTRAST_MODES = ("big_vision", "fixed")


# ---- validation ------------------------------------------------------------------------------------
def _check_image(image: Any, what: str = "image") -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{what} must be a torch.Tensor of dtype uint8 and shape (3, H, W) or (N, 3, H, W), "
                         f"got {type(image).__name__}; convert PIL images with "
                         f"torchvision.transforms.v2.functional.pil_to_tensor")
    if image.dtype != torch.uint8:
        raise ValueError(f"{what} must have dtype torch.uint8 (big_vision's randaug works on uint8 pixels), "
                         f"got {image.dtype}; convert with torchvision.transforms.v2.functional.to_dtype("
                         f"x, torch.uint8, scale=True)")
    if image.ndim not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"{what} must have shape (3, H, W) or (N, 3, H, W) (RGB, channels first), got "
                         f"{tuple(image.shape)}")
    if image.shape[-1] < 1 or image.shape[-2] < 1:
        raise ValueError(f"{what} must not be empty, got shape {tuple(image.shape)}")
    return image


def _check_level(level: Any) -> float:
    # big_vision maps a level linearly (level / _MAX_LEVEL) and accepts magnitudes above 10: its configs use
    # randaug(2, 15) and randaug(2, 20). Only negative or non-finite levels are meaningless.
    if isinstance(level, bool) or not isinstance(level, (int, float)):
        raise ValueError(f"level must be a number >= 0 (big_vision's scale: 10 = _MAX_LEVEL), got {level!r} "
                         f"({type(level).__name__})")
    level = float(level)
    if not (0.0 <= level < float("inf")):  # also rejects NaN
        raise ValueError(f"level must be a finite number >= 0 (big_vision's scale: 10 = _MAX_LEVEL), got {level!r}")
    return level


def _check_name(name: Any) -> str:
    if name not in OPS:
        raise ValueError(f"unknown randaug op {name!r}; big_vision's 16 ops are: {', '.join(OPS)}")
    return name


def _check_sign(sign: Any) -> int:
    if isinstance(sign, bool) or sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    return int(sign)


def _replace_values(replace: Any) -> tuple[int, int, int]:
    vals = (replace,) * 3 if isinstance(replace, (int, float)) and not isinstance(replace, bool) else tuple(replace)
    if len(vals) != 3 or any(isinstance(v, bool) or not float(v).is_integer() or not 0 <= v <= 255 for v in vals):
        raise ValueError(f"replace must be an integer in [0, 255] or three of them (one per channel), got {replace!r}")
    return tuple(int(v) for v in vals)  # type: ignore[return-value]


# ---- level -> argument (big_vision's level_to_arg with HParams(cutout_const=40, translate_const=100)) --
def op_argument(name: str, level: float, sign: int = 1):
    """The argument big_vision passes to op ``name`` at ``level`` (Python double arithmetic, as it does).

    Signed ops return the already-negated value for ``sign=-1``; ops without an argument return None.
    """
    name, level, sign = _check_name(name), _check_level(level), _check_sign(sign)
    frac = level / MAX_LEVEL
    if name in ("AutoContrast", "Equalize", "Invert"):
        return None
    if name == "Rotate":
        return sign * (frac * 30.0)  # degrees
    if name == "Posterize":
        return int(frac * 4)  # bits
    if name == "Solarize":
        return int(frac * 256)  # threshold: 256 at level 10
    if name == "SolarizeAdd":
        return int(frac * 110)  # addition (threshold stays 128)
    if name in ("Color", "Contrast", "Brightness", "Sharpness"):
        return frac * 1.8 + 0.1  # enhance factor
    if name in ("ShearX", "ShearY"):
        return sign * (frac * 0.3)
    if name in ("TranslateX", "TranslateY"):
        return sign * (frac * float(TRANSLATE_CONST))  # pixels
    if name == "Cutout":
        return int(frac * CUTOUT_CONST)  # half size of the square
    raise AssertionError(name)


def _grey3(grey: torch.Tensor) -> torch.Tensor:
    return grey.expand(*grey.shape[:-3], 3, *grey.shape[-2:]).clone()


# ---- colour ops ------------------------------------------------------------------------------------
def _autocontrast(image: torch.Tensor) -> torch.Tensor:
    # Per channel: scale so min -> 0, max -> 255 (float32, clip, truncate); a flat channel is unchanged.
    lo = image.amin(dim=(-2, -1), keepdim=True).to(_F32)
    hi = image.amax(dim=(-2, -1), keepdim=True).to(_F32)
    flat = hi <= lo
    scale = _f32(255.0) / torch.where(flat, torch.ones_like(hi), hi - lo)
    offset = -lo * scale
    out = _to_uint8_trunc((image.to(_F32) * scale + offset).clamp(0.0, 255.0))
    return torch.where(flat, image, out)


def _equalize(image: torch.Tensor) -> torch.Tensor:
    # PIL-style equalize per channel: step = (pixels - count of the brightest present value) // 255,
    # lut = (cumsum + step // 2) // step shifted right by one bin, clipped; step 0 -> unchanged.
    shape = image.shape
    flat = image.reshape(-1, shape[-2] * shape[-1]).to(torch.int64)  # (N*3, HW)
    rows = flat.shape[0]
    hist = torch.zeros(rows, 256, dtype=torch.int64)
    hist.scatter_add_(1, flat, torch.ones_like(flat))
    top = flat.amax(dim=1, keepdim=True)
    step = (hist.sum(dim=1, keepdim=True) - hist.gather(1, top)) // 255
    safe = torch.where(step == 0, torch.ones_like(step), step)
    lut = (hist.cumsum(dim=1) + step // 2) // safe
    lut = torch.cat([torch.zeros(rows, 1, dtype=torch.int64), lut[:, :-1]], dim=1).clamp(0, 255)
    out = torch.where(step == 0, flat, lut.gather(1, flat))
    return out.to(torch.uint8).reshape(shape)


def _posterize(image: torch.Tensor, bits: int) -> torch.Tensor:
    # The shift 8 - bits becomes a uint8 tensor (a negative shift, from levels above 10 where bits > 8,
    # wraps: -2 -> 254), and TF's bitwise shifts clamp it to 7 on uint8: 0 bits (shift 8) acts as shift 7,
    # and so does every bits > 8. Verified against big_vision at levels 12..30.
    shift = min((8 - bits) % 256, 7)
    return (image >> shift) << shift


def _solarize(image: torch.Tensor, threshold: int) -> torch.Tensor:
    # tf.where(image < threshold, image, 255 - image) with the threshold converted to uint8: 256 wraps to 0,
    # so level 10 inverts every pixel.
    thr = int(threshold) % 256
    return torch.where(image < thr, image, 255 - image)


def _solarize_add(image: torch.Tensor, addition: int, threshold: int = 128) -> torch.Tensor:
    added = (image.to(torch.int64) + int(addition)).clamp(0, 255).to(torch.uint8)
    return torch.where(image < threshold, added, image)


def _contrast(image: torch.Tensor, factor: float, mode: str) -> torch.Tensor:
    grey = rgb_to_grayscale(image)
    h, w = image.shape[-2:]
    if mode == "big_vision":
        # big_vision sums the 256-bin histogram (= the pixel count) and divides by 256: not a mean.
        mean = torch.full(grey.shape[:-3] + (1, 1, 1), float(h * w), dtype=_F32) / _f32(256.0)
    else:
        mean = grey.to(torch.float64).mean(dim=(-3, -2, -1), keepdim=True).to(_F32)
    mean = _to_uint8_trunc(mean.clamp(0.0, 255.0))
    degenerate = mean.expand(*image.shape)
    return _blend(degenerate, image, factor)


def _sharpness(image: torch.Tensor, factor: float) -> torch.Tensor:
    # PIL's SMOOTH kernel applied as TF's depthwise_conv2d(VALID): taps summed in row-major order in float32
    # (bit-exact with TF's CPU kernel); interior clipped and truncated; border pixels keep the original.
    h, w = image.shape[-2:]
    result = image.clone()
    if h >= 3 and w >= 3:
        x = image.to(_F32)
        k1, k5 = _f32(1.0) / _f32(13.0), _f32(5.0) / _f32(13.0)
        acc = torch.zeros(*image.shape[:-2], h - 2, w - 2, dtype=_F32)
        for r in range(3):
            for c in range(3):
                acc = acc + x[..., r:r + h - 2, c:c + w - 2] * (k5 if (r, c) == (1, 1) else k1)
        result[..., 1:-1, 1:-1] = _to_uint8_trunc(acc.clamp(0.0, 255.0))
    return _blend(result, image, factor)


def _rotate(image: torch.Tensor, degrees: float, replace) -> torch.Tensor:
    # big_vision: degrees (a float32 tensor after its random negation) * (pi / 180) in float32, then tfa's
    # rotation about ((W-1)/2, (H-1)/2): [cos, -sin, x_off, sin, cos, y_off] computed in float32.
    radians = _f32(degrees) * _f32(math.pi / 180.0)
    # float32 sin/cos, correctly rounded (glibc's sinf/cosf, which TF uses for a scalar, are).
    cos = _f32(math.cos(float(radians)))
    sin = _f32(math.sin(float(radians)))
    h, w = image.shape[-2:]
    hm1, wm1 = _f32(float(h)) - _f32(1.0), _f32(float(w)) - _f32(1.0)
    x_off = (wm1 - (cos * wm1 - sin * hm1)) / _f32(2.0)
    y_off = (hm1 - (sin * wm1 + cos * hm1)) / _f32(2.0)
    return _projective_nearest(image, (cos, -sin, x_off, sin, cos, y_off), replace)


def _shear_x(image, level, replace):
    one, zero = _f32(1.0), _f32(0.0)
    return _projective_nearest(image, (one, _f32(level), zero, zero, one, zero), replace)


def _shear_y(image, level, replace):
    one, zero = _f32(1.0), _f32(0.0)
    return _projective_nearest(image, (one, zero, zero, _f32(level), one, zero), replace)


def _translate(image, dx: float, dy: float, replace):
    # big_vision calls tfa translate with [-pixels, 0] (x) or [0, -pixels] (y); tfa's matrix then reads the
    # input at (x - tx, y - ty) = (x + pixels, y) : content moves left (up) for positive pixels.
    one, zero = _f32(1.0), _f32(0.0)
    tx, ty = -_f32(dx), -_f32(dy)
    return _projective_nearest(image, (one, zero, -tx, zero, one, -ty), replace)


def _cutout(image, pad: int, center: tuple[int, int], replace):
    # Rows max(0, cy - pad) .. min(H, cy + pad) (exclusive) and likewise columns get ``replace``.
    h, w = image.shape[-2:]
    cy, cx = center
    top, bottom = max(0, cy - pad), h - max(0, h - cy - pad)
    left, right = max(0, cx - pad), w - max(0, w - cx - pad)
    out = image.clone()
    if bottom > top and right > left:
        fill = torch.tensor(replace, dtype=torch.uint8).reshape(3, 1, 1)
        out[..., top:bottom, left:right] = fill
    return out


def _check_center(center: Any, h: int, w: int) -> tuple[int, int]:
    try:
        cy, cx = (int(v) for v in center)
        ok = all(float(v) == int(v) for v in center)
    except (TypeError, ValueError):
        ok = False
    if not ok or not (0 <= cy < h and 0 <= cx < w):
        raise ValueError(f"cutout_center must be integers (cy, cx) with 0 <= cy < H={h} and 0 <= cx < W={w} "
                         f"(big_vision draws them uniformly in that range), got {center!r}")
    return cy, cx


def sample_cutout_center(height: int, width: int, generator: torch.Generator | None = None) -> tuple[int, int]:
    """A cutout centre uniform over the pixels, like big_vision's two tf.random_uniform int32 draws."""
    cy = int(torch.randint(0, height, (1,), generator=generator))
    cx = int(torch.randint(0, width, (1,), generator=generator))
    return cy, cx


def geometry_coefficients(name: str, h: int, w: int, level, sign) -> tuple[torch.Tensor, ...]:
    """The six float32 (n, 1, 1) coefficients of big_vision's Rotate/ShearX/ShearY/TranslateX/TranslateY at
    per-sample ``level``/``sign`` (host tensors), with torch_impl.augment's arithmetic."""
    lv = torch.as_tensor(level, dtype=torch.float64).reshape(-1)
    sg = torch.as_tensor(sign, dtype=torch.float64).reshape(-1).expand(lv.shape)
    frac = lv / MAX_LEVEL
    n = lv.shape[0]
    one, zero = torch.ones(n, dtype=_F32), torch.zeros(n, dtype=_F32)
    if name == "Rotate":
        rad = (sg * (frac * 30.0)).to(_F32) * torch.tensor(math.pi / 180.0, dtype=_F32)
        # Python's math.cos/sin (libm, double) rounded to float32, exactly as torch_impl.augment does.
        cos = torch.tensor([math.cos(float(r)) for r in rad], dtype=torch.float64).to(_F32)
        sin = torch.tensor([math.sin(float(r)) for r in rad], dtype=torch.float64).to(_F32)
        hm1 = torch.tensor(float(h), dtype=_F32) - torch.tensor(1.0, dtype=_F32)
        wm1 = torch.tensor(float(w), dtype=_F32) - torch.tensor(1.0, dtype=_F32)
        two = torch.tensor(2.0, dtype=_F32)
        x_off = (wm1 - (cos * wm1 - sin * hm1)) / two
        y_off = (hm1 - (sin * wm1 + cos * hm1)) / two
        coeffs = (cos, -sin, x_off, sin, cos, y_off)
    elif name in ("ShearX", "ShearY"):
        s = (sg * (frac * 0.3)).to(_F32)
        coeffs = (one, s, zero, zero, one, zero) if name == "ShearX" else (one, zero, zero, s, one, zero)
    elif name in ("TranslateX", "TranslateY"):
        # augment._translate: t = -float32(pixels); the matrix reads the input at x - t (content moves left/up).
        t = -((sg * (frac * float(TRANSLATE_CONST))).to(_F32))
        coeffs = (one, zero, -t, zero, one, zero) if name == "TranslateX" else (one, zero, zero, zero, one, -t)
    else:
        raise ValueError(f"{name} is not a geometric op")
    return tuple(c.view(-1, 1, 1) for c in coeffs)


# ---- the kernel -------------------------------------------------------------------------------------
def apply_op(image: torch.Tensor, name: str, level: float, *, sign: int = 1, replace=DEFAULT_REPLACE,
             cutout_center: tuple[int, int] | None = None, contrast: str = "big_vision",
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply big_vision randaug op ``name`` at ``level`` (0..10) to a uint8 (3, H, W) or (N, 3, H, W) image.

    ``sign`` (+1/-1) is big_vision's random negation, used by Rotate, ShearX/Y and TranslateX/Y only.
    ``replace`` fills the area uncovered by geometric ops and Cutout (big_vision: 128).
    ``cutout_center=(cy, cx)`` places Cutout's square; None draws it uniformly with ``generator``.
    ``contrast="big_vision"`` reproduces big_vision's Contrast (blend towards pixel_count/256, clipped);
    ``"fixed"`` blends towards the mean grey instead.
    """
    image = _check_image(image)
    name, level, sign = _check_name(name), _check_level(level), _check_sign(sign)
    replace = _replace_values(replace)
    if contrast not in CONTRAST_MODES:
        raise ValueError(f"contrast must be one of {CONTRAST_MODES}, got {contrast!r}")
    arg = op_argument(name, level, sign)
    if name == "AutoContrast":
        return _autocontrast(image)
    if name == "Equalize":
        return _equalize(image)
    if name == "Invert":
        return 255 - image
    if name == "Rotate":
        return _rotate(image, arg, replace)
    if name == "Posterize":
        return _posterize(image, arg)
    if name == "Solarize":
        return _solarize(image, arg)
    if name == "SolarizeAdd":
        return _solarize_add(image, arg)
    if name == "Color":
        return _blend(_grey3(rgb_to_grayscale(image)), image, arg)
    if name == "Contrast":
        return _contrast(image, arg, contrast)
    if name == "Brightness":
        return _blend(torch.zeros_like(image), image, arg)
    if name == "Sharpness":
        return _sharpness(image, arg)
    if name == "ShearX":
        return _shear_x(image, arg, replace)
    if name == "ShearY":
        return _shear_y(image, arg, replace)
    if name == "TranslateX":
        return _translate(image, arg, 0.0, replace)
    if name == "TranslateY":
        return _translate(image, 0.0, arg, replace)
    if name == "Cutout":
        h, w = image.shape[-2:]
        center = sample_cutout_center(h, w, generator) if cutout_center is None else _check_center(cutout_center, h, w)
        return _cutout(image, arg, center, replace)
    raise AssertionError(name)


# ---- RandAugment(num_ops, magnitude) ----------------------------------------------------------------
def sample_randaug_params(num_ops: int, height: int, width: int, *,
                          generator: torch.Generator | None = None) -> list[dict]:
    """Draw big_vision's randomness for ``num_ops`` layers: op uniform among the 16, a sign (+1/-1 with
    probability 1/2; used by the signed ops only) and a cutout centre (used by Cutout only)."""
    params = []
    for _ in range(int(num_ops)):
        op = OPS[int(torch.randint(0, len(OPS), (1,), generator=generator))]
        sign = 1 if int(torch.randint(0, 2, (1,), generator=generator)) else -1
        center = sample_cutout_center(height, width, generator)
        params.append({"name": op, "sign": sign, "cutout_center": center})
    return params


def apply_randaug(image: torch.Tensor, params: Sequence[dict], magnitude: float, *, replace=DEFAULT_REPLACE,
                  contrast: str = "big_vision") -> torch.Tensor:
    """Apply the ops drawn by :func:`sample_randaug_params` in order, all at level ``magnitude``."""
    for p in params:
        image = apply_op(image, p["name"], magnitude, sign=p["sign"], replace=replace,
                         cutout_center=p["cutout_center"], contrast=contrast)
    return image


def _check_num_ops(num_ops: Any) -> int:
    if isinstance(num_ops, bool) or not isinstance(num_ops, int) or num_ops < 0:
        raise ValueError(f"num_ops must be a non-negative integer, got {num_ops!r}")
    return num_ops


def randaugment(image: torch.Tensor, num_ops: int = 2, magnitude: float = 10, *,
                generator: torch.Generator | None = None, fill=DEFAULT_REPLACE,
                contrast: str = "big_vision") -> torch.Tensor:
    """big_vision's ``randaug(num_ops, magnitude)`` on a uint8 (3, H, W) tensor (a (N, 3, H, W) batch gets
    the same ops for every image)."""
    image = _check_image(image)
    num_ops, magnitude = _check_num_ops(num_ops), _check_level(magnitude)
    params = sample_randaug_params(num_ops, *image.shape[-2:], generator=generator)
    return apply_randaug(image, params, magnitude, replace=fill, contrast=contrast)

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

One table, every backend. What each op means is written once, here: :data:`OP_TABLE` maps each op to
big_vision's level -> argument (``level_to_arg``), whether its sign is random, and how the argument becomes
the arguments of one of a dozen KERNELS (``posterize(x, shift)``, ``blend_constant(x, value, factor)``,
``affine(x, coeffs, fill)``, ...) with TF's quirks already applied (the uint8 wrap of Solarize's threshold,
TF's clamp of Posterize's shift, Contrast's degenerate value, the rotation matrix, the Cutout box).
:func:`kernel_call` is the one dispatch from (op, level, sign) to (kernel, arguments). Every backend --
the reference torch kernels below (:data:`TORCH_KERNELS`), ``pp.backends.numpy`` (+ numba) and
``pp.backends.batched`` (per-sample arguments, any device) -- implements the kernels and nothing else, so a
backend cannot redefine an op.
"""
from __future__ import annotations

import math
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from torch_impl.pp.geometry import sample_projective
from torch_impl.pp.tf_math import _F32, _f32, _to_uint8_trunc, blend, rgb_to_grayscale

__all__ = ["OPS", "SIGNED_OPS", "OP_TABLE", "KERNELS", "TORCH_KERNELS", "MAX_LEVEL", "CONTRAST_MODES",
           "SHARPNESS_CONVS", "apply_op",
           "op_argument", "kernel_call", "randaugment", "sample_randaug_params", "apply_randaug",
           "sample_cutout_center", "check_level", "check_randaug", "rgb_to_grayscale"]

MAX_LEVEL = 10.0          # big_vision's _MAX_LEVEL
CUTOUT_CONST = 40         # big_vision's randaug HParams(cutout_const=40, translate_const=100)
TRANSLATE_CONST = 100
DEFAULT_REPLACE = 128     # big_vision's replace_value = [128] * 3
SOLARIZE_ADD_THRESHOLD = 128   # big_vision's solarize_add(image, addition, threshold=128)
CONTRAST_MODES = ("big_vision", "fixed")
# TensorFlow's two arithmetics for Sharpness' depthwise_conv2d (which one big_vision gets depends on the CPU:
# TF turns oneDNN on by default on AVX-512-VNNI/AMX machines; docs/portability.md). Both sum the nine taps
# in row-major order in float32: "eigen" (TF's own kernel, oneDNN off) rounds each product, then each add;
# "onednn" fuses them (one rounding per tap, FMA).
SHARPNESS_CONVS = ("eigen", "onednn")

_F32 = torch.float32

# ---- the op table: big_vision's level_to_arg (HParams(cutout_const=40, translate_const=100)) ----------------
def _enhance(frac: float) -> float:
    return frac * 1.8 + 0.1          # _enhance_level_to_arg: the blend factor of the colour ops


@dataclass(frozen=True)
class Op:
    """One randaug op: ``argument(frac)`` is big_vision's level -> argument for frac = level / MAX_LEVEL
    (Python double arithmetic, as big_vision's Python computes it; None: the op takes no argument);
    ``signed``: big_vision negates the argument with probability 1/2; ``kernel``: which kernel runs it."""
    kernel: str
    argument: Callable[[float], Any] | None = None
    signed: bool = False


# In big_vision's order (its random op index selects from this list).
OP_TABLE: dict[str, Op] = {
    "AutoContrast": Op("autocontrast"),
    "Equalize": Op("equalize"),
    "Invert": Op("invert"),
    "Rotate": Op("affine", lambda f: f * 30.0, signed=True),                       # degrees
    "Posterize": Op("posterize", lambda f: int(f * 4)),                            # bits kept
    "Solarize": Op("solarize", lambda f: int(f * 256)),                            # threshold (256 at level 10)
    "Color": Op("blend_grey", _enhance),
    "Contrast": Op("blend_constant", _enhance),
    "Brightness": Op("blend_constant", _enhance),
    "Sharpness": Op("sharpness", _enhance),
    "ShearX": Op("affine", lambda f: f * 0.3, signed=True),
    "ShearY": Op("affine", lambda f: f * 0.3, signed=True),
    "TranslateX": Op("affine", lambda f: f * float(TRANSLATE_CONST), signed=True),  # pixels
    "TranslateY": Op("affine", lambda f: f * float(TRANSLATE_CONST), signed=True),
    "Cutout": Op("cutout", lambda f: int(f * CUTOUT_CONST)),                       # half size of the square
    "SolarizeAdd": Op("solarize_add", lambda f: int(f * 110)),                     # addition (threshold 128)
}
OPS = tuple(OP_TABLE)
SIGNED_OPS = tuple(name for name, op in OP_TABLE.items() if op.signed)

# What every backend implements (the same arguments, the same bits): pp.backends.numpy and .batched, and
# TORCH_KERNELS below.
KERNELS = ("autocontrast", "equalize", "invert", "posterize", "solarize", "solarize_add", "blend_constant",
           "blend_grey", "blend_mean_grey", "sharpness", "affine", "cutout")

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


def check_level(level: Any) -> float:
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



_check_level = check_level


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



def op_argument(name: str, level: float, sign: int = 1):
    """The argument big_vision passes to op ``name`` at ``level`` (Python double arithmetic, as it does).

    Signed ops return the already-negated value for ``sign=-1``; ops without an argument return None.
    """
    op = OP_TABLE[_check_name(name)]
    level, sign = _check_level(level), _check_sign(sign)
    if op.argument is None:
        return None
    arg = op.argument(level / MAX_LEVEL)
    return sign * arg if op.signed else arg


# ---- what an argument means: big_vision's (and TF's) semantics, applied before any kernel runs -------------
def posterize_shift(bits: int) -> int:
    """The shift 8 - bits becomes a uint8 tensor (a negative shift, from levels above 10 where bits > 8,
    wraps: -2 -> 254), and TF's bitwise shifts clamp it to 7 on uint8: 0 bits (shift 8) acts as shift 7, and
    so does every bits > 8. Verified against big_vision at levels 12..30."""
    return min((8 - int(bits)) % 256, 7)


def solarize_threshold(threshold: int) -> int:
    """tf.where(image < threshold, ...) with the threshold converted to uint8: 256 wraps to 0, so level 10
    inverts every pixel."""
    return int(threshold) % 256


def contrast_degenerate(height: int, width: int) -> int:
    """big_vision's Contrast blends towards the 256-bin histogram's sum (= the pixel count, float32) / 256,
    clipped to 255 and truncated: not the mean grey (196 at 224x224)."""
    mean = _f32(float(height * width)) / _f32(256.0)
    return int(_to_uint8_trunc(mean.clamp(0.0, 255.0)))


def mean_grey(image: torch.Tensor) -> torch.Tensor:
    """``contrast="fixed"``: the mean of tf.image.rgb_to_grayscale per image (float64 mean, float32, clipped,
    truncated), uint8 of shape (..., 1, 1, 1)."""
    grey = rgb_to_grayscale(image)
    mean = grey.to(torch.float64).mean(dim=(-3, -2, -1), keepdim=True).to(_F32)
    return _to_uint8_trunc(mean.clamp(0.0, 255.0))


def affine_coefficients(name: str, arg: float, height: int, width: int) -> tuple[float, ...]:
    """The float32 matrix (a0, a1, a2, b0, b1, b2) big_vision's geometric op hands to tfa's transform: output
    (x, y) reads the input at ((a0 x + a1 y) + a2, (b0 x + b1 y) + b2). Returned as Python floats holding
    float32 values, so every backend builds the same float32 tensors.

    * Rotate: degrees (a float32 tensor after big_vision's random negation) * (pi / 180) in float32, then
      tfa's rotation about ((W-1)/2, (H-1)/2): [cos, -sin, x_off, sin, cos, y_off] in float32. Positive
      degrees turn the content counter-clockwise on screen (big_vision's docstring says clockwise).
    * ShearX(s) reads x + s*y; ShearY(s) reads y + s*x.
    * TranslateX/Y: big_vision calls tfa translate with [-pixels, 0] / [0, -pixels]; tfa's matrix then reads
      the input at x + pixels: content moves left (up) for positive pixels.
    """
    one, zero = _f32(1.0), _f32(0.0)
    if name == "Rotate":
        radians = _f32(arg) * _f32(math.pi / 180.0)
        # float32 sin/cos, correctly rounded (glibc's sinf/cosf, which TF uses for a scalar, are).
        cos, sin = _f32(math.cos(float(radians))), _f32(math.sin(float(radians)))
        hm1, wm1 = _f32(float(height)) - one, _f32(float(width)) - one
        x_off = (wm1 - (cos * wm1 - sin * hm1)) / _f32(2.0)
        y_off = (hm1 - (sin * wm1 + cos * hm1)) / _f32(2.0)
        m = (cos, -sin, x_off, sin, cos, y_off)
    elif name == "ShearX":
        m = (one, _f32(arg), zero, zero, one, zero)
    elif name == "ShearY":
        m = (one, zero, zero, _f32(arg), one, zero)
    elif name == "TranslateX":
        m = (one, zero, _f32(arg), zero, one, zero)
    elif name == "TranslateY":
        m = (one, zero, zero, zero, one, _f32(arg))
    else:
        raise ValueError(f"{name} is not a geometric op; those are {', '.join(SIGNED_OPS)}")
    return tuple(float(v) for v in m)


def cutout_box(center: tuple[int, int], pad: int, height: int, width: int) -> tuple[int, int, int, int]:
    """big_vision's cutout square as (top, bottom, left, right), end exclusive: rows max(0, cy - pad) ..
    min(H, cy + pad) and likewise the columns (pad 0 gives an empty box)."""
    cy, cx = center
    return (max(0, cy - pad), height - max(0, height - cy - pad), max(0, cx - pad), width - max(0, width - cx - pad))


@lru_cache(maxsize=4096)
def _call(name: str, level: float, sign: int, height: int, width: int, contrast: str,
          fill: tuple[int, int, int], sharpness_conv: str = "eigen") -> tuple[str, tuple]:
    arg = op_argument(name, level, sign)
    kernel = OP_TABLE[name].kernel
    if kernel in ("autocontrast", "equalize", "invert"):
        return kernel, ()
    if kernel == "posterize":
        return kernel, (posterize_shift(arg),)
    if kernel == "solarize":
        return kernel, (solarize_threshold(arg),)
    if kernel == "affine":
        return kernel, (affine_coefficients(name, arg, height, width), fill)
    if kernel == "cutout":
        return kernel, (arg, fill)          # the box needs the centre: see kernel_call
    if kernel == "sharpness":
        return kernel, (arg, sharpness_conv)
    if name == "Brightness":
        return kernel, (0, arg)             # blend towards black
    if name == "Contrast":
        if contrast == "big_vision":
            return kernel, (contrast_degenerate(height, width), arg)
        return "blend_mean_grey", (arg,)
    return kernel, (arg,)                   # solarize_add(addition), blend_grey(factor)


def kernel_call(name: str, level: float, sign: int = 1, *, height: int, width: int, contrast: str = "big_vision",
                fill=DEFAULT_REPLACE, cutout_center: tuple[int, int] | None = None,
                sharpness_conv: str = "eigen") -> tuple[str, tuple]:
    """The one dispatch: op ``name`` at ``level`` with ``sign`` on an ``height`` x ``width`` image is
    ``kernel(image, *args)``; returns ``(kernel, args)`` with every big_vision semantic already applied.
    Cutout needs ``cutout_center``. Raises ValueError naming the bad argument."""
    name, level, sign = _check_name(name), _check_level(level), _check_sign(sign)
    if contrast not in CONTRAST_MODES:
        raise ValueError(f"contrast must be one of {CONTRAST_MODES}, got {contrast!r}")
    if sharpness_conv not in SHARPNESS_CONVS:
        raise ValueError(f"sharpness_conv must be one of {SHARPNESS_CONVS}, got {sharpness_conv!r}")
    kernel, args = _call(name, level, sign, int(height), int(width), contrast, _replace_values(fill), sharpness_conv)
    if kernel == "cutout":
        if cutout_center is None:
            raise ValueError("Cutout needs cutout_center=(cy, cx)")
        pad, fill3 = args
        args = (cutout_box(_check_center(cutout_center, height, width), pad, height, width), fill3)
    return kernel, args


# ---- the reference kernels (torch; scalar arguments, or one per image of a batch) ---------------------------
def _per_image(value, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A kernel argument as a tensor broadcasting against ``x``: a scalar, or an (N,) tensor (one per image of
    an (N, 3, H, W) batch) viewed as (N, 1, 1, 1) on x's device."""
    if isinstance(value, torch.Tensor) and value.ndim == 1:
        return value.to(device=x.device, dtype=dtype).view(-1, 1, 1, 1)
    return torch.tensor(value, dtype=dtype, device=x.device)


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
    hist = torch.zeros(flat.shape[0], 256, dtype=torch.int64, device=image.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat))
    top = flat.amax(dim=1, keepdim=True)
    step = (hist.sum(dim=1, keepdim=True) - hist.gather(1, top)) // 255
    safe = torch.where(step == 0, torch.ones_like(step), step)
    lut = (hist.cumsum(dim=1) + step // 2) // safe
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut[:, :-1]], dim=1).clamp(0, 255)
    out = torch.where(step == 0, flat, lut.gather(1, flat))
    return out.to(torch.uint8).reshape(shape)


def _invert(image: torch.Tensor) -> torch.Tensor:
    return 255 - image


def _posterize(image: torch.Tensor, shift) -> torch.Tensor:
    s = _per_image(shift, image, torch.uint8)
    return (image >> s) << s


def _solarize(image: torch.Tensor, threshold) -> torch.Tensor:
    t = _per_image(threshold, image, torch.int16)
    return torch.where(image.to(torch.int16) < t, image, 255 - image)


def _solarize_add(image: torch.Tensor, addition) -> torch.Tensor:
    a = _per_image(addition, image, torch.int64)
    added = (image.to(torch.int64) + a).clamp(0, 255).to(torch.uint8)
    return torch.where(image < SOLARIZE_ADD_THRESHOLD, added, image)


def _factor(factor, image: torch.Tensor):
    return _per_image(factor, image, _F32) if isinstance(factor, torch.Tensor) else float(factor)


def _blend_constant(image: torch.Tensor, value, factor) -> torch.Tensor:
    return blend(_per_image(value, image, torch.uint8).expand(image.shape), image, _factor(factor, image))


def _blend_grey(image: torch.Tensor, factor) -> torch.Tensor:
    return blend(rgb_to_grayscale(image).expand(image.shape), image, _factor(factor, image))


def _blend_mean_grey(image: torch.Tensor, factor) -> torch.Tensor:
    return blend(mean_grey(image).expand(image.shape), image, _factor(factor, image))


def _sharpness(image: torch.Tensor, factor, conv: str = "eigen") -> torch.Tensor:
    # PIL's SMOOTH kernel applied as TF's depthwise_conv2d(VALID): taps summed in row-major order in float32,
    # bit-exact with TF's CPU kernels; interior clipped and truncated; border pixels keep the original.
    # conv="eigen" (oneDNN off): acc = f32(acc + f32(x * k)). conv="onednn": acc = f32(acc + x * k), one
    # rounding per tap (FMA); computed in float64 and rounded once, which is exact: x is an integer <= 255
    # and k = f32(1/13) or f32(5/13), so every product and partial sum is a multiple of 2^-27 below 2^9 (36
    # significant bits, < 53).
    h, w = image.shape[-2:]
    smooth = image.clone()
    if h >= 3 and w >= 3:
        fused = conv == "onednn"
        dt = torch.float64 if fused else _F32
        x = image.to(dt)
        k1, k5 = _f32(1.0) / _f32(13.0), _f32(5.0) / _f32(13.0)
        acc = torch.zeros(*image.shape[:-2], h - 2, w - 2, dtype=_F32, device=image.device)
        for r in range(3):
            for c in range(3):
                tap = x[..., r:r + h - 2, c:c + w - 2] * float(k5 if (r, c) == (1, 1) else k1)
                acc = (acc.to(dt) + tap).to(_F32)
        smooth[..., 1:-1, 1:-1] = _to_uint8_trunc(acc.clamp(0.0, 255.0))
    return blend(smooth, image, _factor(factor, image))


def _cutout(image: torch.Tensor, box, fill) -> torch.Tensor:
    # box (top, bottom, left, right), end exclusive: four ints, or an (N, 4) tensor (one box per image).
    h, w = image.shape[-2:]
    fill_t = torch.tensor(tuple(fill), dtype=torch.uint8, device=image.device).view(3, 1, 1)
    if isinstance(box, torch.Tensor):
        b = box.to(image.device).view(-1, 4, 1, 1)
        rows = torch.arange(h, device=image.device).view(1, h, 1)
        cols = torch.arange(w, device=image.device).view(1, 1, w)
        inside = (rows >= b[:, 0]) & (rows < b[:, 1]) & (cols >= b[:, 2]) & (cols < b[:, 3])
        return torch.where(inside.unsqueeze(1), fill_t, image)
    top, bottom, left, right = box
    out = image.clone()
    if bottom > top and right > left:
        out[..., top:bottom, left:right] = fill_t
    return out


TORCH_KERNELS = types.SimpleNamespace(
    autocontrast=_autocontrast, equalize=_equalize, invert=_invert, posterize=_posterize, solarize=_solarize,
    solarize_add=_solarize_add, blend_constant=_blend_constant, blend_grey=_blend_grey,
    blend_mean_grey=_blend_mean_grey, sharpness=_sharpness, affine=sample_projective, cutout=_cutout)
assert set(vars(TORCH_KERNELS)) == set(KERNELS)


def sample_cutout_center(height: int, width: int, generator: torch.Generator | None = None) -> tuple[int, int]:
    """A cutout centre uniform over the pixels, like big_vision's two tf.random_uniform int32 draws."""
    cy = int(torch.randint(0, height, (1,), generator=generator))
    cx = int(torch.randint(0, width, (1,), generator=generator))
    return cy, cx


def apply_op(image: torch.Tensor, name: str, level: float, *, sign: int = 1, replace=DEFAULT_REPLACE,
             cutout_center: tuple[int, int] | None = None, contrast: str = "big_vision",
             generator: torch.Generator | None = None, sharpness_conv: str = "eigen") -> torch.Tensor:
    """Apply big_vision randaug op ``name`` at ``level`` (0..10) to a uint8 (3, H, W) or (N, 3, H, W) image.

    ``sign`` (+1/-1) is big_vision's random negation, used by Rotate, ShearX/Y and TranslateX/Y only.
    ``replace`` fills the area uncovered by geometric ops and Cutout (big_vision: 128).
    ``cutout_center=(cy, cx)`` places Cutout's square; None draws it uniformly with ``generator``.
    ``contrast="big_vision"`` reproduces big_vision's Contrast (blend towards pixel_count/256, clipped);
    ``"fixed"`` blends towards the mean grey instead.
    ``sharpness_conv``: which of TensorFlow's depthwise-conv arithmetics Sharpness reproduces: "eigen" (TF's
    own kernel, oneDNN off; the default and what the recorded fixtures use) or "onednn" (TF's default on
    AVX-512-VNNI/AMX CPUs); see SHARPNESS_CONVS.
    """
    image = _check_image(image)
    h, w = image.shape[-2:]
    if _check_name(name) == "Cutout" and cutout_center is None:
        cutout_center = sample_cutout_center(h, w, generator)
    kernel, args = kernel_call(name, level, sign, height=h, width=w, contrast=contrast, fill=replace,
                               cutout_center=cutout_center, sharpness_conv=sharpness_conv)
    return getattr(TORCH_KERNELS, kernel)(image, *args)


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


def check_num_ops(num_ops: Any) -> int:
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


_check_num_ops = check_num_ops


def check_randaug(num_ops: int, magnitude: float, fill=DEFAULT_REPLACE,
                  contrast: str = "big_vision") -> tuple[int, float, tuple[int, int, int], str]:
    """Validate RandAugment's settings once, where a pipeline is built (every backend runs every op at any
    level >= 0, any fill and both contrast modes, so nothing else can fail later); returns them normalised."""
    if contrast not in CONTRAST_MODES:
        raise ValueError(f"contrast must be one of {CONTRAST_MODES}, got {contrast!r}")
    return check_num_ops(num_ops), check_level(magnitude), _replace_values(fill), contrast

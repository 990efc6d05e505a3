"""big_vision's RandAugment and inception crop on a uint8 batch (N, 3, H, W), on any device.

Every sample draws its own ops, levels, signs and cutout centres (``torch_impl.augment`` applies one op to
a whole batch); the result for sample ``n`` equals ``apply_op`` on that sample alone, bit for bit (checked
against apply_op and against the recorded randaug_ops fixtures in ``parity/families/fast_paths.py``).

How: for each layer, samples are grouped by the op they drew and each group runs one vectorised kernel
whose arguments (blend factor, angle, shift, threshold, cutout box, ...) are per-sample tensors. The
arithmetic is the same float32 sequence as ``torch_impl.augment`` (eager torch ops round every step, so
CPU and CUDA give the same bits; do not wrap this in torch.compile, which may fuse a*b+c into an FMA).
Level -> argument conversions are done in float64 like big_vision's Python, on the host.

The inception crop (:func:`batched_crop_resize`) takes per-sample boxes and flips and produces
``(N, 3, size, size)`` with TF's bilinear resize arithmetic (equal to ``fast_pipeline.resize_bilinear_tf``
of each crop).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torchvision.io as tio

from torch_impl.pp.geometry import projective_tables
from torch_impl.pp.jpeg import decode_jpeg_fast
from torch_impl.pp.randaug import CUTOUT_CONST, MAX_LEVEL, OPS, TRANSLATE_CONST, geometry_coefficients


__all__ = ["sample_batch_params", "batched_apply_op", "batched_randaugment", "BatchedRandAugment17",
           "batched_crop_resize", "randaugment_on_device", "decode_crop_resize"]


_F32 = torch.float32


_SIGNED = {OPS.index(n) for n in ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY")}


def _check_batch(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a uint8 tensor of shape (N, 3, H, W), got {got}")
    return images


def _per_sample(value, n: int, what: str, dtype=torch.float64) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=dtype).cpu()
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"{what} must be a scalar or have shape ({n},), got {tuple(t.shape)}")
    return t


def _fill(replace, device) -> torch.Tensor:
    vals = (replace,) * 3 if isinstance(replace, int) else tuple(replace)
    if len(vals) != 3 or any(not 0 <= int(v) <= 255 for v in vals):
        raise ValueError(f"replace must be an integer in [0, 255] or three of them, got {replace!r}")
    return torch.tensor([int(v) for v in vals], dtype=torch.uint8, device=device).view(1, 3, 1, 1)


def _col(t: torch.Tensor, device) -> torch.Tensor:
    """(n,) host tensor -> (n, 1, 1, 1) on device."""
    return t.to(device).view(-1, 1, 1, 1)


# ---- colour kernels ------------------------------------------------------------------------------------
def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    # big_vision blend: a + f * (b - a) in float32, truncated; clipping matters only when extrapolating and
    # is a no-op otherwise (f = 0 and f = 1 give a and b exactly in float32).
    af, bf = a.to(_F32), b.to(_F32)
    return (af + factor * (bf - af)).clamp_(0.0, 255.0).to(torch.uint8)


def _grey(x: torch.Tensor) -> torch.Tensor:
    # tf.image.rgb_to_grayscale on uint8 (same float32 sequence as torch_impl.augment.rgb_to_grayscale).
    f = x.to(_F32) * torch.tensor(1.0 / 255.0, dtype=_F32)
    g = (f[:, 0:1] * torch.tensor(0.2989, dtype=_F32) + f[:, 1:2] * torch.tensor(0.5870, dtype=_F32)) \
        + f[:, 2:3] * torch.tensor(0.1140, dtype=_F32)
    return (g * torch.tensor(255.5, dtype=_F32)).to(torch.uint8)


def _autocontrast(x):
    lo = x.amin(dim=(-2, -1), keepdim=True).to(_F32)
    hi = x.amax(dim=(-2, -1), keepdim=True).to(_F32)
    flat = hi <= lo
    scale = torch.tensor(255.0, dtype=_F32) / torch.where(flat, torch.ones_like(hi), hi - lo)
    out = (x.to(_F32) * scale + (-lo * scale)).clamp(0.0, 255.0).to(torch.uint8)
    return torch.where(flat, x, out)


def _equalize(x):
    n, c, h, w = x.shape
    flat = x.reshape(n * c, h * w).to(torch.int64)
    hist = torch.zeros(n * c, 256, dtype=torch.int64, device=x.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat))
    top = flat.amax(dim=1, keepdim=True)
    step = (hist.sum(dim=1, keepdim=True) - hist.gather(1, top)) // 255
    safe = torch.where(step == 0, torch.ones_like(step), step)
    lut = (hist.cumsum(dim=1) + step // 2) // safe
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut[:, :-1]], dim=1).clamp(0, 255)
    out = torch.where(step == 0, flat, lut.gather(1, flat))
    return out.to(torch.uint8).reshape(n, c, h, w)


def _sharpness(x, factor):
    n, c, h, w = x.shape
    smooth = x.clone()
    if h >= 3 and w >= 3:
        f = x.to(_F32)
        k1 = torch.tensor(1.0, dtype=_F32) / torch.tensor(13.0, dtype=_F32)
        k5 = torch.tensor(5.0, dtype=_F32) / torch.tensor(13.0, dtype=_F32)
        acc = torch.zeros(n, c, h - 2, w - 2, dtype=_F32, device=x.device)
        for r in range(3):
            for cc in range(3):
                acc = acc + f[..., r:r + h - 2, cc:cc + w - 2] * (k5 if (r, cc) == (1, 1) else k1)
        smooth[..., 1:-1, 1:-1] = acc.clamp(0.0, 255.0).to(torch.uint8)
    return _blend(smooth, x, factor)


def _projective(x, a0, a1, a2, b0, b1, b2, fill):
    """Nearest-neighbour projective sampling, per-sample float32 coefficients of shape (n, 1, 1)."""
    n, c, h, w = x.shape
    idx, inside = projective_tables(h, w, a0, a1, a2, b0, b1, b2, device=x.device)
    out = torch.gather(x.reshape(n, c, h * w), 2, idx.reshape(n, 1, h * w).expand(n, c, h * w))
    return torch.where(inside.unsqueeze(1), out.reshape(n, c, h, w), fill)


def _cutout(x, pad: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, fill):
    n, _, h, w = x.shape
    top = (cy - pad).clamp_min(0)
    bottom = h - (h - cy - pad).clamp_min(0)
    left = (cx - pad).clamp_min(0)
    right = w - (w - cx - pad).clamp_min(0)
    d = x.device
    rows = torch.arange(h, device=d).view(1, h, 1)
    cols = torch.arange(w, device=d).view(1, 1, w)
    inside = ((rows >= top.to(d).view(-1, 1, 1)) & (rows < bottom.to(d).view(-1, 1, 1))
              & (cols >= left.to(d).view(-1, 1, 1)) & (cols < right.to(d).view(-1, 1, 1)))
    return torch.where(inside.unsqueeze(1), fill, x)


# ---- one op on a group of samples --------------------------------------------------------------------------
def batched_apply_op(images: torch.Tensor, name: str, level, *, sign=1, cutout_center=None, replace=128,
                     contrast: str = "big_vision") -> torch.Tensor:
    """``apply_op(images[n], name, level[n], sign=sign[n], cutout_center=cutout_center[n])`` for every n at
    once. ``level``/``sign``: scalars or (N,) tensors; ``cutout_center``: (N, 2) integer (cy, cx) for
    Cutout (required for it)."""
    x = _check_batch(images)
    if name not in OPS:
        raise ValueError(f"unknown randaug op {name!r}; big_vision's 16 ops are: {', '.join(OPS)}")
    if contrast not in ("big_vision", "fixed"):
        raise ValueError(f"contrast must be 'big_vision' or 'fixed', got {contrast!r}")
    n, _, h, w = x.shape
    lv = _per_sample(level, n, "level")
    if bool(((lv < 0) | (lv > MAX_LEVEL) | lv.isnan()).any()):
        raise ValueError(f"level must be in [0, {MAX_LEVEL:g}], got {lv.tolist()}")
    sg = _per_sample(sign, n, "sign")
    if bool(((sg != 1) & (sg != -1)).any()):
        raise ValueError(f"sign must be +1 or -1, got {sg.tolist()}")
    frac = lv / MAX_LEVEL            # float64, as big_vision's Python computes level_to_arg
    dev = x.device
    fill = _fill(replace, dev)
    if name == "AutoContrast":
        return _autocontrast(x)
    if name == "Equalize":
        return _equalize(x)
    if name == "Invert":
        return 255 - x
    if name == "Posterize":
        bits = torch.trunc(frac * 4).to(torch.int64)
        shift = (8 - bits).clamp(0, 7).to(torch.uint8)          # TF clamps the uint8 shift to 7
        s = _col(shift, dev)
        return (x >> s) << s
    if name == "Solarize":
        thr = _col(torch.trunc(frac * 256).to(torch.int64) % 256, dev).to(torch.int16)  # 256 wraps to 0
        return torch.where(x.to(torch.int16) < thr, x, 255 - x)
    if name == "SolarizeAdd":
        add = _col(torch.trunc(frac * 110).to(torch.int64), dev).to(torch.int16)
        added = (x.to(torch.int16) + add).clamp(0, 255).to(torch.uint8)
        return torch.where(x < 128, added, x)
    if name in ("Color", "Contrast", "Brightness", "Sharpness"):
        factor = _col((frac * 1.8 + 0.1).to(_F32), dev)
        if name == "Color":
            return _blend(_grey(x).expand(n, 3, h, w), x, factor)
        if name == "Brightness":
            return _blend(torch.zeros_like(x), x, factor)
        if name == "Sharpness":
            return _sharpness(x, factor)
        grey = _grey(x)
        if contrast == "big_vision":   # blend towards pixel_count / 256 (clipped), not the mean grey
            mean = (torch.tensor(float(h * w), dtype=_F32) / torch.tensor(256.0, dtype=_F32)).clamp(0.0, 255.0)
            mean = mean.to(torch.uint8).to(dev).view(1, 1, 1, 1).expand(n, 1, 1, 1)
        else:
            mean = grey.to(torch.float64).mean(dim=(-3, -2, -1), keepdim=True).to(_F32).clamp(0.0, 255.0).to(torch.uint8)
        return _blend(mean.expand(n, 3, h, w), x, factor)
    if name in ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"):
        coeffs = geometry_coefficients(name, h, w, lv, sg)
        return _projective(x, *(c.to(dev) for c in coeffs), fill)
    if name == "Cutout":
        if cutout_center is None:
            raise ValueError("Cutout needs cutout_center: an (N, 2) tensor of (cy, cx) per sample")
        cc = torch.as_tensor(cutout_center).cpu().to(torch.int64).reshape(n, 2)
        if bool(((cc[:, 0] < 0) | (cc[:, 0] >= h) | (cc[:, 1] < 0) | (cc[:, 1] >= w)).any()):
            raise ValueError(f"cutout_center must lie inside the {h}x{w} image")
        pad = torch.trunc(frac * CUTOUT_CONST).to(torch.int64)
        return _cutout(x, pad, cc[:, 0], cc[:, 1], fill)
    raise AssertionError(name)


# ---- RandAugment ------------------------------------------------------------------------------------------
def sample_batch_params(n: int, num_ops: int, height: int, width: int, *,
                        generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Per-sample draws on the host: ``ops`` (n, num_ops) indices into OPS (uniform), ``signs`` (n, num_ops)
    of +1/-1, ``centers`` (n, num_ops, 2) cutout centres (uniform over the pixels)."""
    ops = torch.randint(0, len(OPS), (n, num_ops), generator=generator)
    signs = torch.randint(0, 2, (n, num_ops), generator=generator) * 2 - 1
    cy = torch.randint(0, height, (n, num_ops), generator=generator)
    cx = torch.randint(0, width, (n, num_ops), generator=generator)
    return {"ops": ops, "signs": signs, "centers": torch.stack([cy, cx], dim=-1)}


def batched_randaugment(images: torch.Tensor, params: dict[str, torch.Tensor], magnitude, *, replace=128,
                        contrast: str = "big_vision") -> torch.Tensor:
    """Apply per-sample RandAugment layers: layer l applies OPS[params["ops"][n, l]] to sample n at level
    ``magnitude`` (scalar or (N,)), with its sign and cutout centre. Returns a new tensor."""
    x = _check_batch(images)
    n = x.shape[0]
    ops = torch.as_tensor(params["ops"]).cpu().reshape(n, -1)
    signs = torch.as_tensor(params["signs"]).cpu().reshape(ops.shape)
    centers = torch.as_tensor(params["centers"]).cpu().reshape(*ops.shape, 2)
    lv = _per_sample(magnitude, n, "magnitude")
    out = x.clone()
    for layer in range(ops.shape[1]):
        col = ops[:, layer]
        for k in torch.unique(col).tolist():
            idx = torch.nonzero(col == k).flatten()
            didx = idx.to(x.device)
            out[didx] = batched_apply_op(out.index_select(0, didx), OPS[k], lv[idx], sign=signs[idx, layer],
                                         cutout_center=centers[idx, layer], replace=replace, contrast=contrast)
    return out


class BatchedRandAugment17(torch.nn.Module):
    """RandAugment17 for a uint8 batch (N, 3, H, W) on any device, each sample drawing its own ops, signs and
    cutout centres (host generator ``generator``); ``magnitude`` may be per-sample at call time."""

    def __init__(self, num_ops: int = 2, magnitude: float = 10, fill=128, contrast: str = "big_vision", *,
                 generator: torch.Generator | None = None):
        super().__init__()
        if isinstance(num_ops, bool) or not isinstance(num_ops, int) or num_ops < 0:
            raise ValueError(f"num_ops must be a non-negative integer, got {num_ops!r}")
        self.num_ops, self.magnitude, self.fill, self.contrast = num_ops, float(magnitude), fill, contrast
        self.generator = generator

    def forward(self, images: torch.Tensor, magnitude=None) -> torch.Tensor:
        x = _check_batch(images)
        params = sample_batch_params(x.shape[0], self.num_ops, x.shape[2], x.shape[3], generator=self.generator)
        return batched_randaugment(x, params, self.magnitude if magnitude is None else magnitude,
                                   replace=self.fill, contrast=self.contrast)

    def extra_repr(self) -> str:
        return f"num_ops={self.num_ops}, magnitude={self.magnitude:g}, fill={self.fill}, contrast={self.contrast!r}"


def randaugment_on_device(images: torch.Tensor, *, num_ops: int, magnitude: float,
                          generator: torch.Generator) -> torch.Tensor:
    """big_vision's ``randaug(num_ops, magnitude)`` on a uint8 batch where it lives (the training loop's
    ``runtime.device_augment`` / ``device_augment_fraction``; the loop then runs value_range), each sample
    drawing its own ops, signs and cutout centres from ``generator`` (host); uint8 out. num_ops or magnitude
    0 skips randaug, as the loader-side pipeline does."""
    x = _check_batch(images)
    if num_ops > 0 and magnitude > 0 and x.shape[0] > 0:
        params = sample_batch_params(x.shape[0], num_ops, x.shape[2], x.shape[3], generator=generator)
        x = batched_randaugment(x, params, magnitude)
    return x


# ---- inception crop: per-sample boxes, TF bilinear resize, optional flip ---------------------------------------
def _tables(sizes: torch.Tensor, offsets: torch.Tensor, out: int, flips: torch.Tensor | None, device):
    """Per-sample TF ResizeBilinear (half-pixel) tables in absolute image coordinates: (n, out) lower/upper
    indices and float32 weights. scale = float32(in) / float32(out); src = (i + 0.5) * scale - 0.5."""
    insz = sizes.to(_F32).view(-1, 1)
    scale = insz / torch.tensor(float(out), dtype=_F32)
    src = (torch.arange(out, dtype=_F32).view(1, -1) + torch.tensor(0.5, dtype=_F32)) * scale \
        - torch.tensor(0.5, dtype=_F32)
    fl = torch.floor(src)
    lower = fl.to(torch.int64).clamp_min(0)
    upper = torch.minimum(torch.ceil(src).to(torch.int64), sizes.view(-1, 1) - 1)
    lerp = src - fl
    lower, upper = lower + offsets.view(-1, 1), upper + offsets.view(-1, 1)
    if flips is not None:
        f = flips.view(-1, 1).bool()
        lower, upper, lerp = (torch.where(f, t.flip(1), t) for t in (lower, upper, lerp))
    return lower.to(device), upper.to(device), lerp.to(device)


def batched_crop_resize(images: torch.Tensor, boxes, size: int = 224, *, flips=None) -> torch.Tensor:
    """Crop ``boxes[n] = (top, left, h, w)`` of ``images[n]`` and resize it to ``size`` x ``size`` with
    big_vision's ``resize`` (TF bilinear, antialias=False, clip + truncating cast); ``flips[n]`` mirrors the
    result left-right (flip_lr). Images: uint8 (N, 3, H, W), any device. Equals
    ``fast_pipeline.resize_bilinear_tf(images[n, :, t:t+h, l:l+w], size, flip=flips[n])`` per sample."""
    x = _check_batch(images)
    n, c, H, W = x.shape
    b = torch.as_tensor(boxes).cpu().to(torch.int64).reshape(n, 4)
    top, left, bh, bw = b.unbind(1)
    if bool(((bh < 1) | (bw < 1) | (top < 0) | (left < 0) | (top + bh > H) | (left + bw > W)).any()):
        raise ValueError(f"every box (top, left, h, w) must lie inside the {H}x{W} images, got {b.tolist()}")
    fl = None if flips is None else torch.as_tensor(flips).cpu().reshape(n)
    ly, uy, wy = _tables(bh, top, size, None, x.device)
    lx, ux, wx = _tables(bw, left, size, fl, x.device)
    rows = torch.cat([ly, uy], dim=1)                                             # (n, 2*size)
    src = torch.gather(x, 2, rows.view(n, 1, -1, 1).expand(n, c, 2 * size, W))    # (n, c, 2s, W)
    left_ = torch.gather(src, 3, lx.view(n, 1, 1, -1).expand(n, c, 2 * size, size)).to(_F32)
    right_ = torch.gather(src, 3, ux.view(n, 1, 1, -1).expand(n, c, 2 * size, size)).to(_F32)
    horiz = left_ + (right_ - left_) * wx.view(n, 1, 1, -1)
    t, btm = horiz[:, :, :size], horiz[:, :, size:]
    out = t + (btm - t) * wy.view(n, 1, -1, 1)
    return out.clamp_(0.0, 255.0).to(torch.uint8)


def _decode_one(jpeg: torch.Tensor, device) -> torch.Tensor:
    """One JPEG on ``device``, or (if that decoder refuses it) big_vision's CPU decode moved there."""
    try:
        return tio.decode_jpeg(jpeg, device=device, mode=tio.ImageReadMode.RGB)
    except RuntimeError:
        return torch.from_numpy(decode_jpeg_fast(jpeg.numpy().tobytes())).permute(2, 0, 1).to(device)


def decode_crop_resize(jpegs: Sequence[torch.Tensor], boxes, flips, size: int, device) -> torch.Tensor:
    """``runtime.device_decode``: decode ``jpegs`` (1-D uint8 tensors) on ``device`` with
    torchvision.io.decode_jpeg (nvjpeg on CUDA), then crop ``boxes[n]``, resize to ``size`` and flip like
    :func:`batched_crop_resize`. Returns uint8 (k, 3, size, size). The decode is NOT big_vision's (see
    config.RuntimeConfig.device_decode); everything after it is."""
    dev = torch.empty(0, device=device).device
    try:
        imgs = tio.decode_jpeg(list(jpegs), device=dev, mode=tio.ImageReadMode.RGB)
    except RuntimeError:          # one bad file fails the batched call: decode one by one, with a fallback
        imgs = [_decode_one(j, dev) for j in jpegs]
    hmax, wmax = max(im.shape[1] for im in imgs), max(im.shape[2] for im in imgs)
    batch = torch.zeros((len(imgs), 3, hmax, wmax), dtype=torch.uint8, device=dev)
    for i, im in enumerate(imgs):       # pad to one shape; every box lies inside its own image
        batch[i, :, :im.shape[1], :im.shape[2]] = im
    return batched_crop_resize(batch, boxes, size, flips=flips)

"""big_vision's RandAugment and inception crop on a uint8 batch (N, 3, H, W), on any device.

Every sample draws its own ops, levels, signs and cutout centres (``randaug.apply_op`` applies one op to a
whole batch); the result for sample ``n`` equals ``apply_op`` on that sample alone, bit for bit (checked
against apply_op and against the recorded randaug_ops fixtures in ``parity/families/fast_paths.py``).

How: for each layer, samples are grouped by the op they drew; each group's per-sample kernel arguments
come from ``randaug.kernel_call`` (the one op table: levels above 10 work as in big_vision, Posterize's
shift is TF's) and one call of the reference kernel (``randaug.TORCH_KERNELS``) runs the group with one
argument per image. Eager torch ops round every step, so CPU and CUDA give the same bits; do not wrap this
in torch.compile, which may fuse a*b+c into an FMA.

The inception crop (:func:`batched_crop_resize`) takes per-sample boxes and flips and produces
``(N, 3, size, size)`` with TF's bilinear resize arithmetic (equal to ``pp.resize.resize_bilinear_tf``
of each crop).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torchvision.io as tio

from torch_impl.pp.jpeg import decode_jpeg_fast
from torch_impl.pp.resize import _axis_table
from torch_impl.pp.randaug import OPS, TORCH_KERNELS, check_randaug, kernel_call


__all__ = ["sample_batch_params", "batched_apply_op", "batched_randaugment", "BatchedRandAugment17",
           "batched_crop_resize", "randaugment_on_device", "decode_crop_resize", "device_jpeg_decoder"]


_F32 = torch.float32


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


def _stack(rows: list[tuple]) -> tuple:
    """Per-sample kernel arguments -> one argument per position: the shared value where every sample has
    the same (a scalar keeps the kernel's shared path), else a tensor with one row per sample (float32 for
    floats: the same rounding as the reference kernels' float32 scalars; int64 for integers)."""
    out = []
    for j in range(len(rows[0])):
        values = [r[j] for r in rows]
        v0 = values[0]
        if all(v == v0 for v in values):
            out.append(v0)
        elif isinstance(v0, tuple):
            out.append(torch.tensor(values, dtype=_F32 if isinstance(v0[0], float) else torch.int64))
        else:
            out.append(torch.tensor(values, dtype=_F32 if isinstance(v0, float) else torch.int64))
    return tuple(out)


# ---- one op on a group of samples --------------------------------------------------------------------------
def batched_apply_op(images: torch.Tensor, name: str, level, *, sign=1, cutout_center=None, replace=128,
                     contrast: str = "big_vision", sharpness_conv: str = "eigen") -> torch.Tensor:
    """``apply_op(images[n], name, level[n], sign=sign[n], cutout_center=cutout_center[n])`` for every n at
    once: the arguments come from ``randaug.kernel_call`` per sample (the one op table), the kernels are
    ``randaug.TORCH_KERNELS`` with one argument per image. ``level``/``sign``: scalars or (N,) tensors;
    ``cutout_center``: (N, 2) integer (cy, cx) for Cutout (required for it)."""
    x = _check_batch(images)
    n, _, h, w = x.shape
    if n == 0:
        return x.clone()
    levels = _per_sample(level, n, "level").tolist()
    signs = [int(s) for s in _per_sample(sign, n, "sign").tolist()]
    if cutout_center is None:
        centers = [None] * n
    else:
        centers = [tuple(c) for c in torch.as_tensor(cutout_center).cpu().to(torch.int64).reshape(n, 2).tolist()]
    calls: dict = {}
    rows = []
    for key in zip(levels, signs, centers):
        call = calls.get(key)
        if call is None:
            call = calls[key] = kernel_call(name, key[0], key[1], height=h, width=w, contrast=contrast,
                                            fill=replace, cutout_center=key[2], sharpness_conv=sharpness_conv)
        rows.append(call[1])
    kernel = call[0]                       # one op: the same kernel for every sample
    return getattr(TORCH_KERNELS, kernel)(x, *_stack(rows))


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
                        contrast: str = "big_vision", sharpness_conv: str = "eigen") -> torch.Tensor:
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
                                         cutout_center=centers[idx, layer], replace=replace, contrast=contrast,
                                         sharpness_conv=sharpness_conv)
    return out


class BatchedRandAugment17(torch.nn.Module):
    """RandAugment17 for a uint8 batch (N, 3, H, W) on any device, each sample drawing its own ops, signs and
    cutout centres (host generator ``generator``); ``magnitude`` may be per-sample at call time."""

    def __init__(self, num_ops: int = 2, magnitude: float = 10, fill=128, contrast: str = "big_vision", *,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.num_ops, self.magnitude, self.fill, self.contrast = check_randaug(num_ops, magnitude, fill, contrast)
        self.generator = generator

    def forward(self, images: torch.Tensor, magnitude=None) -> torch.Tensor:
        x = _check_batch(images)
        params = sample_batch_params(x.shape[0], self.num_ops, x.shape[2], x.shape[3], generator=self.generator)
        return batched_randaugment(x, params, self.magnitude if magnitude is None else magnitude,
                                   replace=self.fill, contrast=self.contrast)

    def extra_repr(self) -> str:
        fill = self.fill[0] if len(set(self.fill)) == 1 else self.fill
        return f"num_ops={self.num_ops}, magnitude={self.magnitude:g}, fill={fill}, contrast={self.contrast!r}"


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
    indices and float32 weights, each sample's the one ``pp.resize._axis_table`` gives (cached per size)."""
    flip = [False] * len(sizes) if flips is None else [bool(f) for f in flips.tolist()]
    rows = [_axis_table(int(s), out, f) for s, f in zip(sizes.tolist(), flip)]
    lower, upper, lerp = (torch.stack(t) for t in zip(*rows))
    return (lower + offsets.view(-1, 1)).to(device), (upper + offsets.view(-1, 1)).to(device), lerp.to(device)


def batched_crop_resize(images: torch.Tensor, boxes, size: int = 224, *, flips=None) -> torch.Tensor:
    """Crop ``boxes[n] = (top, left, h, w)`` of ``images[n]`` and resize it to ``size`` x ``size`` with
    big_vision's ``resize`` (TF bilinear, antialias=False, clip + truncating cast); ``flips[n]`` mirrors the
    result left-right (flip_lr). Images: uint8 (N, 3, H, W), any device. Equals
    ``pp.resize.resize_bilinear_tf(images[n, :, t:t+h, l:l+w], size, flip=flips[n])`` per sample."""
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


def device_jpeg_decoder():
    """(name, decode(list of 1-D uint8 CPU tensors, device) -> list of uint8 (3, H, W)) for
    ``runtime.device_decode``: TorchCodec's ``decode_jpeg`` (nvjpeg on CUDA; PyPI ``torchcodec`` >= 0.16,
    ``pip install -e ".[gpu]"``), the maintained successor of ``torchvision.io.decode_jpeg``, which torchvision
    0.29 deprecates; without TorchCodec, torchvision's (its DeprecationWarning silenced here: the choice is
    recorded by this name, shown by ``parity bench decode``)."""
    try:
        from torchcodec.decoders import decode_jpeg as tc_decode
    except (ImportError, OSError, RuntimeError):   # not installed, or its native library is built for another torch
        tc_decode = None
    if tc_decode is not None:
        return "torchcodec.decoders.decode_jpeg", lambda jpegs, dev: list(tc_decode(list(jpegs), device=dev, mode="RGB"))

    def tv_decode(jpegs, dev):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return list(tio.decode_jpeg(list(jpegs), device=dev, mode=tio.ImageReadMode.RGB))
    return "torchvision.io.decode_jpeg (deprecated since torchvision 0.29; install torchcodec)", tv_decode


def _decode_one(jpeg: torch.Tensor, device) -> torch.Tensor:
    """One JPEG on ``device``, or (if that decoder refuses it) big_vision's CPU decode moved there."""
    try:
        return device_jpeg_decoder()[1]([jpeg], device)[0]
    except (RuntimeError, ValueError):   # the device decoder refuses a file libjpeg-turbo accepts (nvjpeg does)
        return torch.from_numpy(decode_jpeg_fast(jpeg.numpy().tobytes())).permute(2, 0, 1).to(device)


def decode_crop_resize(jpegs: Sequence[torch.Tensor], boxes, flips, size: int, device) -> torch.Tensor:
    """``runtime.device_decode``: decode ``jpegs`` (1-D uint8 tensors) on ``device`` with
    :func:`device_jpeg_decoder` (TorchCodec, else torchvision; nvjpeg on CUDA), then crop ``boxes[n]``,
    resize to ``size`` and flip like :func:`batched_crop_resize`. Returns uint8 (k, 3, size, size). The decode
    is NOT big_vision's (whole images, then the window; see config.RuntimeConfig.device_decode); everything
    after it is. The workers already applied big_vision's verdict on each window (pp.jpeg.check_window)."""
    dev = torch.empty(0, device=device).device
    try:
        imgs = device_jpeg_decoder()[1](jpegs, dev)
    except (RuntimeError, ValueError):   # one file the device refuses fails the batched call: one by one
        imgs = [_decode_one(j, dev) for j in jpegs]
    hmax, wmax = max(im.shape[1] for im in imgs), max(im.shape[2] for im in imgs)
    batch = torch.zeros((len(imgs), 3, hmax, wmax), dtype=torch.uint8, device=dev)
    for i, im in enumerate(imgs):       # pad to one shape; every box lies inside its own image
        batch[i, :, :im.shape[1], :im.shape[2]] = im
    return batched_crop_resize(batch, boxes, size, flips=flips)

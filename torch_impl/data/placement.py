"""Where each stage of big_vision's train pp runs, decided in ONE place: :func:`placement_for` reads the run's
``runtime`` flags (``device_decode``, ``device_augment``, ``device_augment_fraction``, ``device_value_range``)
and the device, checks what the chosen paths can do (at config time, before any data is read), and returns a
:class:`Placement`. The per-sample pipelines the DataLoader workers run (:func:`train_transform`) and the
per-batch stages the training loop runs on the device (``torch_impl.train.loop``) both follow it.

Stages of ``decode_jpeg_and_inception_crop(S)|flip_lr|randaug(N,M)|value_range(-1,1)``:

* decode + crop + flip: the workers; ``device_decode``: the workers only draw the crop and flip and ship
  the JPEG bytes, the loop decodes on the device (nvjpeg; NOT big_vision's pixels, off by default);
* randaug: the workers; ``device_augment`` (or ``device_decode``): the loop, every sample
  (``pp.backends.batched``); ``device_augment_fraction`` f: the loop for the samples picked by their seed
  (:meth:`Pipeline.on_device`), the workers for the rest;
* value_range: the workers, or the loop (then the workers ship uint8: 4x fewer bytes): with any of the
  above, with ``device_value_range=True``, and by default when training on CUDA.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from torch_impl.config import ConfigError, uses_cuda
from torch_impl.data.sampling import mix_seed
from torch_impl.pp.backends import numba as numba_kernels
from torch_impl.pp.jpeg import ImageDecodeError, check_window, device_decodable, simplejpeg
from torch_impl.pp.pipelines import FastTrainPipeline, eval_pipeline, train_pipeline
from torch_impl.pp.randaug import check_randaug
from torch_impl.pp.transforms import RandAugment17

WORKERS, DEVICE, SPLIT = "workers", "device", "split"


@dataclass(frozen=True)
class Placement:
    """Where each train pp stage runs: ``decode`` and ``value_range`` are "workers" or "device"; ``randaug``
    is "workers", "device" or "split" (``device_share`` of the samples on the device)."""
    decode: str = WORKERS
    randaug: str = WORKERS
    value_range: str = WORKERS
    device_share: float = 0.0

    @property
    def workers_ship_uint8(self) -> bool:
        return self.value_range == DEVICE


def placement(*, device_augment: bool = False, device_decode: bool = False, device_value_range: bool = False,
              device_augment_fraction: float = 0.0) -> Placement:
    """The placement the runtime flags ask for (``device_value_range`` already resolved to a bool)."""
    if not 0.0 <= device_augment_fraction <= 1.0:
        raise ConfigError(f"runtime.device_augment_fraction must be in [0, 1], got {device_augment_fraction!r}")
    if device_decode or device_augment:
        randaug, share = DEVICE, 1.0
    elif device_augment_fraction > 0.0:
        randaug, share = SPLIT, float(device_augment_fraction)
    else:
        randaug, share = WORKERS, 0.0
    on_device = device_value_range or randaug != WORKERS
    return Placement(decode=DEVICE if device_decode else WORKERS, randaug=randaug,
                     value_range=DEVICE if on_device else WORKERS, device_share=share)


def placement_for(cfg) -> Placement:
    """The one place that reads ``cfg.runtime``'s placement flags; raises ConfigError (naming the key) for a
    combination the chosen paths cannot run, before any data is read."""
    rt, pp = cfg.runtime, cfg.input.pp
    value_range = rt.device_value_range if rt.device_value_range is not None else uses_cuda(rt.device)
    plan = placement(device_augment=rt.device_augment, device_decode=rt.device_decode,
                     device_value_range=bool(value_range), device_augment_fraction=rt.device_augment_fraction)
    if plan.decode == DEVICE and not (pp.fast_decode and simplejpeg is not None):
        raise ConfigError("runtime.device_decode needs the fast JPEG path: set input.pp.fast_decode=true and "
                          "`pip install simplejpeg`")
    try:   # every backend runs any level >= 0; what none can run is said here
        check_randaug(pp.randaug_num_layers, pp.randaug_magnitude)
    except ValueError as e:
        raise ConfigError(f"input.pp.randaug_num_layers / randaug_magnitude: {e}") from None
    return plan


def value_range_on_device(runtime) -> bool:
    """Whether the training loop (not the workers) runs value_range (see :func:`placement_for`)."""
    value_range = runtime.device_value_range if runtime.device_value_range is not None else uses_cuda(runtime.device)
    return placement(device_augment=runtime.device_augment, device_decode=runtime.device_decode,
                     device_value_range=bool(value_range),
                     device_augment_fraction=runtime.device_augment_fraction).workers_ship_uint8


# ---------------------------------------------------------------------------- transforms
class Pipeline:
    """A preprocessing pipeline driven by ONE torch.Generator, reseeded for every sample:
    ``pipeline(x, seed)``. ``x`` is the encoded file (bytes) or a decoded uint8 (3, H, W) tensor.

    ``fast`` (optional) handles JPEG bytes (torch_impl.pp.pipelines.FastTrainPipeline: big_vision's
    crop-window decode, crop/resize/flip in one gather); a JPEG it refuses goes to ``slow``, the v2 Compose of
    torch_impl.pp.pipelines.train_pipeline, which also takes decoded tensors (synthetic images, PIL-decoded
    CMYK/PNG files).
    """

    def __init__(self, slow: Callable, fast: Callable | None, generator: torch.Generator, *, defer: bool = False,
                 device_share: float = 0.0, plain: Pipeline | None = None):
        self.slow, self.fast, self.generator, self.defer = slow, fast, generator, defer
        # runtime.device_augment_fraction: samples picked by on_device(seed) go through ``plain`` (the same
        # pipeline without RandAugment: the same crop and flip draws), and the loop augments them.
        self.device_share, self.plain = float(device_share), plain

    @property
    def writes_into(self) -> bool:
        """Whether ``__call__`` takes ``out=`` (a batch row to write the image into: data.batching)."""
        return self.fast is not None and not self.defer

    @property
    def splits_augment(self) -> bool:
        return self.plain is not None and 0.0 < self.device_share

    def on_device(self, seed: int) -> bool:
        """Whether this sample's RandAugment runs on the device (a fixed function of its seed)."""
        return self.splits_augment and mix_seed(seed, 7) * 2.0 ** -63 < self.device_share

    def __call__(self, x, seed: int, out: torch.Tensor | None = None) -> torch.Tensor | dict:
        """``out``: where the fast path may write the image (a batch row); the result is ``out`` then, or a new
        tensor from the other paths (the caller copies it)."""
        if self.on_device(seed):
            return self.plain(x, seed)
        if self.defer and isinstance(x, (bytes, bytearray)):
            if device_decodable(bytes(x)):
                # runtime.device_decode: the same draws as the fast path, the decode left to the device
                self.generator.manual_seed(seed)
                box, flip = self.fast.plan(bytes(x))
                # ... and big_vision's verdict on this window decided here, as on the CPU paths (a truncated
                # file fails where the window needs its missing rows): raises ImageDecodeError like them
                check_window(bytes(x), box)
                # plain bytes and ints: pickled inline to the main process (no shared-memory tensor per file)
                return {"jpeg": bytes(x), "box": tuple(int(v) for v in box), "flip": bool(flip),
                        "size": self.fast.size}
        if self.fast is not None and isinstance(x, (bytes, bytearray)):
            self.generator.manual_seed(seed)
            try:
                return self.fast(bytes(x), out=out)
            except ImageDecodeError:
                raise   # big_vision's verdict on this JPEG and window; the general path would say the same
            except ValueError:
                pass    # a JPEG the fast path does not handle (e.g. CMYK, lossless): the general path below
        self.generator.manual_seed(seed)
        return self.slow(x)


def train_transform(pp, plan: Placement | None = None, *, device_augment: bool = False, device_decode: bool = False,
                    device_value_range: bool = False, device_augment_fraction: float = 0.0) -> Pipeline:
    """The workers' half of big_vision ``decode_jpeg_and_inception_crop(S)|flip_lr|randaug(N,M)|value_range(-1,1)``
    under ``plan`` (a :class:`Placement`; or the runtime flags, as :func:`placement` takes them): the stages
    placed on the device are left out and the workers ship uint8 when value_range runs there; with
    ``decode == "device"`` the JPEGs the device can decode come back undecoded, as
    ``{"jpeg", "box", "flip", "size"}`` (see ``data.loader.collate_train``). ``pp`` is a config.PPConfig."""
    if plan is None:
        plan = placement(device_augment=device_augment, device_decode=device_decode,
                         device_value_range=device_value_range, device_augment_fraction=device_augment_fraction)
    g = torch.Generator()
    uint8_out = plan.workers_ship_uint8
    slow, fast = _train_stages(pp, g, randaug=plan.randaug != DEVICE, uint8_out=uint8_out)
    if plan.decode == DEVICE and fast is None:
        raise ConfigError("runtime.device_decode needs the fast JPEG path (input.pp.fast_decode=true and "
                          "`pip install simplejpeg`)")
    if fast is not None:
        numba_kernels.warm_up()   # before the DataLoader forks its workers
    if plan.randaug != SPLIT:
        return Pipeline(slow, fast, g, defer=plan.decode == DEVICE)
    return Pipeline(slow, fast, g, device_share=plan.device_share,
                    plain=Pipeline(*_train_stages(pp, g, randaug=False, uint8_out=True), g))


def train_transform_for(cfg) -> Pipeline:
    """:func:`train_transform` for a run: ``cfg.input.pp`` placed as :func:`placement_for` decides."""
    return train_transform(cfg.input.pp, placement_for(cfg))


def _train_stages(pp, g: torch.Generator, *, randaug: bool, uint8_out: bool):
    """(slow, fast) halves of the train pipeline on generator ``g``: the v2 Compose and the fast JPEG path."""
    use_ra = pp.randaug_magnitude > 0 and pp.randaug_num_layers > 0 and randaug
    ra = RandAugment17(pp.randaug_num_layers, pp.randaug_magnitude, generator=g) if use_ra else None
    slow = train_pipeline(pp.crop_size, randaug=ra, area_range=(pp.inception_area_min, 1.0),
                          precise=pp.decode_precise, generator=g, flip=pp.flip_lr, value_range=not uint8_out)
    fast = None
    if pp.fast_decode and simplejpeg is not None:   # simplejpeg: the fast path's decoder
        fast = FastTrainPipeline(pp.crop_size, randaug=(pp.randaug_num_layers, pp.randaug_magnitude) if use_ra
                                 else None, flip=pp.flip_lr, area_range=(pp.inception_area_min, 1.0),
                                 fast_dct=not pp.decode_precise, generator=g,
                                 output="uint8" if uint8_out else "float")
    return slow, fast


def eval_transform(pp) -> Pipeline:
    """big_vision ``decode|resize_small(R)|central_crop(S)|value_range(-1,1)`` (torch_impl.pp.pipelines.eval_pipeline)."""
    return Pipeline(eval_pipeline(pp.crop_size, pp.eval_resize_small, precise=pp.decode_precise), None,
                    torch.Generator())


__all__ = ["Placement", "placement", "placement_for", "Pipeline", "train_transform", "train_transform_for",
           "eval_transform", "value_range_on_device"]

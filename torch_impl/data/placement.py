"""Where each preprocessing stage of a training run runs: in the DataLoader workers, or on the training
device in the main process (``runtime.device_augment``, ``device_decode``, ``device_value_range``,
``device_augment_fraction``), and the per-sample pipelines that the workers run."""
from __future__ import annotations

from collections.abc import Callable

import torch

from torch_impl.config import uses_cuda
from torch_impl.data.sampling import mix_seed
from torch_impl.pp.backends import numba as numba_kernels
from torch_impl.pp.jpeg import ImageDecodeError, check_window, device_decodable, simplejpeg
from torch_impl.pp.pipelines import FastTrainPipeline, eval_pipeline, train_pipeline
from torch_impl.pp.transforms import RandAugment17


# ---------------------------------------------------------------------------- transforms
class Pipeline:
    """A preprocessing pipeline driven by ONE torch.Generator, reseeded for every sample:
    ``pipeline(x, seed)``. ``x`` is the encoded file (bytes) or a decoded uint8 (3, H, W) tensor.

    ``fast`` (optional) handles JPEG bytes (torch_impl.fast_pipeline.FastTrainPipeline: libjpeg-turbo fast
    DCT, crop/resize/flip in one gather); anything it refuses goes to ``slow``, the v2 Compose from
    torch_impl.preprocess, which also takes decoded tensors (synthetic images, PIL-decoded CMYK/PNG files).
    """

    def __init__(self, slow: Callable, fast: Callable | None, generator: torch.Generator, *, defer: bool = False,
                 device_share: float = 0.0, plain: Pipeline | None = None):
        self.slow, self.fast, self.generator, self.defer = slow, fast, generator, defer
        # runtime.device_augment_fraction: samples picked by on_device(seed) go through ``plain`` (the same
        # pipeline without RandAugment: the same crop and flip draws), and the loop augments them.
        self.device_share, self.plain = float(device_share), plain

    @property
    def splits_augment(self) -> bool:
        return self.plain is not None and 0.0 < self.device_share

    def on_device(self, seed: int) -> bool:
        """Whether this sample's RandAugment runs on the device (a fixed function of its seed)."""
        return self.splits_augment and mix_seed(seed, 7) * 2.0 ** -63 < self.device_share

    def __call__(self, x, seed: int) -> torch.Tensor | dict:
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
                return self.fast(bytes(x))
            except ImageDecodeError:
                raise   # big_vision's verdict on this JPEG and window; the general path would say the same
            except Exception:  # noqa: BLE001 - anything else: the general path below
                pass
        self.generator.manual_seed(seed)
        return self.slow(x)


def value_range_on_device(runtime) -> bool:
    """Whether the training loop (not the workers) runs value_range: ``runtime.device_value_range``, or by
    default when the run trains on CUDA; always with device_augment / device_decode."""
    if runtime.device_augment or runtime.device_decode:
        return True
    if runtime.device_value_range is not None:
        return bool(runtime.device_value_range)
    return uses_cuda(runtime.device)


def train_transform(pp, *, device_augment: bool = False, device_decode: bool = False,
                    device_value_range: bool = False, device_augment_fraction: float = 0.0) -> Pipeline:
    """big_vision ``decode_jpeg_and_inception_crop(S)|flip_lr|randaug(N,M)|value_range(-1,1)``, composed from
    torch_impl.preprocess.train_pipeline (and the fast JPEG path). ``pp`` is a config.PPConfig.

    ``device_augment``: stop after flip_lr and return uint8 (3, S, S); the training loop then runs
    randaug (:func:`torch_impl.batched_augment.randaugment_on_device`) + value_range on the device.
    ``device_decode`` (implies device_augment): JPEGs the device can decode come back undecoded, as
    ``{"jpeg", "box", "flip", "size"}`` (see :func:`collate_train`).
    ``device_value_range``: stop before value_range only (RandAugment stays here) and return uint8; the
    loop runs value_range on the device (runtime.device_value_range).
    ``device_augment_fraction``: that share of the samples (by seed, :meth:`Pipeline.on_device`) skips
    RandAugment here too; the loop runs it on the device (implies device_value_range)."""
    device_augment = device_augment or device_decode
    split = 0.0 < device_augment_fraction and not device_augment
    uint8_out = device_augment or device_value_range or split
    g = torch.Generator()
    slow, fast = _train_stages(pp, g, randaug=not device_augment, uint8_out=uint8_out)
    if device_decode and fast is None:
        raise ValueError("runtime.device_decode needs the fast JPEG path (input.pp.fast_decode=true and "
                         "`pip install simplejpeg`)")
    if fast is not None:
        numba_kernels.warm_up()   # before the DataLoader forks its workers
    if not split:
        return Pipeline(slow, fast, g, defer=device_decode)
    return Pipeline(slow, fast, g, device_share=device_augment_fraction,
                    plain=Pipeline(*_train_stages(pp, g, randaug=False, uint8_out=True), g))


def train_transform_for(cfg) -> Pipeline:
    """:func:`train_transform` for a run: ``cfg.input.pp`` placed as ``cfg.runtime`` says (workers / device)."""
    rt = cfg.runtime
    return train_transform(cfg.input.pp, device_augment=rt.device_augment, device_decode=rt.device_decode,
                           device_value_range=value_range_on_device(rt),
                           device_augment_fraction=rt.device_augment_fraction)


def _train_stages(pp, g: torch.Generator, *, randaug: bool, uint8_out: bool):
    """(slow, fast) halves of the train pipeline on generator ``g``: the v2 Compose and the fast JPEG path."""

    use_ra = pp.randaug_magnitude > 0 and pp.randaug_num_layers > 0 and randaug
    ra = RandAugment17(pp.randaug_num_layers, pp.randaug_magnitude, generator=g) if use_ra else None
    slow = train_pipeline(pp.crop_size, randaug=ra, area_range=(pp.inception_area_min, 1.0),
                          precise=pp.decode_precise, generator=g)
    drop = ({"FlipLR"} if not pp.flip_lr else set()) | ({"ValueRange"} if uint8_out else set())
    if drop:
        slow = type(slow)([t for t in slow.transforms if type(t).__name__ not in drop])
    fast = None
    if pp.fast_decode:
        if simplejpeg is not None:   # the fast path's decoder
            fast = FastTrainPipeline(pp.crop_size, randaug=(pp.randaug_num_layers, pp.randaug_magnitude) if use_ra
                                     else None, flip=pp.flip_lr, area_range=(pp.inception_area_min, 1.0),
                                     fast_dct=not pp.decode_precise, generator=g,
                                     output="uint8" if uint8_out else "float")
    return slow, fast


def eval_transform(pp) -> Pipeline:
    """big_vision ``decode|resize_small(R)|central_crop(S)|value_range(-1,1)`` (torch_impl.preprocess.eval_pipeline)."""
    return Pipeline(eval_pipeline(pp.crop_size, pp.eval_resize_small, precise=pp.decode_precise), None,
                    torch.Generator())


__all__ = ["Pipeline", "train_transform", "train_transform_for", "eval_transform", "value_range_on_device"]

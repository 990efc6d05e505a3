"""big_vision's ViT-S/16 preprocessing as whole pipelines (its pp strings):

* train ``decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2,10)|value_range(-1,1)``:
  :func:`train_pipeline` (a v2 Compose of ``torch_impl.pp.transforms``) and :class:`FastTrainPipeline`
  (the fast CPU path: big_vision's crop-window decode (pp.tf_jpeg), crop/resize/flip in one gather, numpy/numba RandAugment kernels of
  ``torch_impl.pp.backends``; the same pixels, parity-checked in ``parity/families/fast_paths.py``);
* eval ``decode|resize_small(256)|central_crop(224)|value_range(-1,1)``: :func:`eval_pipeline`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision.transforms import v2

from torch_impl.pp.backends.numpy import crop_resize_flip, fast_randaugment, to_value_range
from torch_impl.pp.crop import (BIG_VISION_ASPECT_RATIO_RANGE, _check_ranges, sample_inception_box,
                                sample_inception_box1)
from torch_impl.pp.jpeg import jpeg_shape
from torch_impl.pp.randaug import check_randaug
from torch_impl.pp.transforms import (CentralCrop, DecodeJpeg, DecodeJpegAndInceptionCrop, FlipLR, RandAugment17,
                                      ResizeSmall, ValueRange)


def train_pipeline(size: int = 224, *, randaug: Any = "big_vision", area_range: Sequence[float] = (0.05, 1.0),
                   precise: bool = False, generator: torch.Generator | None = None, flip: bool = True,
                   value_range: bool = True) -> v2.Compose:
    """ViT-S/16's train pp ``decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2,10)|value_range(-1,1)``.

    Input: the encoded file (bytes) or a decoded image. ``randaug="big_vision"`` builds
    ``torch_impl.pp.transforms.RandAugment17(2, 10)``; pass any v2 Transform instead, or ``None`` to skip it.
    ``precise=False`` is big_vision's default decode (fast DCT, needs ``simplejpeg``). ``flip=False`` leaves
    flip_lr out; ``value_range=False`` stops at the uint8 image (the training loop then runs value_range on
    the device: ``torch_impl.data.placement``).
    """
    if isinstance(randaug, str):
        if randaug != "big_vision":
            raise ValueError(f"train_pipeline: randaug must be 'big_vision', a Transform or None, got {randaug!r}")
        randaug = RandAugment17(2, 10, generator=generator)
    steps = [DecodeJpegAndInceptionCrop(size, area_range=area_range, precise=precise, generator=generator)]
    if flip:
        steps.append(FlipLR(generator=generator))
    if randaug is not None:
        steps.append(randaug)
    if value_range:
        steps.append(ValueRange(-1, 1))
    return v2.Compose(steps)


def eval_pipeline(size: int = 224, resize_to: int = 256, *, precise: bool = False) -> v2.Compose:
    """ViT-S/16's eval pp ``decode|resize_small(256)|central_crop(224)|value_range(-1,1)``."""
    return v2.Compose([DecodeJpeg(precise=precise), ResizeSmall(resize_to), CentralCrop(size), ValueRange(-1, 1)])


class FastTrainPipeline:
    """bytes -> float32 (3, size, size) in [-1, 1]: big_vision's ViT training preprocessing, fast.

    ``box_sampler(height, width, generator) -> (top, left, h, w)`` defaults to
    ``torch_impl.pp.crop.sample_inception_box`` (big_vision's crop distribution);
    ``randaug`` is ``(num_ops, magnitude)`` or None; ``generator`` seeds every random draw.
    ``output="float"`` gives value_range(-1, 1) floats, ``"uint8"`` stops before it.
    """

    def __init__(self, size: int = 224, *, randaug: tuple[int, float] | None = (2, 10), flip: bool = True,
                 area_range: tuple[float, float] = (0.05, 1.0), fast_dct: bool = True,
                 box_sampler: Callable | None = None, generator: torch.Generator | None = None,
                 output: str = "float", crop_decode: bool = True):
        if output not in ("float", "uint8"):
            raise ValueError(f"output must be 'float' or 'uint8', got {output!r}")
        self.size, self.flip, self.fast_dct, self.output = int(size), bool(flip), bool(fast_dct), output
        # crop_decode=False: the previous decode (rows down to the window, then a slice), for benchmarks only
        self.crop_decode = bool(crop_decode)
        _check_ranges(1, 1, area_range, BIG_VISION_ASPECT_RATIO_RANGE, 1)
        self.area_range = tuple(float(a) for a in area_range)
        # validated here, where the pipeline is built (the kernels run any level >= 0)
        self.randaug = None if randaug is None else check_randaug(*randaug)[:2]
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self._box_sampler = box_sampler

    def sample_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        if self._box_sampler is not None:
            return tuple(int(v) for v in self._box_sampler(height, width, self.generator))
        if height > 0 and width > 0:
            # = inception_crop.sample_inception_box (same draws, same box), without its array overhead.
            return sample_inception_box1(height, width, self.area_range, generator=self.generator)
        return tuple(int(v) for v in sample_inception_box(height, width, area_range=self.area_range,
                                                          generator=self.generator))

    def plan(self, data: bytes) -> tuple[tuple[int, int, int, int], bool]:
        """This image's random draws, in ``__call__``'s order, without decoding: (crop box, flip). The
        device-decode path (``runtime.device_decode``) ships them with the JPEG bytes."""
        h, w = jpeg_shape(data)
        box = self.sample_box(h, w)
        flip = self.flip and bool(torch.randint(0, 2, (1,), generator=self.generator))
        return box, flip

    def __call__(self, data: bytes, out: torch.Tensor | None = None) -> torch.Tensor:
        """``out``: a (3, size, size) tensor of the output dtype (e.g. a row of a batch, data.batching) to write
        the image into; without RandAugment the C path decodes, resizes, flips (and converts) straight into it."""
        box, flip = self.plan(data)
        # Without RandAugment, value_range runs inside the resize kernel (same bits, one pass less).
        fused = self.randaug is None and self.output == "float"
        img = crop_resize_flip(data, box, self.size, flip=flip, fast_dct=self.fast_dct, exact=self.crop_decode,
                               value_range=fused, out=out if self.randaug is None else None)
        if self.randaug is not None:
            img = fast_randaugment(img, self.randaug[0], self.randaug[1], generator=self.generator)
        # the image is ``out`` when the C path wrote into it, else a new tensor the batch assembly copies
        # (data.batching.fill_batch: the one place that does)
        return img if self.output == "uint8" or fused else to_value_range(img)


__all__ = ["train_pipeline", "eval_pipeline", "FastTrainPipeline"]

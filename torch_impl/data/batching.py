"""Batches written in place: each sample's image goes straight into its row of one preallocated (N, C, H, W)
tensor (in shared memory inside a DataLoader worker, as ``default_collate`` allocates it), instead of one
tensor per sample and a ``torch.stack`` copy of all of them.

The fast CPU path (torch_impl.pp.tf_jpeg.decode_resize: decode, resize, flip and value_range in one C call)
writes its output into the row it is given, so the batch costs no extra pass over the pixels. The same code
runs in training (``ImageFiles.__getitems__``, which torch's DataLoader calls with a batch's indices, then
``loader.collate_train``) and in ``parity bench pipeline`` (``fast (ours)``).

Semantics are those of per-sample items + ``default_collate``: the same samples, in the same order, with the
same draws (each sample reseeds the pipeline's generator from its own seed); a sample that cannot be written
in place (a fallback path returned a new tensor) is copied into its row; if a sample's image has another
shape or dtype than the first one's, the rows written so far stay separate tensors and ``default_collate``
stacks them as before.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod

import torch

__all__ = ["new_batch", "fill_batch", "batch_of_rows"]


def new_batch(n: int, like: torch.Tensor) -> torch.Tensor:
    """An uninitialised (n, *like.shape) tensor of like's dtype; in a DataLoader worker in shared memory (what
    ``default_collate`` does, so the batch reaches the main process without a copy)."""
    shape = (n, *like.shape)
    if torch.utils.data.get_worker_info() is not None:
        storage = like._typed_storage()._new_shared(prod(shape), device=like.device)
        return like.new(storage).resize_(*shape)
    return torch.empty(shape, dtype=like.dtype, device=like.device)


def fill_batch(n: int, produce: Callable[[int, torch.Tensor | None], torch.Tensor]) -> torch.Tensor | list:
    """``produce(k, out)`` -> sample k's image, written into ``out`` (row k of the batch) when it can be, or a
    new tensor; out is None for the first sample, whose image decides the batch's shape and dtype. Returns the
    batch tensor, or the list of images when they do not all have the first one's shape and dtype."""
    batch, images = None, []
    for k in range(n):
        out = batch[k] if batch is not None else None
        img = produce(k, out)
        if k == 0 and isinstance(img, torch.Tensor):
            batch = new_batch(n, img)
            batch[0].copy_(img)
            img = batch[0]
        elif out is not None and img is not out:
            if isinstance(img, torch.Tensor) and img.shape == out.shape and img.dtype == out.dtype:
                out.copy_(img)
                img = out
            else:
                batch = None          # mixed shapes/dtypes: separate tensors from here on
        images.append(img)
    if batch is not None and len(images) == n:
        return batch
    return images


def batch_of_rows(images: Sequence) -> torch.Tensor | None:
    """The (N, ...) tensor whose rows 0..N-1 are exactly ``images`` (as :func:`fill_batch` leaves them), else
    None (then they are stacked)."""
    if not images or not isinstance(images[0], torch.Tensor):
        return None
    base = images[0]._base
    if base is None or base.dim() == 0 or base.shape[0] != len(images) or not base.is_contiguous():
        return None
    step = base.stride(0) * base.element_size()
    for k, im in enumerate(images):
        if not isinstance(im, torch.Tensor) or im._base is not base or im.shape != base.shape[1:] or \
                im.data_ptr() != base.data_ptr() + k * step:
            return None
    return base

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

Reused shared memory (:class:`BatchPool`): a DataLoader worker hands every batch to the main process in a
shared-memory segment. A fresh segment per batch (what ``default_collate`` does) costs the worker a page fault
and a zeroed page for every 4 KiB it writes, and the segment's teardown: measured 0.45-0.53 ms per float32
224x224 image (0.13-0.15 ms uint8) on a 2-core AMD EPYC VM (tmpfs pages, no huge pages), as much as decoding
the image. So each worker keeps a few segments and writes its batches into one the main process has given
back. The main process gives a batch back (:func:`release`) only when it is done reading it (the training loop:
after the micro-step's backward); a batch never given back is never written again (the pool then allocates a
new segment, and past ``max_slots`` fresh ones, as before), so reuse can never overwrite a batch still in use.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from math import prod

import torch

__all__ = ["new_batch", "fresh_batch", "fill_batch", "batch_of_rows", "BatchPool", "SlotToken", "worker_pool",
           "slot_of", "release", "pool_enabled", "ENV_BATCH_POOL"]

# Bytes in front of a pooled batch: its in-use flag (int32), then padding so the pixels start 64-byte aligned
# (the C resize writes them with AVX2 stores).
_HEADER = 64


class SlotToken:
    """The in-use flag of one pooled batch segment. Pickled with the batch (its flag is a view of the same
    shared segment), it reaches the main process unchanged: torch's pin_memory leaves objects without a
    ``pin_memory`` method as they are, so the token still names the worker's segment after pinning."""

    __slots__ = ("flag",)

    def __init__(self, flag: torch.Tensor):
        self.flag = flag

    def release(self) -> None:
        """The batch in this segment will not be read again: its worker may write the next batch into it."""
        self.flag.fill_(0)

    def __reduce__(self):
        return SlotToken, (self.flag,)


class BatchPool:
    """Batch tensors in reused (shared-memory) segments, one pool per process.

    ``new_batch(n, like)`` returns an uninitialised (n, *like.shape) tensor of like's dtype in a segment whose
    previous batch was released (:meth:`SlotToken.release`), else in a new segment (up to ``max_slots``
    segments), else in a fresh tensor outside the pool. ``shared=False`` pools ordinary memory (tests)."""

    def __init__(self, max_slots: int, *, shared: bool = True):
        if max_slots < 1:
            raise ValueError(f"BatchPool: max_slots must be >= 1, got {max_slots}")
        self.max_slots, self.shared = int(max_slots), bool(shared)
        self._slots: list[tuple[torch.UntypedStorage, torch.Tensor]] = []    # (segment, its in-use flag)
        self.allocated = 0                           # segments created (for tests and benchmarks)

    def _segment(self, nbytes: int) -> tuple[torch.UntypedStorage, torch.Tensor] | None:
        for storage, flag in self._slots:
            if storage.nbytes() == _HEADER + nbytes and int(flag) == 0:
                return storage, flag
        if len(self._slots) >= self.max_slots:
            return None
        size = _HEADER + nbytes
        storage = torch.UntypedStorage._new_shared(size) if self.shared else torch.UntypedStorage(size)
        flag = torch.empty(0, dtype=torch.int32).set_(storage, 0, (1,))
        self._slots.append((storage, flag))
        self.allocated += 1
        return storage, flag

    def new_batch(self, n: int, like: torch.Tensor) -> torch.Tensor:
        shape = (n, *like.shape)
        itemsize = like.element_size()
        seg = self._segment(prod(shape) * itemsize) if like.device.type == "cpu" else None
        if seg is None:
            return fresh_batch(n, like, shared=self.shared)
        storage, flag = seg
        flag.fill_(1)
        return torch.empty(0, dtype=like.dtype).set_(storage, _HEADER // itemsize, shape)

    def give_back(self, batch: torch.Tensor) -> None:
        """Release the segment of a batch this pool handed out (a no-op for a batch outside the pool)."""
        token = self.token(batch)
        if token is not None:
            token.release()

    def token(self, batch: torch.Tensor) -> SlotToken | None:
        """The token of a batch this pool handed out and that is still in use (None for a batch outside the
        pool)."""
        for storage, flag in self._slots:
            if batch.data_ptr() == storage.data_ptr() + _HEADER and int(flag) == 1:
                return SlotToken(flag)
        return None


def fresh_batch(n: int, like: torch.Tensor, *, shared: bool) -> torch.Tensor:
    """A new uninitialised (n, *like.shape) tensor of like's dtype; ``shared``: in a new shared-memory segment,
    as ``default_collate`` allocates a batch in a DataLoader worker."""
    shape = (n, *like.shape)
    if shared:
        storage = like._typed_storage()._new_shared(prod(shape), device=like.device)
        return like.new(storage).resize_(*shape)
    return torch.empty(shape, dtype=like.dtype, device=like.device)


_WORKER_POOL: BatchPool | bool | None = None     # False: switched off (VIT_PARITY_BATCH_POOL=0)
PREFETCH_FACTOR = 4     # batches each DataLoader worker keeps ready (loader.make_loader)
# A worker has up to prefetch_factor batches in flight, the main process reads one more and may not have given
# the one before back yet: prefetch_factor + 2 segments are reused in steady state; one spare.
WORKER_POOL_SLOTS = PREFETCH_FACTOR + 3


# VIT_PARITY_BATCH_POOL=0: every batch in a fresh segment, as default_collate does (the opt-out, and the
# baseline of `parity bench e2e`'s loader A/B). Read when a worker first asks, so a DataLoader's workers
# inherit the setting of the process that starts them.
ENV_BATCH_POOL = "VIT_PARITY_BATCH_POOL"


def pool_enabled() -> bool:
    return os.environ.get(ENV_BATCH_POOL, "1") not in ("0", "false", "no")


def worker_pool() -> BatchPool | None:
    """This DataLoader worker's pool (None outside a worker: the main process's batches are ordinary memory,
    which the allocator already reuses; None with VIT_PARITY_BATCH_POOL=0)."""
    global _WORKER_POOL
    if torch.utils.data.get_worker_info() is None:
        return None
    if _WORKER_POOL is None:
        _WORKER_POOL = BatchPool(WORKER_POOL_SLOTS) if pool_enabled() else False
    return _WORKER_POOL or None


def new_batch(n: int, like: torch.Tensor) -> torch.Tensor:
    """An uninitialised (n, *like.shape) tensor of like's dtype; in a DataLoader worker in shared memory (what
    ``default_collate`` does, so the batch reaches the main process without a copy), reused through the
    worker's :class:`BatchPool`."""
    pool = worker_pool()
    if pool is not None:
        return pool.new_batch(n, like)
    return fresh_batch(n, like, shared=torch.utils.data.get_worker_info() is not None)


def slot_of(batch: torch.Tensor) -> SlotToken | None:
    """The token of a batch from this worker's pool, to send with it (``loader.collate_train``)."""
    pool = worker_pool()
    return pool.token(batch) if pool is not None else None


def release(batch: dict) -> None:
    """The main process is done reading this loader batch: give its segment back to its worker (a no-op for
    batches outside a pool)."""
    token = batch.get("slot") if isinstance(batch, dict) else None
    if token is not None:
        token.release()


def fill_batch(n: int, produce: Callable[[int, torch.Tensor | None], torch.Tensor],
               alloc: Callable[[int, torch.Tensor], torch.Tensor] = new_batch,
               abandon: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor | list:
    """``produce(k, out)`` -> sample k's image, written into ``out`` (row k of the batch) when it can be, or a
    new tensor; out is None for the first sample, whose image decides the batch's shape and dtype. Returns the
    batch tensor, or the list of images when they do not all have the first one's shape and dtype.
    ``alloc(n, first_image)`` makes the batch (:func:`new_batch`); ``abandon(batch)`` is called on a batch
    given up (mixed shapes, or ``produce`` raised), default: its pool segment is released."""
    batch, images = None, []
    try:
        for k in range(n):
            out = batch[k] if batch is not None else None
            img = produce(k, out)
            if k == 0 and isinstance(img, torch.Tensor):
                batch = alloc(n, img)
                batch[0].copy_(img)
                img = batch[0]
            elif out is not None and img is not out:
                if isinstance(img, torch.Tensor) and img.shape == out.shape and img.dtype == out.dtype:
                    out.copy_(img)
                    img = out
                else:
                    # mixed shapes/dtypes: separate tensors from here on. The rows written so far stay views
                    # of the batch until default_collate stacks them, in this process, before it asks the
                    # pool for another batch: the segment can go back now.
                    _abandon(batch, abandon)
                    batch = None
            images.append(img)
    except BaseException:
        if batch is not None:
            _abandon(batch, abandon)
        raise
    if batch is not None and len(images) == n:
        return batch
    return images


def _abandon(batch: torch.Tensor, abandon) -> None:
    if abandon is not None:
        abandon(batch)
    elif (pool := worker_pool()) is not None:
        pool.give_back(batch)


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

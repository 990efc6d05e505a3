"""Which example each step sees, and the train/minival split (big_vision trains by steps on an endlessly
repeated, shuffled ``train[:99%]`` and evaluates ``train[99%:]`` as minival).

* Split: a listing sorted by class makes a naive 99% slice drop whole classes, so :func:`stratified_split`
  holds out the same fraction of EVERY class, choosing the files by a seeded hash of their relative path:
  the split does not depend on listing order, file system or machine, and is stable across runs.
* Order: :class:`StepSampler` is an infinite stream: position ``p`` of the stream is element ``p % n`` of the
  permutation for epoch ``p // n``, seeded by ``(seed, epoch)``. Step ``s`` consumes positions
  ``[s*B, (s+1)*B)``, so resuming at step ``s`` is one integer, and the stream is the same for any number of
  processes / accumulation steps.
* Augmentation randomness: every sample carries a seed derived from ``(seed, position)`` (:func:`mix_seed`),
  so the images do not depend on the number of DataLoader workers or on which worker decodes them.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


def _hash_unit(key: str, seed: int) -> float:
    h = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def stratified_split(keys: Sequence[str], labels: Sequence[int], train_fraction: float, *, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, holdout) holding out ``1 - train_fraction`` of every class.

    The holdout size is ``N - round(N * train_fraction)`` in total (tfds' ``train[:99%]`` of ImageNet's
    1,281,167 images has 1,268,355, and so does ours), shared among classes in proportion to their size
    (largest remainders), with at least one image of every class on each side when a class has two or more
    (for tiny classes this takes precedence; the total is then restored from the other classes if possible).
    Inside a class the held-out files are those with the smallest ``sha256(seed:relative_path)``: stable
    across runs and machines, independent of the listing order. ``train_fraction=1`` holds out nothing.
    """
    labels = np.asarray(labels)
    n = len(keys)
    if len(labels) != n:
        raise ValueError(f"stratified_split: {n} keys but {len(labels)} labels")
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"stratified_split: train_fraction must be in (0, 1], got {train_fraction}")
    if train_fraction == 1.0:
        return np.arange(n), np.arange(0)
    n_hold = n - int(round(n * train_fraction))
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n_hold / n
    take = np.floor(quota).astype(int)
    rest = n_hold - take.sum()
    order = sorted(range(len(classes)), key=lambda i: (-(quota[i] - take[i]), classes[i]))
    for i in order[:rest]:
        take[i] += 1
    # every class with 2+ images keeps at least one on each side; then restore the total where possible
    lo, hi = np.where(counts >= 2, 1, 0), np.where(counts >= 2, counts - 1, 0)
    take = np.clip(take, lo, hi)
    while take.sum() > n_hold and (take > lo).any():
        i = int(np.argmax(np.where(take > lo, take - quota, -np.inf)))
        take[i] -= 1
    while take.sum() < n_hold and (take < hi).any():
        i = int(np.argmax(np.where(take < hi, quota - take, -np.inf)))
        take[i] += 1
    hold = []
    for c, k in zip(classes, take):
        idx = np.flatnonzero(labels == c)
        h = np.array([_hash_unit(keys[i], seed) for i in idx])
        hold.extend(idx[np.argsort(h, kind="stable")[:k]].tolist())
    mask = np.zeros(n, bool)
    mask[hold] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


# ---------------------------------------------------------------------------- samplers
def mix_seed(*xs: int) -> int:
    """A 63-bit seed from integers (stable across machines and Python versions, unlike hash())."""
    h = hashlib.blake2b(b",".join(str(int(x)).encode() for x in xs), digest_size=8).digest()
    return int.from_bytes(h, "big") >> 1


class StepSampler(Sampler):
    """Infinite stream of ``(index, sample_seed)`` for one process, starting at ``start_step``.

    Each global batch of ``global_batch`` stream positions is cut into ``world_size * accum_steps``
    micro-batches; process ``rank`` gets micro-batches ``rank*accum_steps ... rank*accum_steps+accum-1``
    of every step, in order. Epoch ``e`` is ``randperm(n)`` seeded by ``(seed, e)`` (reshuffled per epoch).
    """

    def __init__(self, n: int, global_batch: int, *, seed: int, rank: int = 0, world_size: int = 1,
                 accum_steps: int = 1, start_step: int = 0):
        if global_batch % (world_size * accum_steps):
            raise ValueError(f"batch {global_batch} is not divisible by world_size {world_size} x "
                             f"accumulation steps {accum_steps}")
        if n <= 0:
            raise ValueError("StepSampler: empty dataset")
        self.n, self.B, self.seed = n, global_batch, seed
        self.rank, self.world, self.accum, self.start_step = rank, world_size, accum_steps, start_step
        self.micro = global_batch // (world_size * accum_steps)
        self._epoch, self._perm = None, None

    def permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
            self._perm, self._epoch = torch.randperm(self.n, generator=g), epoch
        return self._perm

    def position(self, step: int, micro: int, j: int) -> int:
        return step * self.B + micro * self.micro + j

    def __iter__(self):
        step = self.start_step
        while True:
            for k in range(self.accum):
                m = self.rank * self.accum + k
                for j in range(self.micro):
                    p = self.position(step, m, j)
                    idx = int(self.permutation(p // self.n)[p % self.n])
                    yield idx, mix_seed(self.seed, 1, p)
            step += 1

    def __len__(self):  # pragma: no cover - infinite; DataLoader only needs it for len()
        raise TypeError("StepSampler is infinite")


class ShardSampler(Sampler):
    """Finite, ordered evaluation indices for one process: ``range(n)[rank::world_size]``."""

    def __init__(self, n: int, *, rank: int = 0, world_size: int = 1, seed: int = 0):
        self.ids = list(range(rank, n, world_size))
        self.seed = seed

    def __iter__(self):
        return iter((i, mix_seed(self.seed, 2, i)) for i in self.ids)

    def __len__(self):
        return len(self.ids)


__all__ = ["stratified_split", "StepSampler", "ShardSampler", "mix_seed"]

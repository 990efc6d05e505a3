"""big_vision's training objective: the loss (``big_vision/utils.py: softmax_xent``) on soft labels, and
mixup (``big_vision/utils.py: get_mixup``) with a torch.Generator sampler.

Mixup, what is matched:
* The coefficient: a ~ Beta(p, p), then a = max(a, 1 - a), so the "own" image always weighs >= 0.5.
  (vit_s16_i1k uses p = 0.2: most draws are close to 1.) One coefficient per step for the whole batch.
* The mix: ``a * x + (1 - a) * roll(x, shift=1, axis=0)`` applied to the images AND the (one-hot) labels:
  example i is mixed with example i - 1 (example 0 with the last one).
* big_vision runs mixup inside a shard_map over the "data" mesh axis, so on N devices the roll happens
  within each device's slice of the global batch (the first example of each slice is mixed with the last
  of the same slice). ``shards=N`` reproduces that; ``shards=1`` (default) is the single-device case.
* The float32 arithmetic is the same: ``a * x`` and ``(1 - a) * rolled`` rounded separately, then added.

big_vision draws ``a`` with JAX's threefry RNG folded with the step count; a torch run cannot draw the
same numbers, so :func:`sample_mixup_coefficient` draws from the same distribution (checked by a
two-sample test against big_vision's draws) with an explicit torch.Generator.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _standard_gamma(shape: float, generator: torch.Generator | None) -> float:
    """One Gamma(shape, 1) draw by Marsaglia & Tsang (2000), with the boost U**(1/shape) for shape < 1."""
    if shape < 1.0:
        u = float(torch.rand((), dtype=torch.float64, generator=generator))
        return _standard_gamma(shape + 1.0, generator) * u ** (1.0 / shape)
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = float(torch.randn((), dtype=torch.float64, generator=generator))
        v = (1.0 + c * x) ** 3
        if v <= 0.0:
            continue
        u = float(torch.rand((), dtype=torch.float64, generator=generator))
        if u > 0.0 and math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v


def sample_mixup_coefficient(p: float, generator: torch.Generator | None = None) -> float:
    """a ~ Beta(p, p), folded to max(a, 1 - a) as big_vision does. ``p`` is config.mixup.p (> 0)."""
    if not (isinstance(p, (int, float)) and p > 0):
        raise ValueError(f"mixup p must be a positive number (config.mixup.p), got {p!r}; p=0 means no mixup")
    x = _standard_gamma(float(p), generator)
    y = _standard_gamma(float(p), generator)
    if x + y == 0.0:  # both underflowed (tiny p): Beta(p, p) puts its mass at the ends
        a = 1.0
    else:
        a = x / (x + y)
    return max(a, 1.0 - a)


def mixup(images: torch.Tensor, labels: torch.Tensor, a, *, shards: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """big_vision's mix of a batch with itself rolled by one along the batch axis.

    ``images`` (N, ...) float, ``labels`` (N, classes) float (one-hot or soft), ``a`` a float (or 0-d
    tensor) in [0.5, 1]. ``shards``: mix within N/shards-sized slices, as big_vision's per-device mixup.
    """
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"mixup: images have batch {images.shape[0]}, labels {labels.shape[0]}")
    if not images.is_floating_point() or not labels.is_floating_point():
        raise TypeError("mixup: images and labels must be float tensors (one-hot labels, value_range'd images); "
                        f"got {images.dtype} and {labels.dtype}")
    n = images.shape[0]
    if shards < 1 or n % shards:
        raise ValueError(f"mixup: batch {n} is not divisible into shards={shards}")

    def mix(t: torch.Tensor) -> torch.Tensor:
        coef = torch.as_tensor(a, dtype=t.dtype, device=t.device)
        if shards == 1:
            rolled = torch.roll(t, shifts=1, dims=0)
        else:
            rolled = torch.roll(t.reshape(shards, n // shards, *t.shape[1:]), shifts=1, dims=1).reshape(t.shape)
        return coef * t + (1 - coef) * rolled

    return mix(images), mix(labels)


def softmax_xent(logits: torch.Tensor, labels: torch.Tensor, *, reduction: bool = True) -> torch.Tensor:
    """-sum(labels * log_softmax(logits), -1), averaged over the batch when ``reduction``.

    Labels are probabilities (one-hot, mixed-up or smoothed); they are not renormalised. Equals
    ``F.cross_entropy(logits, labels)`` with probability targets, which is how torch spells it.
    """
    if logits.shape != labels.shape:
        raise ValueError(f"softmax_xent: logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ; "
                         "labels must be one-hot/soft (N, classes), e.g. from F.one_hot(...).float()")
    nll = -(labels * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    return nll.mean() if reduction else nll


__all__ = ["softmax_xent", "mixup", "sample_mixup_coefficient"]

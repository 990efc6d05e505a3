"""One training step as big_vision's ``train.py: update_fn`` does it.

Order (big_vision): mixup the batch (images and one-hot labels) -> forward in train mode ->
softmax_xent (mean over the batch) -> gradients (optionally accumulated over equal chunks, equal to one
big batch) -> optimizer update (clip, Adam, lr, weight decay, schedule) -> next schedule step.

:func:`update` is the update itself, after the gradients are in ``p.grad``: the ONE place that orders
optimizer and schedule. The training loop (``torch_impl.train.loop``) calls it for every step, and
:func:`train_step` (what the optimizer parity family runs against big_vision's trajectory) calls it too,
so the checked update is the trained one.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from torch_impl.optim.adam import BigVisionAdam, clip_by_global_norm, global_norm
from torch_impl.optim.objective import mixup, softmax_xent


def _logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    out = model(images)
    return out[0] if isinstance(out, (tuple, list)) else out


def loss_and_grad(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, accum_steps: int = 1) -> torch.Tensor:
    """Mean softmax_xent over the batch; leaves the batch-mean gradient in ``p.grad``.

    With ``accum_steps`` > 1 the batch is cut into equal consecutive chunks, per-chunk (mean) losses and
    gradients are summed and divided by ``accum_steps`` at the end, as big_vision's
    ``utils.accumulate_gradient``; with equal chunks this is the gradient of the whole batch.
    """
    n = images.shape[0]
    if accum_steps < 1 or n % accum_steps:
        raise ValueError(f"accum_steps={accum_steps} must divide the batch size {n}")
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    if accum_steps == 1:
        loss = softmax_xent(_logits(model, images), labels)
        loss.backward()
        return loss.detach()
    size = n // accum_steps
    total = None
    for i in range(accum_steps):
        sl = slice(i * size, (i + 1) * size)
        li = softmax_xent(_logits(model, images[sl]), labels[sl])
        li.backward()  # torch sums into p.grad, like big_vision's running sum
        total = li.detach() if total is None else total + li.detach()
    for p in params:
        if p.grad is not None:
            p.grad.div_(accum_steps)
    return total / accum_steps


@dataclass(frozen=True)
class StepStats:
    """What one update did: the training ``loss`` (before the update), ``grad_norm`` (the global L2 norm of
    the raw gradients, before any clipping: what optax's ``clip_by_global_norm`` compares with the bar, and
    big_vision's ``l2_grads``) and ``lr`` (the learning rate this update used: base lr x schedule)."""
    loss: float
    grad_norm: float
    lr: float


def update(optimizer: torch.optim.Optimizer, lr_scheduler, loss=float("nan")) -> StepStats:
    """big_vision's update with the gradients already in ``p.grad``: optimizer step (clip, Adam, lr, weight
    decay, schedule multiplier of THIS update), THEN the schedule advances. (Advancing the schedule first
    would apply update k with the multiplier of update k + 1: the warmup would start at lr / warmup_steps
    instead of 0.) The gradients stay in ``p.grad`` (callers inspect them; the next backward starts from
    cleared ones). ``loss``: this step's loss, passed through to the stats."""
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    grad_norm = float(global_norm([p.grad for p in params]))
    lr = float(optimizer.param_groups[0]["lr"])
    optimizer.step()
    if lr_scheduler is not None:
        lr_scheduler.step()
    return StepStats(float(loss), grad_norm, lr)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, lr_scheduler, images: torch.Tensor,
               labels: torch.Tensor, *, grad_clip_norm: float | None = None, mixup_a: float | None = None,
               mixup_shards: int = 1, accum_steps: int = 1) -> float:
    """One big_vision update; returns the training loss (before the update) as a float.

    ``images`` (N, 3, H, W) float, ``labels`` (N, classes) one-hot float. ``mixup_a``: the mixup
    coefficient for this step (see torch_impl.optim.objective.sample_mixup_coefficient), None for no mixup.
    ``grad_clip_norm``: clip here (optax semantics) for an optimizer that does not clip itself;
    :class:`BigVisionAdam` built with ``grad_clip_norm`` already clips, and giving it twice is an error.
    """
    if isinstance(optimizer, BigVisionAdam) and grad_clip_norm is not None and optimizer.grad_clip_norm is not None:
        raise ValueError("train_step: the optimizer already clips gradients (built with grad_clip_norm="
                         f"{optimizer.grad_clip_norm}); do not pass grad_clip_norm again")
    model.train()
    if mixup_a is not None:
        images, labels = mixup(images, labels, mixup_a, shards=mixup_shards)
    loss = loss_and_grad(model, images, labels, accum_steps=accum_steps)
    if grad_clip_norm is not None:
        params = [p for p in model.parameters() if p.grad is not None]
        clipped, _ = clip_by_global_norm([p.grad for p in params], grad_clip_norm)
        for p, g in zip(params, clipped):
            p.grad = g
    return update(optimizer, lr_scheduler, loss).loss


__all__ = ["StepStats", "update", "loss_and_grad", "train_step"]

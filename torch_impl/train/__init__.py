"""The training run: the loop (loop), checkpoints (checkpoint) and metrics sinks (metrics).

``torch_impl.train`` also keeps the one-step API of DESIGN.md (``build_optimizer``, ``train_step``,
``mixup``, ``loss_and_grad``), which lives in :mod:`torch_impl.optim`."""
from torch_impl.optim.adam import build_optimizer
from torch_impl.optim.objective import mixup
from torch_impl.optim.step import loss_and_grad, train_step, update

__all__ = ["build_optimizer", "train_step", "loss_and_grad", "mixup", "update"]

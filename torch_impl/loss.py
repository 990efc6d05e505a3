"""big_vision's classification loss (``big_vision/utils.py: softmax_xent``) on soft labels."""
from __future__ import annotations

import torch
import torch.nn.functional as F


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

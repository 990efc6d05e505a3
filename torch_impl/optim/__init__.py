"""big_vision's optimisation (``big_vision/optax.py`` and ``train.py``'s update): the Adam chain (adam), the
learning-rate schedule (schedule), the objective (loss and mixup) and the one update step (step)."""
from torch_impl.optim.adam import (DEFAULT_WD_MULTS, MU_DTYPES, BigVisionAdam, big_vision_names, build_optimizer,
                                   clip_by_global_norm, decayed_names, generic_big_vision_name, global_norm,
                                   param_groups, wd_multipliers)
from torch_impl.optim.objective import mixup, sample_mixup_coefficient, softmax_xent
from torch_impl.optim.step import loss_and_grad, train_step

__all__ = ["BigVisionAdam", "build_optimizer", "param_groups", "big_vision_names", "generic_big_vision_name",
           "wd_multipliers", "decayed_names", "global_norm", "clip_by_global_norm", "DEFAULT_WD_MULTS", "MU_DTYPES",
           "mixup", "sample_mixup_coefficient", "softmax_xent", "loss_and_grad", "train_step"]

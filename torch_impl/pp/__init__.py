"""big_vision's preprocessing (``big_vision/pp``) in torch, one home per concept.

Leaves: tf_math (TF's float32 arithmetic), jpeg (decode), resize, geometry. Ops: crop (inception crop,
central crop), randaug (the op table and the reference kernels). transforms: torchvision v2 wrappers.
backends/: numba, numpy (the fast CPU path), batched (per-sample ops on a batch, any device): the same bits
as the reference kernels, checked by the same fixtures. pipelines: the train/eval pp strings."""

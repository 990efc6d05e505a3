"""Training and evaluation data: datasets (ImageFolder trees, tfds exports, synthetic images), sampling
(the step-indexed stream and the stratified split), placement (which stage runs where) and loader."""
from torch_impl.data.datasets import (IMAGE_EXTENSIONS, FileList, ImageFiles, Splits, SyntheticImages, folder_splits,
                                      list_image_folder, load_rgb, splits_from_arg, synthetic_splits)
from torch_impl.data.loader import PREFETCH_FACTOR, assemble_batch, collate_train, deferred_jpegs, make_loader
from torch_impl.data.placement import (Pipeline, Placement, eval_transform, placement, placement_for,
                                       train_transform, train_transform_for, value_range_on_device)
from torch_impl.data.sampling import ShardSampler, StepSampler, mix_seed, stratified_split

_mix = mix_seed  # the old private name (torch_impl.data._mix), kept for code written against it

__all__ = ["FileList", "list_image_folder", "stratified_split", "load_rgb", "ImageFiles", "SyntheticImages",
           "StepSampler", "ShardSampler", "mix_seed", "make_loader", "collate_train", "deferred_jpegs",
           "assemble_batch", "Pipeline", "train_transform", "train_transform_for", "eval_transform", "Splits",
           "synthetic_splits", "folder_splits", "splits_from_arg", "PREFETCH_FACTOR", "IMAGE_EXTENSIONS",
           "value_range_on_device", "Placement", "placement", "placement_for"]

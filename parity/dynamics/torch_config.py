"""recipe.json -> torch_impl TrainConfig: the same recipe, in the config users train with.

Every field is set through ``torch_impl.config.apply_overrides`` with big_vision's field names (the same
keys ``parity train --set`` takes), so an unknown or mistyped key fails exactly as it would for a user.
Only the ``runtime.*`` keys have no big_vision counterpart (CPU, no TensorBoard, no progress bar).
"""
from __future__ import annotations

from typing import Any

from parity.dynamics import RecipeError


def _get(recipe: dict, dotted: str) -> Any:
    obj = recipe
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            raise RecipeError(f"recipe: missing field {dotted!r} (see parity/dynamics/recipe.json)")
        obj = obj[part]
    return obj


def recipe_overrides(recipe: dict, seed: int, *, total_steps: int | None = None, num_workers: int = 1) -> dict:
    """The ``--set`` overrides (on top of vit_s16_i1k) that make the torch loop run ``recipe``."""
    pp, model, opt = _get(recipe, "pp"), _get(recipe, "model"), _get(recipe, "optimizer")
    if _get(recipe, "model.name") != "vit":
        raise RecipeError(f"recipe: model.name={model['name']!r}; the torch side implements 'vit' only")
    steps = int(total_steps if total_steps is not None else _get(recipe, "total_steps"))
    every = int(_get(recipe, "eval_every_steps"))
    return {
        "seed": int(seed),
        "total_epochs": None,
        "total_steps": steps,
        "num_classes": int(_get(recipe, "data.classes")),
        "loss": _get(recipe, "optimizer.loss"),
        # the reference evaluates on val; training uses every train image (no minival held out)
        "input.data.split": "train",
        "input.batch_size": int(_get(recipe, "batch_size")),
        "input.num_workers": int(num_workers),
        "input.pp.crop_size": int(_get(recipe, "pp.crop_size")),
        "input.pp.inception_area_min": float(_get(recipe, "pp.inception_area_min")),
        "input.pp.flip_lr": bool(_get(recipe, "pp.flip_lr")),
        "input.pp.randaug_num_layers": int(_get(recipe, "pp.randaug_num_layers")),
        "input.pp.randaug_magnitude": int(_get(recipe, "pp.randaug_magnitude")),
        "input.pp.eval_resize_small": int(_get(recipe, "pp.eval_resize_small")),
        "model.width": int(model.get("width")), "model.depth": int(model.get("depth")),
        "model.num_heads": int(model.get("num_heads")), "model.mlp_dim": int(model.get("mlp_dim")),
        "model.patch_size": int(_get(recipe, "model.patch_size")),
        "model.pool_type": _get(recipe, "model.pool_type"), "model.posemb": _get(recipe, "model.posemb"),
        "model.rep_size": _get(recipe, "model.rep_size"), "model.head_zeroinit": bool(_get(recipe, "model.head_zeroinit")),
        "model.dropout": float(_get(recipe, "model.dropout")),
        "grad_clip_norm": float(_get(recipe, "optimizer.grad_clip_norm")),
        "optax_name": _get(recipe, "optimizer.optax_name"),
        "optax.mu_dtype": _get(recipe, "optimizer.mu_dtype"),
        "lr": float(_get(recipe, "optimizer.lr")),
        "wd": float(_get(recipe, "optimizer.wd")),
        "schedule.warmup_steps": int(_get(recipe, "optimizer.warmup_steps")),
        "schedule.decay_type": _get(recipe, "optimizer.decay_type"),
        "mixup.p": float(_get(recipe, "mixup.p")),
        "log_training_steps": 1,            # every step: loss, lr (and grad_norm) per step, as the reference
        "ckpt_steps": 0,                    # only the final checkpoint
        "evals.val.log_steps": every,
        "evals.val.batch_size": int(_get(recipe, "eval_batch_size")),
        "evals.minival.log_steps": 0,
        "runtime.device": "cpu",
        "runtime.tensorboard": False,
        "runtime.progress": False,
        "runtime.keep_checkpoints": 0,
    }


def torch_config(recipe: dict, seed: int, *, total_steps: int | None = None, num_workers: int = 1):
    """A validated TrainConfig for one seed of ``recipe`` (optionally cut to ``total_steps``: the schedule
    then still spans the recipe's steps? No: see run_seed, which keeps the recipe's total and stops early)."""
    from torch_impl.config import ConfigError, apply_overrides, vit_s16_i1k
    if _get(recipe, "pp.value_range") != [-1, 1]:
        raise RecipeError(f"recipe: pp.value_range={recipe['pp']['value_range']!r}; the torch pipeline uses (-1, 1)")
    if _get(recipe, "optimizer.wd_applies_to") != ".*/kernel$":
        raise RecipeError("recipe: optimizer.wd_applies_to must be '.*/kernel$' (big_vision's default wd_mults), "
                          f"got {recipe['optimizer']['wd_applies_to']!r}")
    try:
        return apply_overrides(vit_s16_i1k(), recipe_overrides(recipe, seed, total_steps=total_steps,
                                                               num_workers=num_workers))
    except ConfigError as e:
        raise RecipeError(f"recipe -> torch config: {e}") from None

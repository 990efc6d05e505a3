"""The torch side's variants: the correct recipe and six realistic porting mistakes (negative controls).

Each variant is a set of injections into ONE run of the training loop users run (torch_impl.loop.train),
applied from here so the product code carries no test switches:

* ``config``:      extra config overrides (big_vision field names), e.g. ``mixup.p = 0``;
* ``train_pp``:    a factory for the training preprocessing (the dataset's transform), given the config;
* ``model``:       a function applied to the freshly built model (re-initialise, swap activations);
* ``optimizer``:   a replacement for the loop's ``build_optimizer(cfg, model, total_steps)``.

The mistakes (issue 16, item 5), each what a careful port could plausibly get wrong:

| name        | mistake                                                                                  |
|-------------|------------------------------------------------------------------------------------------|
| tv_randaug  | torchvision ``v2.RandAugment(2, 9)`` (31 bins, black fill, Identity op, signed ops...)     |
|             | instead of big_vision's randaug(2, 10)                                                   |
| rrc_crop    | ``v2.RandomResizedCrop(size)`` (area 8-100%, antialiased resize) instead of the inception |
|             | crop (area 5-100%, decode_and_crop_jpeg + bilinear resize)                               |
| adamw       | ``torch.optim.AdamW(lr, weight_decay=1e-4)`` + clip_grad_norm_: decay lr*1e-4 = ~1000x   |
|             | weaker than big_vision's wd * schedule (not multiplied by lr), on every parameter,       |
|             | fp32 first moment                                                                        |
| torch_init  | PyTorch's default init (``reset_parameters()``: kaiming-uniform Linear/Conv, no zero head)|
| erf_gelu    | ``nn.GELU()`` (exact erf) instead of flax's tanh approximation                            |
| no_mixup    | mixup left out (``mixup.p = 0``)                                                          |
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    config: dict[str, Any] = field(default_factory=dict)
    train_pp: Callable | None = None          # (cfg) -> Pipeline-like callable(x, seed)
    model: Callable | None = None             # (model) -> None, in place
    optimizer: Callable | None = None         # (cfg, model, total_steps) -> (optimizer, scheduler)

    @property
    def negative(self) -> bool:
        return self.name != "correct"


# ---------------------------------------------------------------------------------- preprocessing
def _pipeline(cfg, steps_for):
    """A torch_impl Pipeline (one generator reseeded per sample) around a v2 Compose built by steps_for(g)."""
    import torch
    from torchvision.transforms import v2

    from torch_impl.data.placement import Pipeline
    g = torch.Generator()
    return Pipeline(v2.Compose(steps_for(g)), None, g)


def tv_randaug_pp(cfg):
    """The recipe's crop and flip, then torchvision's RandAugment(2, 9) on the uint8 crop."""
    from torchvision.transforms import v2

    import torch

    from torch_impl.data.placement import Pipeline
    from torch_impl.pp.pipelines import train_pipeline
    pp = cfg.input.pp
    g = torch.Generator()
    slow = train_pipeline(pp.crop_size, randaug=v2.RandAugment(num_ops=2, magnitude=9),
                          area_range=(pp.inception_area_min, 1.0), precise=pp.decode_precise, generator=g)
    return Pipeline(slow, None, g)


def rrc_crop_pp(cfg):
    """Decode, torchvision's RandomResizedCrop(size) with its defaults (scale 0.08-1, ratio 3/4-4/3,
    antialias), then the recipe's flip, big_vision randaug and value_range."""
    from torchvision.transforms import v2

    from torch_impl.pp.transforms import DecodeJpeg, FlipLR, RandAugment17, ValueRange
    pp = cfg.input.pp

    def steps(g):
        return [DecodeJpeg(precise=pp.decode_precise), v2.RandomResizedCrop(pp.crop_size), FlipLR(generator=g),
                RandAugment17(pp.randaug_num_layers, pp.randaug_magnitude, generator=g), ValueRange(-1, 1)]
    return _pipeline(cfg, steps)


# ---------------------------------------------------------------------------------- model
def torch_default_init(model) -> None:
    """What a port that forgets big_vision's initialisers gets: every module's own reset_parameters()
    (nn.Linear/Conv2d: kaiming_uniform(a=sqrt(5)) weights and uniform biases; LayerNorm: ones/zeros); the
    classifier head is then NOT zero-initialised."""
    import torch.nn as nn
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.LayerNorm)):
            m.reset_parameters()


def erf_gelu(model) -> None:
    """Every GELU becomes torch's default nn.GELU() (exact erf)."""
    import torch.nn as nn
    swapped = 0
    for mod in model.modules():
        for name, child in list(mod.named_children()):
            if isinstance(child, nn.GELU):
                setattr(mod, name, nn.GELU())
                swapped += 1
    if not swapped:
        raise RuntimeError("erf_gelu control: the model has no nn.GELU module to swap (model code changed?)")


# ---------------------------------------------------------------------------------- optimizer
def adamw_optimizer(cfg, model, total_steps):
    """torch.optim.AdamW(lr=cfg.lr, weight_decay=1e-4) on every parameter, the recipe's schedule (LambdaLR
    with big_vision's multiplier), gradients clipped with clip_grad_norm_ before each step."""
    import torch

    from torch_impl.optim.schedule import lr_scheduler

    class ClippedAdamW(torch.optim.AdamW):
        def step(self, closure=None):
            if cfg.grad_clip_norm:
                torch.nn.utils.clip_grad_norm_([p for g in self.param_groups for p in g["params"]],
                                               cfg.grad_clip_norm)
            return super().step(closure)

    opt = ClippedAdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = lr_scheduler(opt, {"warmup_steps": cfg.schedule.warmup_steps, "decay_type": cfg.schedule.decay_type},
                         total_steps=total_steps)
    return opt, sched


VARIANTS: dict[str, Variant] = {v.name: v for v in [
    Variant("correct", "the recipe as torch_impl trains it"),
    Variant("tv_randaug", "torchvision v2.RandAugment(2, 9) instead of big_vision's randaug(2, 10)",
            train_pp=tv_randaug_pp),
    Variant("rrc_crop", "v2.RandomResizedCrop (area 8-100%) instead of the inception crop (5-100%)",
            train_pp=rrc_crop_pp),
    Variant("adamw", "torch AdamW(weight_decay=1e-4) + clip_grad_norm_ instead of big_vision's chain",
            optimizer=adamw_optimizer),
    Variant("torch_init", "PyTorch default init instead of big_vision's (no zero-initialised head)",
            model=torch_default_init),
    Variant("erf_gelu", "exact erf GELU instead of flax's tanh approximation", model=erf_gelu),
    Variant("no_mixup", "mixup left out (p = 0 instead of 0.2)", config={"mixup.p": 0.0}),
]}
CONTROLS = tuple(n for n in VARIANTS if n != "correct")


def get(name: str) -> Variant:
    if name not in VARIANTS:
        raise KeyError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[name]

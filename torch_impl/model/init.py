"""Flax's initializers, written for torch tensors, each taking an explicit ``torch.Generator``.

big_vision builds its ViT from flax.linen layers, so "the big_vision init" is the flax initializers it
names (or inherits as defaults). Where PyTorch's own defaults differ, the difference is spelled out here,
because each one changes the distribution of a freshly initialised ViT:

* ``nn.Linear`` / ``nn.Conv2d`` reset with kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  for the weight AND the bias. Flax's ``nn.Dense``/``nn.Conv`` default is lecun_normal (a truncated normal)
  for the kernel and zeros for the bias.
* ``torch.nn.init.trunc_normal_(std=s, a=-2s, b=2s)`` truncates a normal of std ``s``, so the result has a
  SMALLER std (0.8796 s). Flax's ``variance_scaling(..., "truncated_normal")`` divides the std by
  0.87962566103423978 first, so the truncated draw has exactly the requested variance
  (:func:`lecun_normal_`).
* ``nn.MultiheadAttention`` keeps q, k and v in one ``in_proj_weight`` of shape (3*width, width) and applies
  xavier_uniform to that whole matrix: fan_out is 3*width, so the bound is sqrt(6/(4 width)) instead of the
  sqrt(6/(2 width)) flax gets for each of q, k, v (a std 1/sqrt(2) too small); its ``out_proj`` keeps the
  Linear default (kaiming-uniform, std 1/sqrt(3 width)). Flax's ``DenseGeneral`` (which big_vision's
  attention uses) applies xavier_uniform to the kernel reshaped to 2-D (prod(in axes), prod(out axes)),
  i.e. (width, heads*head_dim) for q/k/v and (heads*head_dim, width) for the output projection.

Fans follow flax's ``compute_fans``: for a kernel of shape (..., in, out) the receptive field is the product
of the leading dims; fan_in = in * receptive, fan_out = out * receptive.
"""
from __future__ import annotations

import math

import torch

# std of a unit normal truncated to [-2, 2]; flax divides by it so that the truncated draw keeps the
# requested variance (jax.nn.initializers.variance_scaling, distribution="truncated_normal").
TRUNCATED_NORMAL_STD = 0.87962566103423978


def _on_generator_device(tensor: torch.Tensor, generator: torch.Generator | None, draw) -> torch.Tensor:
    """Run ``draw(t)`` on a tensor living where ``generator`` lives (CPU generator, CUDA model: draw on
    the CPU, then copy), so one seeded CPU generator gives the same init whatever the model's device."""
    if generator is None or tensor.device.type == "meta" or tensor.device == generator.device:
        return draw(tensor)
    tmp = torch.empty(tensor.shape, dtype=tensor.dtype, device=generator.device)
    draw(tmp)
    return tensor.copy_(tmp)


@torch.no_grad()
def xavier_uniform_(tensor: torch.Tensor, fan_in: int, fan_out: int, *,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """flax ``xavier_uniform()``: U(-b, b) with b = sqrt(6 / (fan_in + fan_out)); fans given explicitly
    because torch's weight layout (out, in) and flax's kernel layout (in, out) differ."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return _on_generator_device(tensor, generator, lambda t: t.uniform_(-bound, bound, generator=generator))


@torch.no_grad()
def lecun_normal_(tensor: torch.Tensor, fan_in: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """flax ``lecun_normal()`` = variance_scaling(1, "fan_in", "truncated_normal"): a unit normal truncated
    to [-2, 2], times sqrt(1/fan_in) / 0.8796..., so the std is exactly 1/sqrt(fan_in).

    ``torch.nn.init.trunc_normal_(std=1/sqrt(fan_in))`` without that correction would give 0.88/sqrt(fan_in).
    """
    std = math.sqrt(1.0 / fan_in) / TRUNCATED_NORMAL_STD
    return _on_generator_device(tensor, generator, lambda t: torch.nn.init.trunc_normal_(
        t, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std, generator=generator))


@torch.no_grad()
def normal_(tensor: torch.Tensor, std: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """flax ``normal(stddev)``: N(0, stddev^2), not truncated."""
    return _on_generator_device(tensor, generator, lambda t: t.normal_(0.0, std, generator=generator))


@torch.no_grad()
def zeros_(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.zero_()


@torch.no_grad()
def ones_(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.fill_(1.0)

"""big_vision's optimizer (its optax chain for ``optax_name="scale_by_adam"``) as a torch Optimizer.

big_vision (``big_vision/optax.py: make``) chains, in this order, for every parameter p with gradient g:

  1. clip by global norm: if ||g||_global >= grad_clip_norm: g = (g / ||g||) * grad_clip_norm
     (the norm over ALL parameters, before Adam; nothing is clipped when the norm is below the bar);
  2. optax ``scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0, mu_dtype)``:
        mu = (1 - b1) g + b1 mu ;  nu = (1 - b2) g^2 + b2 nu ;  count += 1
        u = (mu / (1 - b1^count)) / (sqrt(nu / (1 - b2^count) + eps_root) + eps)
     (bias correction on both moments; eps OUTSIDE the square root);
  3. u = u * lr                           (``config.lr``, the peak learning rate)
  4. u = u + wd * mult * p                (only where the big_vision name matches ``wd_mults``, by default
                                           ``.*/kernel$``: Dense/Conv kernels, never biases, LayerNorm
                                           scales, position embeddings, cls tokens);
  5. u = u * schedule(count - 1)          (the schedule multiplier of this update, 0 at update 0 with warmup)
  6. p = p - u

So weight decay is ``wd * schedule * p`` per update: it is NOT multiplied by the learning rate. torch's
AdamW multiplies its ``weight_decay`` by the current lr (p -= lr * weight_decay * p), so big_vision's
``wd=1e-4`` at ``lr=1e-3`` is torch's ``weight_decay = wd / lr = 0.1`` (on the kernels only). Passing
1e-4 to AdamW decays 1000x too weakly.

mu in bfloat16 (big_vision's ViT-S/16 config, ``optax.mu_dtype="bfloat16"``): the stored first moment is
bfloat16. optax computes ``b1 * mu`` with the Python float b1 = 0.9 against the bf16 array, and JAX keeps
that product in bfloat16 ("weak typing"), so b1 acts as bf16(0.9) = 0.8984375 and the product is rounded
to bf16; ``(1 - b1) * g`` stays float32 (0.1). The new moment is float32 for THIS update's direction and
is rounded to bf16 (round-to-nearest-even) only when stored. This class reproduces exactly that.
torch's Adam/AdamW cannot keep a bf16 moment next to fp32 parameters, hence a custom Optimizer.

The schedule multiplier is read from the param group: ``group["lr"] / group["base_lr"]``; any torch LR
scheduler (normally :func:`torch_impl.optim.schedule.lr_scheduler`, a LambdaLR) drives it, and weight decay
follows the same multiplier as in big_vision.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from torch_impl.model.convert import big_vision_names, generic_big_vision_name  # noqa: F401 - re-exported
from torch_impl.optim import schedule as S

DEFAULT_WD_MULTS: tuple[tuple[str, float], ...] = ((".*/kernel$", 1.0),)  # big_vision's default
MU_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, None: torch.float32,
             torch.float32: torch.float32, torch.bfloat16: torch.bfloat16}


def _mu_dtype(mu_dtype) -> torch.dtype:
    try:
        return MU_DTYPES[mu_dtype]
    except (KeyError, TypeError):
        raise ValueError(f"mu_dtype={mu_dtype!r}: use 'float32' or 'bfloat16' (big_vision's config.optax.mu_dtype)") from None


def _f32(x: float) -> float:
    """x rounded to float32, as a Python float. Scalars enter every tensor op as exact float32 values, so
    the op gives the float32 result whether torch computes it in float32 or float64 (double rounding is
    harmless for +, -, *, /, sqrt since 53 >= 2 * 24 + 2), on CPU and CUDA alike, with no device tensors."""
    return float(np.float32(x))


def _fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """float32 a * b + c rounded once, as XLA's fused multiply-add (the float32 product is exact in
    float64; the float64 sum is then rounded to float32). XLA:CPU contracts optax's moment updates and the
    weight-decay addition into fma instructions; emulating them keeps the bf16 moment bit-identical."""
    b = b.double() if isinstance(b, torch.Tensor) else b
    return (a.double() * b + c.double()).float()


def _pow32(b: float, n: int) -> float:
    return _f32(_f32(b) ** n)


# ---- weight-decay masks ------------------------------------------------------------------------
def wd_multipliers(names: Iterable[str], wd_mults: Sequence[tuple[str, float]] = DEFAULT_WD_MULTS) -> dict[str, float]:
    """big_vision's weight-decay mask: each name gets the multiplier of the FIRST pattern that fully
    matches it (``re.fullmatch``), 0 when none matches. Patterns never start with '/'."""
    compiled = []
    for item in wd_mults:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ValueError(f"wd_mults entries are (regex, multiplier) pairs, got {item!r}")
        pattern, mult = item
        if pattern.startswith("/"):
            raise ValueError(f"wd_mults pattern {pattern!r}: big_vision parameter names never start with '/'")
        compiled.append((re.compile(pattern), float(mult)))
    out = {}
    for name in names:
        out[name] = next((m for rx, m in compiled if rx.fullmatch(name)), 0.0)
    return out


def decayed_names(model: nn.Module, wd_mults: Sequence[tuple[str, float]] = DEFAULT_WD_MULTS) -> list[str]:
    """big_vision names of the parameters that get weight decay (multiplier != 0), sorted."""
    mults = wd_multipliers(big_vision_names(model).values(), wd_mults)
    return sorted(n for n, m in mults.items() if m != 0.0)


def _tree_order(name: str) -> tuple[str, ...]:
    # jax flattens nested dicts with sorted keys at every level; the global norm sums leaves in that order.
    return tuple(name.split("/"))


# ---- clipping -------------------------------------------------------------------------------------
@torch.no_grad()
def global_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """sqrt(sum of squares) over all tensors, float32, summing per tensor then across in the given order."""
    total = None
    for t in tensors:
        t = t.float().reshape(-1)  # logical order, whatever the memory format: the flat path sums the same way
        s = (t * t).sum()
        total = s if total is None else total + s
    if total is None:
        return torch.zeros((), dtype=torch.float32)
    return torch.sqrt(total)


@torch.no_grad()
def clip_by_global_norm(tensors: Sequence[torch.Tensor], max_norm: float) -> tuple[list[torch.Tensor], torch.Tensor]:
    """optax.clip_by_global_norm: unchanged when norm < max_norm, else (t / norm) * max_norm.

    Returns new tensors (inputs untouched) and the norm. Unlike torch.nn.utils.clip_grad_norm_ there is no
    1e-6 added to the norm and the result is exactly max_norm when clipping."""
    if max_norm is None or not max_norm > 0:
        raise ValueError(f"grad_clip_norm must be a positive number, got {max_norm!r}")
    norm = global_norm(tensors)
    if bool(norm < max_norm):
        return list(tensors), norm
    return [(t / norm.to(t.dtype)) * _f32(max_norm) for t in tensors], norm


# ---- the optimizer --------------------------------------------------------------------------------
class BigVisionAdam(torch.optim.Optimizer):
    """big_vision's clip -> scale_by_adam -> *lr -> +wd*p -> *schedule -> subtract, in float32.

    Param-group keys: ``lr`` (current lr = base_lr * schedule, written by the LR scheduler), ``base_lr``
    (big_vision's ``config.lr``), ``weight_decay`` (big_vision units: ``config.wd * mult``, NOT multiplied by
    lr), ``names`` (big_vision names, for the clipping order and error messages). Global: ``b1``, ``b2``,
    ``eps``, ``eps_root``, ``grad_clip_norm``, ``mu_dtype``.

    State per parameter: ``step`` (int, optax's count), ``mu`` (mu_dtype), ``nu`` (float32).
    ``state_dict()``/``load_state_dict()`` round-trip bit-identically (the bf16 moment stays bf16).

    ``flat``: update every parameter at once on flat (concatenated) buffers: about 20 large kernels per
    step instead of ~20 small ones per parameter, which on a GPU is the difference between ~5 ms and ~60 ms
    per ViT-S/16 step (measured on an H100, docs/performance.md). Same elementwise arithmetic, so the
    same bits, except the global norm for clipping, summed over the flat buffer rather than leaf by leaf
    (a float32 rounding difference, like any other reduction order). The moments then live in two flat
    buffers and the per-parameter ``state`` entries are views of them. ``None`` (default): flat on CUDA
    when every parameter has a gradient and the groups share lr/betas/eps; ``True``: flat whenever
    possible (also on the CPU); ``False``: never.
    """

    def __init__(self, params, *, lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                 eps_root: float = 0.0, weight_decay: float = 0.0, grad_clip_norm: float | None = None,
                 mu_dtype="float32", flat: bool | None = None):
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr must be a positive number (big_vision's config.lr), got {lr!r}")
        for name, v in (("b1", b1), ("b2", b2)):
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name}={v!r}: must be in [0, 1)")
        if eps < 0 or eps_root < 0:
            raise ValueError(f"eps={eps!r}, eps_root={eps_root!r}: must be >= 0")
        if weight_decay < 0:
            raise ValueError(f"weight_decay={weight_decay!r}: must be >= 0 (big_vision units, config.wd)")
        if grad_clip_norm is not None and not grad_clip_norm > 0:
            raise ValueError(f"grad_clip_norm={grad_clip_norm!r}: a positive number, or None for no clipping")
        defaults = dict(lr=float(lr), base_lr=float(lr), b1=float(b1), b2=float(b2), eps=float(eps),
                        eps_root=float(eps_root), weight_decay=float(weight_decay), names=None)
        super().__init__(params, defaults)
        self.grad_clip_norm = grad_clip_norm
        self.mu_dtype = _mu_dtype(mu_dtype)
        self.flat = flat
        self._flat: dict | None = None
        for group in self.param_groups:
            for p in group["params"]:
                if p.dtype != torch.float32:
                    raise TypeError(f"BigVisionAdam keeps parameters in float32 like big_vision; got {p.dtype} "
                                    "(use autocast for low-precision compute, not low-precision parameters)")
            if group["names"] is not None and len(group["names"]) != len(group["params"]):
                raise ValueError("param group 'names' must list one big_vision name per parameter")
            if group["base_lr"] <= 0:
                raise ValueError(f"param group base_lr must be > 0, got {group['base_lr']}")

    # -- state (de)serialisation: torch casts floating state to the parameter dtype on load; put the
    #    first moment back to mu_dtype (exact: a bf16 value survives the float32 round trip).
    def state_dict(self):
        sd = super().state_dict()
        sd["big_vision"] = {"grad_clip_norm": self.grad_clip_norm, "mu_dtype": str(self.mu_dtype).split(".")[-1]}
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        extra = state_dict.pop("big_vision", None)
        if extra is not None:
            saved = _mu_dtype(extra.get("mu_dtype"))
            if saved != self.mu_dtype:
                raise ValueError(f"checkpoint optimizer has mu_dtype={saved}, this optimizer {self.mu_dtype}; "
                                 "build the optimizer with the checkpoint's mu_dtype to resume")
        super().load_state_dict(state_dict)
        self._flat = None      # the flat buffers are rebuilt from the loaded per-parameter state
        for st in self.state.values():
            if "mu" in st:
                st["mu"] = st["mu"].to(self.mu_dtype)

    def schedule_multiplier(self, group) -> float:
        return group["lr"] / group["base_lr"]

    @torch.no_grad()
    def step(self, closure: Callable | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        entries = []  # (order key, group, param)
        for gi, group in enumerate(self.param_groups):
            names = group["names"] or [None] * len(group["params"])
            for pi, (p, name) in enumerate(zip(group["params"], names)):
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("BigVisionAdam does not support sparse gradients")
                entries.append(((0,) + _tree_order(name) if name else (1, gi, pi), group, p))
        if not entries:
            return loss
        entries.sort(key=lambda e: e[0])
        if self._use_flat(entries):
            self._flat_step(entries)
            return loss
        grads = [p.grad.float() for _, _, p in entries]
        if self.grad_clip_norm is not None:
            grads, _ = clip_by_global_norm(grads, self.grad_clip_norm)

        for (_, group, p), g in zip(entries, grads):
            self._apply(p, self._direction(p, g, group), group)
        return loss

    # -- the flat path: one set of kernels over all parameters -----------------------------------------
    _SHARED = ("base_lr", "lr", "b1", "b2", "eps", "eps_root")

    def _use_flat(self, entries) -> bool:
        if self.flat is False:
            return False
        params = [p for _, _, p in entries]
        n_all = sum(len(g["params"]) for g in self.param_groups)
        steps = {self.state[p].get("step", 0) for p in params}
        ok = (len(params) == n_all and len({p.device for p in params}) == 1 and len(steps) == 1
              and len({tuple(g[k] for k in self._SHARED) for _, g, _ in entries}) == 1)
        return ok and (self.flat is True or params[0].device.type == "cuda")

    def _flat_state(self, entries) -> dict:
        key = tuple(id(p) for _, _, p in entries)
        fs = self._flat
        if fs is not None and fs["key"] == key:
            return fs
        params = [p for _, _, p in entries]
        dev = params[0].device
        sizes = [p.numel() for p in params]
        # big_vision's per-parameter weight decay (0 where the mask excludes it): wd * p is then exactly 0
        # there and the fused multiply-add below rounds u * lr once, as the per-parameter path does.
        wd = torch.cat([torch.full((n,), _f32(g["weight_decay"]), dtype=torch.float32, device=dev)
                        for (_, g, _), n in zip(entries, sizes)])
        mu = torch.cat([self.state[p]["mu"].reshape(-1).to(self.mu_dtype) if "mu" in self.state[p]
                        else torch.zeros(p.numel(), dtype=self.mu_dtype, device=dev) for p in params])
        nu = torch.cat([self.state[p]["nu"].reshape(-1).float() if "nu" in self.state[p]
                        else torch.zeros(p.numel(), dtype=torch.float32, device=dev) for p in params])
        step = self.state[params[0]].get("step", 0)
        for p, m, v in zip(params, mu.split(sizes), nu.split(sizes)):
            # views in p's logical (row-major) order, whatever p's memory format (channels_last stem...)
            st = self.state[p]
            st["step"], st["mu"], st["nu"] = step, m.view(p.shape), v.view(p.shape)
        self._flat = fs = {"key": key, "params": params, "sizes": sizes, "wd": wd, "mu": mu, "nu": nu}
        return fs

    def _flat_step(self, entries) -> None:
        fs = self._flat_state(entries)
        params, sizes = fs["params"], fs["sizes"]
        group = entries[0][1]
        g = torch.cat([p.grad.reshape(-1) for p in params]).float()
        if self.grad_clip_norm is not None:
            # optax: where(norm < max, g, (g / norm) * max), without reading the norm on the host. The norm
            # is summed per tensor, then across in the per-parameter path's order (global_norm): one flat
            # sum would round differently (its blocking depends on the CPU's vector width), and Adam turns
            # a different clip factor into different updates wherever a gradient is mostly rounding noise.
            norm = global_norm(g.split(sizes))
            g = torch.where(norm < _f32(self.grad_clip_norm), g, (g / norm) * _f32(self.grad_clip_norm))
        b1, b2 = group["b1"], group["b2"]
        mu = _fma(g, _f32(1.0 - b1), self._decayed_first_moment(fs["mu"], b1))
        nu = _fma(g * g, _f32(1.0 - b2), fs["nu"] * _f32(b2))
        count = min(self.state[params[0]]["step"] + 1, 2**31 - 1)
        mu_hat = mu * _f32(1.0 / _f32(1.0 - _pow32(b1, count)))
        nu_hat = nu * _f32(1.0 / _f32(1.0 - _pow32(b2, count)))
        if group["eps_root"]:
            nu_hat = nu_hat + _f32(group["eps_root"])
        u = mu_hat / (torch.sqrt(nu_hat) + _f32(group["eps"]))
        fs["mu"].copy_(mu)           # in place (the per-parameter views stay valid); rounds to mu_dtype (RNE)
        fs["nu"].copy_(nu)
        for p in params:
            self.state[p]["step"] = count
        p_flat = torch.cat([p.detach().reshape(-1) for p in params])
        u = _fma(u, _f32(group["base_lr"]), p_flat * fs["wd"])
        u = u * _f32(self.schedule_multiplier(group))
        torch._foreach_sub_([p.detach() for p in params], [x.view(p.shape) for x, p in zip(u.split(sizes), params)])

    def _decayed_first_moment(self, mu_old: torch.Tensor, b1: float) -> torch.Tensor:
        """b1 * mu (float32). optax multiplies the stored moment by the Python float b1, which JAX casts to
        the moment's dtype (weak typing): bf16(0.9) = 0.8984375 for a bf16 moment. The product of two bf16
        numbers is exact in float32, and XLA keeps it there (it is not rounded back to bf16) before the
        fused add: mu_new = fma(g, 1 - b1, b1 * mu)."""
        b1_in_mu = float(torch.tensor(b1, dtype=mu_old.dtype)) if mu_old.dtype != torch.float32 else _f32(b1)
        return mu_old.float() * b1_in_mu

    def _direction(self, p: torch.Tensor, g: torch.Tensor, group: dict) -> torch.Tensor:
        """optax scale_by_adam for one parameter: updates its state, returns the Adam direction."""
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["mu"] = torch.zeros_like(p, dtype=self.mu_dtype, memory_format=torch.preserve_format)
            state["nu"] = torch.zeros_like(p, dtype=torch.float32, memory_format=torch.preserve_format)
        b1, b2 = group["b1"], group["b2"]
        one_minus_b1 = _f32(1.0 - b1)   # the Python float (1 - b1) becomes float32 (weak typing)
        one_minus_b2 = _f32(1.0 - b2)
        mu_old, nu_old = state["mu"], state["nu"]

        mu = _fma(g, one_minus_b1, self._decayed_first_moment(mu_old, b1))
        nu = _fma(g * g, one_minus_b2, nu_old * _f32(b2))
        count = min(state["step"] + 1, 2**31 - 1)  # optax's int32 safe_increment

        # bias corrections 1 - b^count in float32 (optax raises float32 b to the int32 count with XLA's pow;
        # here float32(b)^count is computed in float64 and rounded: equal, or one float32 ulp apart), applied
        # as a multiplication by the float32 reciprocal, as XLA compiles the division by a scalar.
        inv_bc1 = _f32(1.0 / _f32(1.0 - _pow32(b1, count)))
        inv_bc2 = _f32(1.0 / _f32(1.0 - _pow32(b2, count)))
        mu_hat = mu * inv_bc1
        nu_hat = nu * inv_bc2
        if group["eps_root"]:
            nu_hat = nu_hat + _f32(group["eps_root"])
        u = mu_hat / (torch.sqrt(nu_hat) + _f32(group["eps"]))
        state["step"] = count
        state["mu"] = mu.to(self.mu_dtype)  # round-to-nearest-even, as astype(bfloat16)
        state["nu"] = nu
        return u

    def _apply(self, p: torch.Tensor, u: torch.Tensor, group: dict) -> None:
        """big_vision's tail of the chain: * lr, + wd * p (masked), * schedule, subtract."""
        lr = _f32(group["base_lr"])
        if group["weight_decay"]:
            u = _fma(u, lr, p * _f32(group["weight_decay"]))
        else:
            u = u * lr
        u = u * _f32(self.schedule_multiplier(group))
        p.sub_(u)


def param_groups(model: nn.Module, *, wd: float, wd_mults: Sequence[tuple[str, float]] = DEFAULT_WD_MULTS,
                 names: Mapping[str, str] | Callable[[nn.Module], Mapping[str, str]] | None = None) -> list[dict]:
    """One param group per distinct weight-decay multiplier, with big_vision names attached."""
    if names is None:
        names = big_vision_names(model)
    elif callable(names):
        names = names(model)
    named = [(t, p) for t, p in model.named_parameters() if p.requires_grad]
    missing = [t for t, _ in named if t not in names]
    if missing:
        raise ValueError(f"no big_vision name for parameter(s) {missing[:10]}; pass names={{torch_name: bv_name}}")
    mults = wd_multipliers([names[t] for t, _ in named], wd_mults)
    groups: dict[float, dict] = {}
    for t, p in named:
        m = mults[names[t]]
        g = groups.setdefault(m, {"params": [], "names": [], "weight_decay": float(wd) * m})
        g["params"].append(p)
        g["names"].append(names[t])
    return [groups[m] for m in sorted(groups)]


def build_optimizer(model: nn.Module, *, lr: float, wd: float, total_steps: int, schedule,
                    grad_clip_norm: float | None = None, mu_dtype="float32",
                    wd_mults: Sequence[tuple[str, float]] = DEFAULT_WD_MULTS, b1: float = 0.9, b2: float = 0.999,
                    eps: float = 1e-8, names=None, batch_size: int | None = None,
                    data_size: int | None = None, flat: bool | None = None):
    """big_vision's optimizer for ``model``: returns ``(optimizer, lr_scheduler)``.

    Arguments use big_vision's config fields and units: ``lr`` = config.lr (peak), ``wd`` = config.wd
    (decay per update = wd * schedule * p, not multiplied by lr), ``schedule`` = config.schedule (a dict
    such as ``dict(warmup_steps=10_000, decay_type="cosine")``) or a step -> multiplier function,
    ``grad_clip_norm`` = config.grad_clip_norm, ``mu_dtype`` = config.optax.mu_dtype, ``wd_mults`` =
    config.wd_mults (default: kernels only). Call ``optimizer.step()`` then ``lr_scheduler.step()``.
    """
    if not isinstance(wd, (int, float)) or wd < 0:
        raise ValueError(f"wd must be a number >= 0 (big_vision's config.wd), got {wd!r}")
    if not isinstance(total_steps, int) or total_steps < 0:
        raise ValueError(f"total_steps must be a non-negative int (see torch_impl.optim.schedule.big_vision_steps), "
                         f"got {total_steps!r}")
    groups = param_groups(model, wd=wd, wd_mults=wd_mults, names=names)
    opt = BigVisionAdam(groups, lr=lr, b1=b1, b2=b2, eps=eps, grad_clip_norm=grad_clip_norm, mu_dtype=mu_dtype,
                        flat=flat)
    sched = S.lr_scheduler(opt, schedule, total_steps=total_steps, batch_size=batch_size, data_size=data_size)
    return opt, sched

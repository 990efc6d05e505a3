"""big_vision's training durations and learning-rate schedule, in plain Python + a torch LR scheduler.

What is matched (big_vision/utils.py ``steps`` and ``create_learning_rate_schedule``):

* Durations given as ``*_steps``, ``*_examples``, ``*_epochs`` or ``*_percent`` become integer steps by
  rounding to the NEAREST step (Python's ``round``: ties go to the even number), but never below 1 unless
  the duration is exactly 0. Epochs are converted as ``epochs * (data_size / batch_size)`` in that order.
  ViT-S/16 on ``train[:99%]`` of ImageNet-1k (1,268,355 images, TFDS rounds the 99 % boundary to the
  nearest example) for 90 epochs at batch 1024 is therefore 111,477 steps (the full 1,281,167-image
  split would give 112,603).
* The schedule is evaluated in float32 exactly like big_vision's jitted step function: the warmup starts
  from 0 at step 0 (``lr * min(1, step / warmup_steps)``; torch's LinearLR refuses start_factor 0),
  the decay's progress is ``(step - warmup) / (total - warmup)`` clipped to [0, 1], and warmup and
  cooldown multiply whatever decay is chosen. Values are rounded to float32 after every operation, so
  they equal big_vision's to the last bit (cosine up to one float32 ulp of ``cos``).
* The multiplier applies at optimizer step ``count`` = number of updates already made, starting at 0:
  with a warmup, the very first update is multiplied by 0 (big_vision's ``scale_by_schedule`` reads the
  count before incrementing it). :func:`lr_scheduler` reproduces that with a LambdaLR.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

DECAY_TYPES = ("cosine", "linear", "polynomial", "rsqrt", "stair")
_SUFFIXES = ("steps", "examples", "epochs", "percent")
_f32 = np.float32


# ---- durations ------------------------------------------------------------------------------------
def _to_integer(x: float) -> int:
    # big_vision: round to nearest, but a non-zero duration is at least one step.
    return max(1, round(x)) if x else 0


def big_vision_steps(epochs: float, data_size: int, batch_size: int) -> int:
    """Number of steps big_vision runs for ``epochs`` passes over ``data_size`` examples at ``batch_size``.

    >>> big_vision_steps(90, 1_268_355, 1024)   # ViT-S/16 on train[:99%]
    111477
    """
    if batch_size is None or batch_size <= 0:
        raise ValueError(f"big_vision_steps: batch_size must be a positive integer, got {batch_size!r}")
    if data_size is None or data_size <= 0:
        raise ValueError(f"big_vision_steps: data_size must be a positive integer, got {data_size!r}")
    if epochs is None or epochs < 0:
        raise ValueError(f"big_vision_steps: epochs must be >= 0, got {epochs!r}")
    return _to_integer(epochs * (data_size / batch_size))


def steps_from_config(prefix: str, config: Mapping, data_size: int | None = None, batch_size: int | None = None,
                      total_steps: int | None = None, default=ValueError):
    """big_vision's ``u.steps``: read ``{prefix}_steps|_examples|_epochs|_percent`` from ``config``.

    Negative values count as unset (big_vision's convention for "disabled"). Returns ``default`` when none
    is set, or raises ValueError if ``default`` is ValueError.
    """
    set_keys = [f"{prefix}_{s}" for s in _SUFFIXES
                if config.get(f"{prefix}_{s}") is not None and config.get(f"{prefix}_{s}") >= 0]
    if len(set_keys) > 1:
        raise ValueError(f"duration {prefix!r}: only one of {set_keys} may be set (they all mean the same thing)")
    if f"{prefix}_steps" in set_keys:
        return config[f"{prefix}_steps"]
    if batch_size and f"{prefix}_examples" in set_keys:
        return _to_integer(config[f"{prefix}_examples"] / batch_size)
    if batch_size and data_size and f"{prefix}_epochs" in set_keys:
        return _to_integer(config[f"{prefix}_epochs"] * (data_size / batch_size))
    if total_steps and f"{prefix}_percent" in set_keys:
        pct = config[f"{prefix}_percent"]
        if not 0.0 <= pct <= 1.0:
            raise ValueError(f"{prefix}_percent={pct}: a fraction of the run in [0, 1] (0.1 means 10 %)")
        return _to_integer(pct * total_steps)
    if default is ValueError:
        raise ValueError(
            f"cannot convert duration {prefix!r} to steps: set one of "
            f"{', '.join(f'{prefix}_{s}' for s in _SUFFIXES)} (epochs need data_size and batch_size, "
            f"examples need batch_size, percent needs total_steps); got data_size={data_size}, "
            f"batch_size={batch_size}, total_steps={total_steps}")
    return default


def percent_split_size(num_examples: int, start: float = 0, end: float = 100) -> int:
    """Size of a TFDS percent slice ``split[start%:end%]`` (TFDS rounds each boundary to the nearest
    example, Python ``round``): ``percent_split_size(1_281_167, 0, 99) == 1_268_355``."""
    if not 0 <= start <= end <= 100:
        raise ValueError(f"percent_split_size: need 0 <= start <= end <= 100, got {start}, {end}")

    def boundary(pct):
        return int(round(float(pct) * num_examples / 100.0))
    return boundary(end) - boundary(start)


IMAGENET_TRAIN_EXAMPLES = 1_281_167  # TFDS imagenet2012 "train"
VIT_S16_TRAIN_EXAMPLES = percent_split_size(IMAGENET_TRAIN_EXAMPLES, 0, 99)  # "train[:99%]" = 1,268,355


# ---- the schedule ---------------------------------------------------------------------------------
def _fma(a, b, c) -> np.float32:
    """float32 fused multiply-add a * b + c with one rounding (the product of two float32 is exact in
    float64; XLA's CPU backend contracts such expressions into fma instructions)."""
    return _f32(float(a) * float(b) + float(c))


def _div_const(x, c) -> np.float32:
    """float32 x / c for a constant c the way XLA compiles it inside jit: x * (1 / c), the reciprocal
    rounded to float32 first (XLA's algebraic simplifier rewrites division by a constant). This is why
    e.g. 9 / 10 is 0.90000004 in big_vision's schedule, not float32(0.9) = 0.89999998."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _f32(_f32(x) * (_f32(1.0) / _f32(c)))


def _integer_pow(x: np.float32, n: int) -> np.float32:
    """x**n for a Python int n by square-and-multiply in float32, the order XLA's integer_pow uses."""
    if n == 0:
        return _f32(1.0)
    recip, n = n < 0, abs(n)
    acc = None
    while n > 0:
        if n & 1:
            acc = x if acc is None else _f32(acc * x)
        n >>= 1
        if n > 0:
            x = _f32(x * x)
    return _f32(_f32(1.0) / acc) if recip else acc


def _check_schedule_args(total_steps, decay_type, kw):
    if decay_type not in DECAY_TYPES:
        raise ValueError(f"decay_type={decay_type!r}: big_vision knows {', '.join(DECAY_TYPES)}")
    if total_steps is None or int(total_steps) != total_steps or total_steps < 0:
        raise ValueError(f"total_steps must be a non-negative integer, got {total_steps!r}")
    known = {"power", "end", "linear_end", "timescale", "shift", "steps", "mults", "batch_size", "data_size",
             "scale_with_batchsize"}
    known |= {f"{p}_{s}" for p in ("warmup", "cooldown", "timescale", "shift") for s in _SUFFIXES}
    unknown = sorted(set(kw) - known)
    if unknown:
        raise TypeError(f"big_vision_lr: unknown schedule option(s) {unknown}; known: {sorted(known)}")


def make_schedule(*, total_steps: int, base: float = 1.0, decay_type: str = "cosine", batch_size=None,
                  data_size=None, scale_with_batchsize: bool = False, **kw) -> Callable[[int], float]:
    """Return ``step -> multiplier`` equal to big_vision's ``create_learning_rate_schedule(...)``.

    ``kw``: ``warmup_{steps,examples,epochs,percent}``, ``cooldown_*``, and per decay type: linear /
    polynomial ``power`` (1) and ``end`` or ``linear_end`` (0); rsqrt ``timescale`` (10,000) and ``shift``
    (0), each also as ``timescale_steps`` etc.; stair ``steps`` (boundaries) and ``mults``.
    """
    _check_schedule_args(total_steps, decay_type, kw)
    durations = {k: v for k, v in kw.items() if k.rsplit("_", 1)[-1] in _SUFFIXES}

    def to_steps(name, default=0):
        return steps_from_config(name, durations, data_size, batch_size, total_steps, default=default)

    warmup = to_steps("warmup")
    cooldown = to_steps("cooldown")
    if total_steps > 1 and warmup >= total_steps:
        raise ValueError(f"warmup ({warmup} steps) must be shorter than the run ({total_steps} steps)")
    if decay_type == "stair":
        bounds = list(kw.get("steps", []))
        mults = [1.0] + list(kw.get("mults", []))
        if len(mults) != len(bounds) + 1:
            raise ValueError(f"stair schedule: {len(bounds)} boundaries need {len(bounds)} mults, got {len(mults) - 1}")
        mults32 = [_f32(m) for m in mults]
    if decay_type == "rsqrt":
        timescale = to_steps("timescale", default=kw.get("timescale", 10_000))
        shift = to_steps("shift", default=kw.get("shift", 0))

    lr0 = base * batch_size / 256.0 if scale_with_batchsize else base
    if scale_with_batchsize and not batch_size:
        raise ValueError("scale_with_batchsize=True needs batch_size")

    def fn(step: int) -> float:
        step = int(step)
        # All arithmetic below is float32 with one rounding per operation, as in the jitted reference.
        # Python floats combined with float32 arrays are "weak" in JAX: they are cast to float32 first.
        with np.errstate(divide="ignore", invalid="ignore"):  # total == warmup: inf/nan as in the reference
            progress = _div_const(step - warmup, total_steps - warmup)
        progress = np.clip(progress, _f32(0.0), _f32(1.0))  # keeps NaN, like jnp.clip
        if decay_type in ("linear", "polynomial"):
            power = kw.get("power", 1)
            zero = kw.get("end", kw.get("linear_end", 0))
            if isinstance(power, (int, np.integer)) and not isinstance(power, bool):
                frac = _integer_pow(_f32(_f32(1.0) - progress), int(power))
            else:
                frac = _f32(np.power(np.float64(_f32(1.0) - progress), float(_f32(power))))
            lr = _fma(_f32(lr0 - zero), frac, _f32(zero))  # XLA contracts a * b + c into one fma
        elif decay_type == "cosine":
            c = _f32(math.cos(float(_f32(_f32(math.pi) * progress))))
            lr = _f32(_f32(lr0 * 0.5) * _f32(_f32(1.0) + c))
        elif decay_type == "rsqrt":
            if warmup <= step:
                # XLA rewrites lr / sqrt(x) into lr * rsqrt(x); its rsqrt may differ from the correctly
                # rounded one used here by one float32 ulp.
                x = _fma(_f32(step + shift - warmup), _f32(1.0) / _f32(timescale), _f32(1.0))
                lr = _f32(_f32(lr0) * _f32(1.0 / math.sqrt(float(x))))
            else:  # a compile-time constant, folded with true division
                lr = _f32(_f32(lr0) / _f32(math.sqrt(float(_f32(1 + shift / timescale)))))
        else:  # stair: multiplier of the first boundary strictly above `step` (searchsorted(step + 1, left))
            i = int(np.searchsorted(np.asarray(bounds, dtype=np.int64), step + 1, side="left"))
            lr = _f32(_f32(lr0) * mults32[i])
        if warmup:
            lr = _f32(lr * np.minimum(_f32(1.0), _div_const(step, warmup)))
        if cooldown:
            lr = _f32(lr * np.minimum(_f32(1.0), _div_const(total_steps - step, cooldown)))
        return float(lr)

    fn.warmup_steps = warmup  # type: ignore[attr-defined]
    fn.cooldown_steps = cooldown  # type: ignore[attr-defined]
    fn.total_steps = total_steps  # type: ignore[attr-defined]
    return fn


def big_vision_lr(step: int, *, total_steps: int, base: float = 1.0, warmup_steps: int = 0,
                  decay_type: str = "cosine", **kw) -> float:
    """The learning-rate multiplier big_vision applies at optimizer step ``step`` (0 = first update).

    ``big_vision_lr(0, total_steps=111_477, warmup_steps=10_000)`` is 0.0: warmup starts from zero.
    """
    return make_schedule(total_steps=total_steps, base=base, decay_type=decay_type,
                         warmup_steps=warmup_steps, **kw)(step)


def schedule_from_config(schedule: Mapping, *, total_steps: int, batch_size: int | None = None,
                         data_size: int | None = None) -> Callable[[int], float]:
    """The multiplier function of a big_vision ``config.schedule`` dict (e.g.
    ``dict(warmup_steps=10_000, decay_type="cosine")``). As in big_vision, a missing ``decay_type``
    means "stair" (constant unless ``steps``/``mults`` are given), and ``mult`` scales the whole schedule.
    A list of (pattern, schedule) pairs (per-parameter schedules, freezing) is not supported."""
    if not isinstance(schedule, Mapping):
        raise TypeError(f"schedule must be one dict like config.schedule, got {type(schedule).__name__}; "
                        "per-parameter schedule lists are not supported")
    sched = dict(schedule)
    if "base" in sched:
        raise ValueError("schedule: 'base' is not a schedule option in big_vision (use config.lr, or 'mult')")
    mult = sched.pop("mult", 1.0)
    sched.setdefault("decay_type", "stair")
    return make_schedule(total_steps=total_steps, base=mult, batch_size=batch_size, data_size=data_size, **sched)


def lr_scheduler(optimizer: torch.optim.Optimizer, schedule: Callable[[int], float] | Mapping, *,
                 total_steps: int | None = None, batch_size: int | None = None, data_size: int | None = None,
                 last_epoch: int = -1) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR whose factor at scheduler step k is big_vision's multiplier for update k.

    Call ``scheduler.step()`` once after every ``optimizer.step()``, as usual in torch: update k then uses
    ``lr = base_lr * multiplier(k)``, k = 0, 1, ... (with warmup, update 0 has lr 0 as in big_vision).
    ``schedule`` is a step -> multiplier function or a big_vision ``config.schedule`` dict.
    """
    if isinstance(schedule, Mapping):
        if total_steps is None:
            raise ValueError("lr_scheduler: a schedule dict needs total_steps")
        schedule = schedule_from_config(schedule, total_steps=total_steps, batch_size=batch_size,
                                        data_size=data_size)
    if not callable(schedule):
        raise TypeError(f"lr_scheduler: schedule must be callable or a dict, got {type(schedule).__name__}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule, last_epoch=last_epoch)


def schedule_values(schedule: Callable[[int], float], steps: Sequence[int]) -> np.ndarray:
    """Evaluate a multiplier function at many steps (float32 array)."""
    return np.asarray([schedule(int(s)) for s in steps], dtype=np.float32)

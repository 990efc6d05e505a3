"""Per-seed training curves of one framework and variant, in one container (``Curves``), and its .npz form.

Arrays (K seeds, S steps, E eval points):
  seeds (K,) int; steps (S,) = 1..S (update number, big_vision's ``step`` after the update);
  train_loss (K, S): the loss of the batch of that update (mixed labels), before the update;
  lr (K, S): the learning rate that update used (big_vision logs ``global_schedule`` = sched(step - 1));
  grad_norm (K, S): global L2 norm of the raw gradients, before clipping (big_vision ``l2_grads``);
  param_norm (K, S): global L2 norm of the parameters after the update (big_vision ``l2_params``);
  eval_steps (E,), eval_acc (K, E), eval_loss (K, E): top-1 and mean softmax_xent on the val split;
  mixup_a (K, S): the mixup coefficient of that update (1.0: not mixed).
grad_norm, param_norm and mixup_a may be absent (None); every other array is required.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

OPTIONAL = ("grad_norm", "param_norm", "mixup_a")


class CurvesError(ValueError):
    """Curves that are missing, empty or inconsistent; the message names the file and the field."""


@dataclass
class Curves:
    framework: str
    variant: str
    seeds: np.ndarray
    steps: np.ndarray
    train_loss: np.ndarray
    lr: np.ndarray
    eval_steps: np.ndarray
    eval_acc: np.ndarray
    eval_loss: np.ndarray
    grad_norm: np.ndarray | None = None
    param_norm: np.ndarray | None = None
    mixup_a: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.seeds.size)

    @property
    def last_step(self) -> int:
        return int(self.steps[-1]) if self.steps.size else 0

    def validate(self, where: str = "") -> Curves:
        w = f"{where}: " if where else ""
        K, S, E = self.seeds.size, self.steps.size, self.eval_steps.size
        if K == 0:
            raise CurvesError(f"{w}no runs (0 seeds): an empty record cannot be compared")
        if S == 0:
            raise CurvesError(f"{w}no training steps recorded")
        for name in ("train_loss", "lr") + OPTIONAL:
            a = getattr(self, name)
            if a is None:
                continue
            if a.shape != (K, S):
                raise CurvesError(f"{w}{name} has shape {a.shape}, expected (seeds={K}, steps={S})")
        for name in ("eval_acc", "eval_loss"):
            if getattr(self, name).shape != (K, E):
                raise CurvesError(f"{w}{name} has shape {getattr(self, name).shape}, expected (seeds={K}, evals={E})")
        if not np.all(np.diff(self.steps) > 0):
            raise CurvesError(f"{w}steps are not increasing")
        return self

    def upto(self, max_step: int) -> Curves:
        """The first ``max_step`` steps (and the evals at or before it)."""
        m, e = self.steps <= max_step, self.eval_steps <= max_step
        opt = {n: (getattr(self, n)[:, m] if getattr(self, n) is not None else None) for n in OPTIONAL}
        return replace(self, steps=self.steps[m], train_loss=self.train_loss[:, m], lr=self.lr[:, m],
                       eval_steps=self.eval_steps[e], eval_acc=self.eval_acc[:, e], eval_loss=self.eval_loss[:, e],
                       **opt)

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {n: np.asarray(getattr(self, n)) for n in ("seeds", "steps", "train_loss", "lr", "eval_steps",
                                                          "eval_acc", "eval_loss")}
        for n in OPTIONAL:
            if getattr(self, n) is not None:
                out[n] = np.asarray(getattr(self, n))
        out["meta"] = np.array(json.dumps({"framework": self.framework, "variant": self.variant, **self.meta},
                                          sort_keys=True, default=str))
        return out

    def save(self, path: str | Path) -> Path:
        from parity.store import save_npz
        save_npz(Path(path), self.to_arrays())
        return Path(path)

    @classmethod
    def from_arrays(cls, arrays: dict, *, where: str = "", framework: str | None = None,
                    variant: str | None = None) -> Curves:
        missing = [n for n in ("seeds", "steps", "train_loss", "lr", "eval_steps", "eval_acc", "eval_loss")
                   if n not in arrays]
        if missing:
            raise CurvesError(f"{where}: missing array(s) {', '.join(missing)}")
        meta = json.loads(str(arrays["meta"][()])) if "meta" in arrays else {}
        fw = framework or meta.pop("framework", "unknown")
        va = variant or meta.pop("variant", "unknown")
        meta.pop("framework", None), meta.pop("variant", None)
        f64 = lambda n: np.asarray(arrays[n], np.float64)  # noqa: E731
        return cls(fw, va, np.asarray(arrays["seeds"]).astype(np.int64), np.asarray(arrays["steps"]).astype(np.int64),
                   f64("train_loss"), f64("lr"), np.asarray(arrays["eval_steps"]).astype(np.int64), f64("eval_acc"),
                   f64("eval_loss"), *(f64(n) if n in arrays else None for n in OPTIONAL), meta=meta
                   ).validate(where)

    @classmethod
    def load(cls, path: str | Path) -> Curves:
        from parity.store import FixtureError, read_npz
        try:
            arrays = read_npz(Path(path))
        except FixtureError as e:
            raise CurvesError(str(e)) from None
        return cls.from_arrays(arrays, where=str(path))


def stack_runs(runs: list[dict], *, framework: str, variant: str, meta: dict | None = None) -> Curves:
    """Per-seed run dicts (as ``torch_side.run_seed`` returns them) -> Curves; steps/evals must agree."""
    if not runs:
        raise CurvesError(f"{framework}/{variant}: no runs")
    steps, esteps = runs[0]["steps"], runs[0]["eval_steps"]
    for r in runs[1:]:
        if not (np.array_equal(r["steps"], steps) and np.array_equal(r["eval_steps"], esteps)):
            raise CurvesError(f"{framework}/{variant}: seed {r['seed']} recorded different steps than seed "
                              f"{runs[0]['seed']} (a run was cut short?)")
    stack = lambda n: np.stack([r[n] for r in runs]) if all(r.get(n) is not None for r in runs) else None  # noqa: E731
    return Curves(framework, variant, np.array([r["seed"] for r in runs]), np.asarray(steps),
                  stack("train_loss"), stack("lr"), np.asarray(esteps), stack("eval_acc"), stack("eval_loss"),
                  stack("grad_norm"), stack("param_norm"), stack("mixup_a"),
                  meta=dict(meta or {})).validate(f"{framework}/{variant}")


# big_vision reference record (reference/dynamics: fixtures/dynamics/reference.npz) -> Curves
REFERENCE_KEYS = {"seeds": "seeds", "step": "steps", "train_loss": "train_loss", "lr": "lr",
                  "eval_step": "eval_steps", "eval_accuracy": "eval_acc", "eval_loss": "eval_loss",
                  "grad_norm": "grad_norm", "param_norm": "param_norm", "mixup_a": "mixup_a"}


def reference_curves(arrays: dict, *, where: str = "reference") -> Curves:
    """The recorded big_vision curves (key names of reference.dynamics.run.KEYMAP) as Curves. A missing key
    or an empty record is a CurvesError naming the file: never a vacuous comparison."""
    required = [k for k in REFERENCE_KEYS if k not in OPTIONAL]
    missing = [k for k in required if k not in arrays]
    if missing:
        raise CurvesError(f"{where}: missing array(s) {', '.join(missing)} (expected the format written by "
                          "`python -m reference.dynamics`)")
    meta = {}
    if "provenance" in arrays:
        try:
            meta = {"provenance": json.loads(str(arrays["provenance"][()]))}
        except ValueError:
            meta = {}
    mapped = {dst: arrays[src] for src, dst in REFERENCE_KEYS.items() if src in arrays}
    f64 = lambda n: np.asarray(mapped[n], np.float64)  # noqa: E731
    return Curves("big_vision", "reference", np.asarray(mapped["seeds"]).astype(np.int64).ravel(),
                  np.asarray(mapped["steps"]).astype(np.int64), f64("train_loss"), f64("lr"),
                  np.asarray(mapped["eval_steps"]).astype(np.int64), f64("eval_acc"), f64("eval_loss"),
                  *(f64(n) if n in mapped else None for n in OPTIONAL), meta=meta).validate(where)


def as_reference_arrays(c: Curves) -> dict[str, np.ndarray]:
    """Curves in the reference record's format (for stand-ins built from torch runs in tests/development)."""
    out = {src: np.asarray(getattr(c, dst)) for src, dst in REFERENCE_KEYS.items() if getattr(c, dst) is not None}
    out["provenance"] = np.array(json.dumps({"stand_in": True, "framework": c.framework, **c.meta}, default=str))
    return out

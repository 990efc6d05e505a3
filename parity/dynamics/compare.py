"""The dynamics check: torch curves vs reference curves, K seeds each, as a list of named statistics.

Every statistic compares DISTRIBUTIONS ACROSS SEEDS (parity.dynamics.stats); a verdict is equivalent only
if every statistic passes. What is compared, on the steps both sides recorded:

early steps (before chaos amplifies rounding differences; the warmup updates, EARLY_STEPS by default):
  initial_loss       |loss(step 1) - ln(num_classes)| on every seed of both sides: the head is
                     zero-initialised, so every logit is 0 and softmax_xent is exactly ln C (mixed labels
                     sum to 1). Bar 1e-5: float32 log-sum-exp of C zeros is ~1e-7 from ln C.
  lr_schedule        max |lr_ours - lr_ref| / peak lr over every update: the schedule is deterministic,
                     bar 1e-6 (float32 evaluation of warmup/cosine).
  early_loss_bands, early_grad_norm_bands, early_param_norm_bands
                     per-step bands (stats.bands) over the early updates, step by step.
  early_param_norm_change_bands
                     the same for param_norm - param_norm(step 1): the init norm's seed spread removed.
whole run (windows of WINDOW_STEPS updates; per-step values are one batch and one mixup draw):
  loss_bands, grad_norm_bands, param_norm_bands, param_norm_change_bands, eval_acc_bands, eval_loss_bands
equivalence tests (only when both sides ran the whole recipe):
  final_accuracy_tost  val top-1 after the last update, margin max(2 SD_ref, 1 / n_val)
  late_loss_tost       mean training loss over the last LATE_FRACTION of the updates, margin 2 SD_ref
  late_loss_mixup_adjusted_tost
                       the same after taking out the part of each step's loss its mixup draw explains
                       (stats.mixup_adjusted; both sides record their draws): the per-seed late mean of
                       the raw loss is mostly the luck of ~36 Beta(0.2, 0.2) draws (per-seed correlation
                       ~0.8-0.96 with the mean H(a)), so this is the sharper test of the same quantity.
                       The slope is fitted on both sides pooled; the reference's own draws must explain its
                       loss (within-window correlation >= MIXUP_CORR_BAR), else the recorded draws are not
                       the ones it trained with and the statistic fails.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from parity.dynamics import stats as S
from parity.dynamics.curves import Curves, CurvesError

EARLY_STEPS = 20          # default = the recipe's warmup (run_check passes it): lr is small, runs have not diverged
WINDOW_STEPS = 10
LATE_FRACTION = 0.15      # "late training": the last 15% of the updates (45 of 300)
INITIAL_LOSS_BAR = 1e-5
MIXUP_CORR_BAR = 0.3      # measured 0.80 (big_vision) and 0.82 (torch) over updates 21-240; ~0 for wrong draws
LR_BAR = 1e-6


@dataclass
class Stat:
    name: str
    value: float              # the statistic (compared with bar: value <= bar passes)
    bar: float
    ok: bool
    detail: str
    data: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"name": self.name, "value": None if not math.isfinite(self.value) else self.value,
                "bar": self.bar, "ok": self.ok, "detail": self.detail, **self.data}


@dataclass
class Comparison:
    variant: str
    full: bool                  # both sides ran the whole recipe (the TOSTs ran)
    steps: int                  # updates compared
    n_ours: int
    n_ref: int
    stats: list[Stat]
    bands: dict = field(default_factory=dict)   # name -> stats.BandResult (for the plots)
    early: int = EARLY_STEPS                    # updates counted as "early"

    @property
    def equivalent(self) -> bool:
        return bool(self.stats) and all(s.ok for s in self.stats)

    @property
    def failed(self) -> list[str]:
        return [s.name for s in self.stats if not s.ok]

    def get(self, name: str) -> Stat:
        for s in self.stats:
            if s.name == name:
                return s
        raise KeyError(name)

    def as_dict(self) -> dict:
        return {"variant": self.variant, "full": self.full, "steps": self.steps, "n_ours": self.n_ours,
                "n_ref": self.n_ref, "equivalent": self.equivalent, "failed": self.failed,
                "stats": [s.as_dict() for s in self.stats]}

    def describe(self) -> str:
        head = (f"{self.variant}: {'EQUIVALENT' if self.equivalent else 'NOT EQUIVALENT'} "
                f"({self.n_ours} torch vs {self.n_ref} reference seeds, {self.steps} updates"
                f"{'' if self.full else ', early/reduced: no final-accuracy TOST'})")
        return "\n".join([head] + [f"  [{'ok' if s.ok else 'FAIL'}] {s.name}: {s.detail}" for s in self.stats])


def _band_stat(name: str, ours, ref, steps, quantity: str, **kw) -> tuple[Stat, S.BandResult]:
    b = S.bands(ours, ref, steps, quantity=quantity, **kw)
    return Stat(name, float(b.n_outside), float(b.allowed), b.ok, b.describe(), b.as_dict()), b


def compare(ours: Curves, ref: Curves, *, num_classes: int, total_steps: int, n_val: int | None = None,
            early_steps: int = EARLY_STEPS, window: int = WINDOW_STEPS,
            mixup_p: tuple[float, float] | None = None) -> Comparison:
    """All statistics of the module doc on the updates both recorded. Raises CurvesError on unusable input
    (no seeds, a single seed, no common steps): never a vacuous pass. ``mixup_p`` = (ours, reference)
    mixup.p: with both sides' ``mixup_a`` recorded, the mixup-adjusted late-loss test runs too."""
    ours.validate("torch curves")
    ref.validate("reference curves")
    if ref.k < 2:
        raise CurvesError(f"reference curves: {ref.k} seed(s); the check needs the seed spread (K >= 2, 8 recorded)")
    if ours.k < 2:
        raise CurvesError(f"torch curves: {ours.k} seed(s); at least 2 seeds are needed")
    n = min(ours.last_step, ref.last_step)
    if not np.array_equal(ours.steps[:n], np.arange(1, n + 1)) or not np.array_equal(ref.steps[:n], np.arange(1, n + 1)):
        raise CurvesError("curves must hold every update 1..n (log every step)")
    a, b = ours.upto(n), ref.upto(n)
    steps = a.steps
    out: list[Stat] = []
    bands = {}

    # ---- early steps
    first = np.concatenate([a.train_loss[:, 0], b.train_loss[:, 0]])
    dev = float(np.max(np.abs(first - math.log(num_classes))))
    worst_side = "torch" if np.max(np.abs(a.train_loss[:, 0] - math.log(num_classes))) >= dev else "reference"
    out.append(Stat("initial_loss", dev, INITIAL_LOSS_BAR, dev <= INITIAL_LOSS_BAR,
                    f"max |loss(step 1) - ln {num_classes}| over {first.size} runs = {dev:.2e} (worst: {worst_side}; "
                    f"torch mean {a.train_loss[:, 0].mean():.6f}, reference mean {b.train_loss[:, 0].mean():.6f}); "
                    f"bar {INITIAL_LOSS_BAR:g}"))
    peak = float(np.max(np.abs(b.lr))) or 1.0
    lr_err = float(np.max(np.abs(a.lr.mean(0) - b.lr.mean(0)))) / peak
    lr_spread = float(max(np.ptp(a.lr, 0).max(), np.ptp(b.lr, 0).max())) / peak
    lr_val = max(lr_err, lr_spread)
    out.append(Stat("lr_schedule", lr_val, LR_BAR, lr_val <= LR_BAR,
                    f"max |lr_torch - lr_ref| / peak lr over {n} updates = {lr_err:.2e} (spread across seeds "
                    f"{lr_spread:.1e}); bar {LR_BAR:g}"))
    e = min(early_steps, n)
    for q in ("train_loss", "grad_norm", "param_norm"):
        if getattr(a, q) is None or getattr(b, q) is None:
            continue
        name = f"early_{q.replace('train_', '')}_bands"
        st, band = _band_stat(name, getattr(a, q)[:, :e], getattr(b, q)[:, :e], steps[:e],
                              f"{q}, steps 1-{e} (per step)")
        out.append(st)
        bands[name] = band

    if a.param_norm is not None and b.param_norm is not None:
        # The parameter norm's change since update 1 (= the init: update 1 has lr 0). The init norm's own
        # seed spread (~0.05% here) hides what training does to the norm; the change removes it, and shows
        # the weight decay and update sizes (AdamW's ~1000x weaker decay lets the norm grow within the warmup).
        # Floor 1e-5 of the norm: float32 sums of ~1e6 squares are good to ~1e-6 relative on either side.
        ca, cb = a.param_norm - a.param_norm[:, :1], b.param_norm - b.param_norm[:, :1]
        floor = 1e-5 * float(np.abs(b.param_norm[:, 0]).mean())
        st, band = _band_stat("early_param_norm_change_bands", ca[:, :e], cb[:, :e], steps[:e],
                              f"param_norm - param_norm(step 1), steps 1-{e} (per step)", abs_floor=floor)
        out.append(st)
        bands["early_param_norm_change_bands"] = band

    # ---- whole run, windowed
    if n >= 2 * window:
        for q in ("train_loss", "grad_norm", "param_norm"):
            if getattr(a, q) is None or getattr(b, q) is None:
                continue
            wa, ws = S.smooth_checkpoints(getattr(a, q), steps, window)
            wb, _ = S.smooth_checkpoints(getattr(b, q), steps, window)
            name = f"{q.replace('train_', '')}_bands"
            st, band = _band_stat(name, wa, wb, ws, f"{q}, means of {window}-update windows")
            out.append(st)
            bands[name] = band
        if a.param_norm is not None and b.param_norm is not None:
            wa, ws = S.smooth_checkpoints(a.param_norm - a.param_norm[:, :1], steps, window)
            wb, _ = S.smooth_checkpoints(b.param_norm - b.param_norm[:, :1], steps, window)
            st, band = _band_stat("param_norm_change_bands", wa, wb, ws,
                                  f"param_norm - param_norm(step 1), means of {window}-update windows",
                                  abs_floor=1e-5 * float(np.abs(b.param_norm[:, 0]).mean()))
            out.append(st)
            bands["param_norm_change_bands"] = band
    common = np.intersect1d(a.eval_steps, b.eval_steps)
    common = common[common > 0]
    if common.size >= 1:
        ia = np.searchsorted(a.eval_steps, common)
        ib = np.searchsorted(b.eval_steps, common)
        for q, label in (("eval_acc", "val top-1"), ("eval_loss", "val loss")):
            st, band = _band_stat(f"{q}_bands", getattr(a, q)[:, ia], getattr(b, q)[:, ib], common,
                                  f"{label} at the eval steps")
            out.append(st)
            bands[f"{q}_bands"] = band

    # ---- equivalence tests on the whole run
    full = ours.last_step >= total_steps and ref.last_step >= total_steps
    if full:
        if total_steps not in a.eval_steps or total_steps not in b.eval_steps:
            raise CurvesError(f"no eval after the last update ({total_steps}) on both sides")
        acc_a = a.eval_acc[:, list(a.eval_steps).index(total_steps)]
        acc_b = b.eval_acc[:, list(b.eval_steps).index(total_steps)]
        floor = 1.0 / n_val if n_val else 0.0
        margin = S.margin_from_reference(acc_b, floor=floor)
        t = S.tost(acc_a, acc_b, margin, quantity="final val top-1",
                   margin_rule=f"max({S.MARGIN_SDS:g} x reference SD, 1/n_val = {floor:.4f})")
        out.append(Stat("final_accuracy_tost", t.p_tost, S.ALPHA, t.equivalent, t.describe(), t.as_dict()))
        lo = total_steps - int(round(LATE_FRACTION * total_steps)) + 1
        la = S.window_mean(a.train_loss, steps, lo, total_steps)
        lb = S.window_mean(b.train_loss, steps, lo, total_steps)
        t = S.tost(la, lb, S.margin_from_reference(lb), quantity=f"training loss, mean of steps {lo}-{total_steps}",
                   margin_rule=f"{S.MARGIN_SDS:g} x reference SD")
        out.append(Stat("late_loss_tost", t.p_tost, S.ALPHA, t.equivalent, t.describe(), t.as_dict()))
        if mixup_p is not None and a.mixup_a is not None and b.mixup_a is not None:
            out.append(_mixup_adjusted_late_loss(a, b, mixup_p, steps, e, window, lo, total_steps))
    return Comparison(ours.variant, full, n, ours.k, ref.k, out, bands, e)


def _mixup_adjusted_late_loss(a: Curves, b: Curves, mixup_p, steps, early: int, window: int, lo: int,
                              total_steps: int) -> Stat:
    name = "late_loss_mixup_adjusted_tost"
    pa, pb = (float(x) for x in mixup_p)
    _, corr_ref = S.mixup_slope([(b.train_loss, b.mixup_a)], steps, early + 1, window)
    if not corr_ref >= MIXUP_CORR_BAR:
        return Stat(name, float("nan"), S.ALPHA, False,
                    f"the reference's recorded mixup draws explain too little of its per-step loss (correlation "
                    f"{corr_ref:.2f} < {MIXUP_CORR_BAR}): they are not the draws it trained with")
    slope, corr = S.mixup_slope([(a.train_loss, a.mixup_a), (b.train_loss, b.mixup_a)], steps, early + 1, window)
    la = S.window_mean(S.mixup_adjusted(a.train_loss, a.mixup_a, pa, slope), steps, lo, total_steps)
    lb = S.window_mean(S.mixup_adjusted(b.train_loss, b.mixup_a, pb, slope), steps, lo, total_steps)
    t = S.tost(la, lb, S.margin_from_reference(lb),
               quantity=f"training loss minus {slope:.3f} x (H(mixup a) - E[H]), mean of steps {lo}-{total_steps}",
               margin_rule=f"{S.MARGIN_SDS:g} x reference SD of the adjusted mean")
    detail = (f"{t.describe()} [slope fitted on both sides, updates {early + 1}-{total_steps}: {slope:.3f} per nat of "
              f"mixup entropy, correlation {corr:.2f}; reference alone {corr_ref:.2f}]")
    return Stat(name, t.p_tost, S.ALPHA, t.equivalent, detail, {**t.as_dict(), "slope": slope, "corr": corr})

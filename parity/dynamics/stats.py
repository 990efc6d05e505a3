"""Statistics for whole-run comparisons: distributions across seeds, never single runs.

Two runs of one recipe with different seeds differ (initialisation, data order, augmentation draws,
mixup coefficients); two frameworks cannot share those random streams. So every comparison here is
between the K_ref reference runs and the k torch runs of one recipe, each run one sample.

* :func:`tost` - two one-sided Welch t-tests (Schuirmann's TOST) of "|mean_ours - mean_ref| < margin":
  equivalent when the (1 - 2 alpha) confidence interval of the difference lies inside (-margin, +margin).
  Next to it: a two-sided Welch test of "no difference" (``p_diff``) and the minimum detectable effect
  (:func:`min_detectable_difference`), so a verdict always comes with what the check could have seen.
* :func:`margin_from_reference` - the equivalence margin ``c * SD_ref`` (the reference's seed-to-seed
  standard deviation), ``c = MARGIN_SDS = 2``, with a floor for quantities whose spread can be ~0.
* :func:`bands` - per-checkpoint comparison of curves (mean +- SD across seeds) with a stated rule for how
  many checkpoints may fall outside.

Pure numpy/scipy; no torch, no reference imports.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as st

ALPHA = 0.05
# Margin = MARGIN_SDS reference seed SDs. Why 2: a smaller shift than two run-to-run SDs is inside what
# re-running the reference with other seeds produces (at K = 8, the mean of 8 seeds itself moves by
# ~0.5 SD); and 2 is the smallest round multiple at which an IDENTICAL recipe passes TOST with good
# probability at K = 8 vs 8 seeds (simulated: 1.5 SD -> 69%, 1.75 -> 82%, 2.0 -> 89%, 2.5 -> 96%; the
# margin is itself estimated from 8 runs). `equivalence_power` reports that probability for the actual K.
MARGIN_SDS = 2.0
# Per-checkpoint rule: a checkpoint is "outside" when its Welch t exceeds the two-sided 99% quantile; under
# equal distributions ~1% of independent checkpoints would be. Neighbouring checkpoints of one run are
# strongly correlated (a run above the mean stays above for a while), so outside-points come in clusters:
# up to BAND_ALLOWED_FRACTION of the checkpoints (at least one) may be outside.
BAND_QUANTILE = 0.995
BAND_ALLOWED_FRACTION = 0.10


class StatsError(ValueError):
    """Inputs a statistic cannot be computed from (too few seeds, shape mismatch, NaN)."""


def _sample(x, name: str, min_n: int = 2) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size < min_n:
        raise StatsError(f"{name}: {a.size} run(s); at least {min_n} seeds are needed for a spread")
    if not np.all(np.isfinite(a)):
        raise StatsError(f"{name}: non-finite values {a[~np.isfinite(a)][:5].tolist()}")
    return a


def welch(a, b) -> tuple[float, float, float]:
    """(mean(a) - mean(b), its standard error, Welch-Satterthwaite degrees of freedom)."""
    a, b = _sample(a, "ours"), _sample(b, "reference")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if va + vb == 0:
        df = float(a.size + b.size - 2)
    else:
        df = (va + vb) ** 2 / ((va ** 2 / (a.size - 1) if va else 0.0) + (vb ** 2 / (b.size - 1) if vb else 0.0))
    return float(a.mean() - b.mean()), se, float(df)


def margin_from_reference(ref, *, c: float = MARGIN_SDS, floor: float = 0.0) -> float:
    """Equivalence margin ``max(c * SD_ref, floor)``: SD_ref is the sample SD (ddof=1) of the reference's
    per-seed values. ``floor`` covers quantities whose seed spread can be (near) zero (e.g. accuracy on a
    small eval set: one image, 1/n)."""
    r = _sample(ref, "reference")
    return float(max(c * r.std(ddof=1), floor))


def min_detectable_difference(sd_a: float, sd_b: float, n_a: int, n_b: int, *, alpha: float = ALPHA,
                              power: float = 0.8) -> float:
    """Smallest true mean difference a two-sided Welch t-test at ``alpha`` detects with ``power``:
    (t_{1-alpha/2} + t_{power}) * SE, SE = sqrt(sd_a^2/n_a + sd_b^2/n_b) (normal-shift approximation
    with Welch degrees of freedom)."""
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    se = math.sqrt(va + vb)
    if se == 0:
        return 0.0
    df = (va + vb) ** 2 / ((va ** 2 / (n_a - 1) if va else 0.0) + (vb ** 2 / (n_b - 1) if vb else 0.0))
    return float((st.t.ppf(1 - alpha / 2, df) + st.t.ppf(power, df)) * se)


def equivalence_power(sd_a: float, sd_b: float, n_a: int, n_b: int, margin: float, *, true_diff: float = 0.0,
                      alpha: float = ALPHA) -> float:
    """Probability that TOST declares equivalence when the true difference is ``true_diff`` (normal-shift
    approximation: the estimate ~ N(true_diff, SE^2), the CI half-width t_{1-alpha} * SE taken as fixed)."""
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    se = math.sqrt(va + vb)
    if se == 0:
        return 1.0 if abs(true_diff) < margin else 0.0
    df = (va + vb) ** 2 / ((va ** 2 / (n_a - 1) if va else 0.0) + (vb ** 2 / (n_b - 1) if vb else 0.0))
    t = st.t.ppf(1 - alpha, df)
    p = st.norm.cdf((margin - true_diff) / se - t) - st.norm.cdf((-margin - true_diff) / se + t)
    return float(max(p, 0.0))


@dataclass(frozen=True)
class TostResult:
    quantity: str
    n_ours: int
    n_ref: int
    mean_ours: float
    mean_ref: float
    sd_ours: float
    sd_ref: float
    diff: float                # mean_ours - mean_ref
    ci_low: float              # (1 - 2 alpha) CI of diff
    ci_high: float
    margin: float
    margin_rule: str
    p_tost: float              # max of the two one-sided p-values; equivalent iff < alpha
    p_diff: float              # two-sided Welch test of no difference
    mde80: float               # smallest difference detected with 80% power (two-sided, alpha)
    power_equiv: float         # probability an identical recipe passes at these n and SDs
    equivalent: bool
    alpha: float = ALPHA

    @property
    def detected_difference(self) -> bool:
        return self.p_diff < self.alpha

    def as_dict(self) -> dict:
        d = asdict(self)
        d["detected_difference"] = self.detected_difference
        return d

    def describe(self) -> str:
        verdict = "EQUIVALENT" if self.equivalent else "NOT shown equivalent"
        return (f"{self.quantity}: ours {self.mean_ours:.4g} +- {self.sd_ours:.2g} (n={self.n_ours}) vs reference "
                f"{self.mean_ref:.4g} +- {self.sd_ref:.2g} (n={self.n_ref}); diff {self.diff:+.3g}, "
                f"{100 * (1 - 2 * self.alpha):.0f}% CI [{self.ci_low:+.3g}, {self.ci_high:+.3g}] vs margin "
                f"+-{self.margin:.3g} ({self.margin_rule}); TOST p={self.p_tost:.3g} -> {verdict}; "
                f"difference test p={self.p_diff:.3g}; detectable at 80% power: {self.mde80:.3g}; "
                f"P(identical recipe passes)={self.power_equiv:.2f}")


def tost(ours, ref, margin: float, *, quantity: str = "value", margin_rule: str = "", alpha: float = ALPHA
         ) -> TostResult:
    """Two one-sided Welch t-tests of |mean(ours) - mean(ref)| < margin (see module doc)."""
    a, b = _sample(ours, f"{quantity} (ours)"), _sample(ref, f"{quantity} (reference)")
    if not margin > 0:
        raise StatsError(f"{quantity}: equivalence margin must be > 0, got {margin}")
    diff, se, df = welch(a, b)
    if se == 0:
        p_lo = p_hi = 0.0 if abs(diff) < margin else 1.0
        p_diff = 1.0 if diff == 0 else 0.0
        t = 0.0
    else:
        t = st.t.ppf(1 - alpha, df)
        p_lo = float(st.t.sf((diff + margin) / se, df))    # H0: diff <= -margin
        p_hi = float(st.t.cdf((diff - margin) / se, df))   # H0: diff >= +margin
        p_diff = float(2 * st.t.sf(abs(diff) / se, df))
    sd_a, sd_b = float(a.std(ddof=1)), float(b.std(ddof=1))
    p = max(p_lo, p_hi)
    return TostResult(quantity, a.size, b.size, float(a.mean()), float(b.mean()), sd_a, sd_b, diff,
                      diff - t * se, diff + t * se, float(margin), margin_rule, p, p_diff,
                      min_detectable_difference(sd_a, sd_b, a.size, b.size, alpha=alpha),
                      equivalence_power(sd_a, sd_b, a.size, b.size, margin, alpha=alpha), bool(p < alpha), alpha)


# ---------------------------------------------------------------------------------------- curves
@dataclass(frozen=True)
class BandResult:
    quantity: str
    steps: np.ndarray          # checkpoint steps
    mean_ours: np.ndarray
    sd_ours: np.ndarray
    mean_ref: np.ndarray
    sd_ref: np.ndarray
    t: np.ndarray              # pooled two-sample t per checkpoint (SD floored, see bands())
    threshold: float
    n_outside: int
    allowed: int
    median_mde80: float        # median over checkpoints of the 80%-power detectable difference
    ok: bool

    def describe(self) -> str:
        worst = int(np.argmax(np.abs(self.t))) if self.t.size else 0
        w = (f"; largest |t| {abs(self.t[worst]):.2f} at step {int(self.steps[worst])} (ours "
             f"{self.mean_ours[worst]:.4g} vs reference {self.mean_ref[worst]:.4g} +- {self.sd_ref[worst]:.2g})"
             if self.t.size else "")
        return (f"{self.quantity}: {self.n_outside} of {self.steps.size} checkpoints outside |t| > "
                f"{self.threshold:.2f} (allowed {self.allowed}){w}; median detectable difference "
                f"{self.median_mde80:.3g} -> {'OK' if self.ok else 'OUTSIDE THE BANDS'}")

    def as_dict(self) -> dict:
        return {"quantity": self.quantity, "checkpoints": int(self.steps.size), "n_outside": self.n_outside,
                "allowed": self.allowed, "threshold_t": self.threshold, "median_mde80": self.median_mde80,
                "max_abs_t": float(np.max(np.abs(self.t))) if self.t.size else 0.0, "ok": self.ok}


def bands(ours, ref, steps, *, quantity: str, rel_floor: float = 1e-4, abs_floor: float = 0.0,
          alpha_point: float = 1 - BAND_QUANTILE, allowed_fraction: float = BAND_ALLOWED_FRACTION) -> BandResult:
    """Compare two sets of curves, (k, M) ours and (K, M) reference, checkpoint by checkpoint.

    At each checkpoint: the two-sample t of the seed means with the POOLED variance (the null hypothesis is
    "one distribution", so both sides estimate one variance; with few torch seeds, e.g. 2 in the reduced
    run, Welch's t would have ~1 degree of freedom and no power), df = k + K - 2. The pooled SD is floored
    at ``rel_floor * |mean_ref|`` because some checkpoints have (almost) no seed spread on either side (the
    first step's loss is ln(num_classes) exactly on every seed: zero-initialised head), and there a rounding
    difference of float32 arithmetic (~1e-6 relative for a reduction over a batch) must not count; 1e-4 is
    100x that (``abs_floor`` for quantities near 0, e.g. a change since step 1). Outside: |t| > t_{1 - alpha_point/2, df}. Rule: at most ``max(1, floor(allowed_fraction * M))``
    checkpoints outside (BAND_ALLOWED_FRACTION: why)."""
    a = np.asarray(ours, np.float64)
    b = np.asarray(ref, np.float64)
    s = np.asarray(steps)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or s.shape != (a.shape[1],):
        raise StatsError(f"{quantity}: curves must be (seeds, checkpoints) with the same checkpoints; got ours "
                         f"{a.shape}, reference {b.shape}, steps {s.shape}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise StatsError(f"{quantity}: {a.shape[0]} torch and {b.shape[0]} reference runs; at least 2 seeds each")
    if a.shape[1] == 0:
        raise StatsError(f"{quantity}: no checkpoints to compare")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise StatsError(f"{quantity}: non-finite values in the curves")
    ka, kb = a.shape[0], b.shape[0]
    ma, mb = a.mean(0), b.mean(0)
    sp = np.sqrt(((ka - 1) * a.var(0, ddof=1) + (kb - 1) * b.var(0, ddof=1)) / (ka + kb - 2))
    sp = np.maximum(np.maximum(sp, rel_floor * np.abs(mb)), abs_floor)
    se = sp * math.sqrt(1 / ka + 1 / kb)
    se = np.where(se > 0, se, np.finfo(np.float64).tiny)
    df = ka + kb - 2
    t = (ma - mb) / se
    thr = float(st.t.ppf(1 - alpha_point / 2, df))
    n_out = int((np.abs(t) > thr).sum())
    allowed = max(1, int(math.floor(allowed_fraction * a.shape[1])))
    mde = (thr + st.t.ppf(0.8, df)) * se
    return BandResult(quantity, s, ma, a.std(0, ddof=1), mb, b.std(0, ddof=1), t, thr,
                      n_out, allowed, float(np.median(mde)), n_out <= allowed)


def window_mean(curves, steps, lo: int, hi: int) -> np.ndarray:
    """Per-seed mean of (seeds, steps) curves over lo <= step <= hi."""
    c = np.asarray(curves, np.float64)
    s = np.asarray(steps)
    m = (s >= lo) & (s <= hi)
    if not m.any():
        raise StatsError(f"no recorded steps in [{lo}, {hi}]")
    return c[:, m].mean(1)


def smooth_checkpoints(curves, steps, every: int) -> tuple[np.ndarray, np.ndarray]:
    """Average per-step curves (seeds, S) over consecutive windows of ``every`` steps -> (seeds, M), and the
    last step of each window. Per-step training losses are noisy (one batch, one mixup draw); the bands
    compare window means, as big_vision's own log does between log_training_steps."""
    c = np.asarray(curves, np.float64)
    s = np.asarray(steps)
    if every <= 1:
        return c, s
    n = (c.shape[1] // every) * every
    if n == 0:
        raise StatsError(f"fewer than {every} steps to window")
    w = c[:, :n].reshape(c.shape[0], -1, every).mean(2)
    return w, s[:n].reshape(-1, every)[:, -1]


# ------------------------------------------------------------------------- mixup: the known part of the noise
def mixup_entropy(a) -> np.ndarray:
    """H(a) = -a ln a - (1-a) ln(1-a) of mixup coefficients (0 for an unmixed step, ln 2 for a 50/50 mix).
    A step's training loss rises ~linearly with it: its labels are that mix of two one-hot rows."""
    a = np.clip(np.asarray(a, np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(a * np.log(a) + (1 - a) * np.log1p(-a))
    return np.nan_to_num(h, nan=0.0)


def expected_mixup_entropy(p: float) -> float:
    """E[H(a)] for big_vision's draw a ~ Beta(p, p) (H is symmetric, so folding to max(a, 1-a) keeps it);
    0 without mixup. Exact (numerical quadrature), so no seed's draws set the centre."""
    if not p:
        return 0.0
    from scipy import integrate
    f = lambda x: float(mixup_entropy(x)) * st.beta.pdf(x, p, p)  # noqa: E731
    return float(2 * integrate.quad(f, 0.0, 0.5, limit=200)[0])


def mixup_slope(pairs, steps, lo: int, window: int) -> tuple[float, float]:
    """(slope, correlation) of training loss on H(a), pooled over ``pairs`` of (loss, a) curves (seeds,
    steps), from update ``lo`` on, after removing each seed's mean over consecutive ``window``-update windows
    (the trend of training). Used to take the known mixup draws out of per-step losses."""
    xs, ys = [], []
    s = np.asarray(steps)
    for loss, a in pairs:
        m = s >= lo
        L, Hh = np.asarray(loss, np.float64)[:, m], mixup_entropy(np.asarray(a)[:, m])
        n = (L.shape[1] // window) * window
        if n == 0:
            continue
        L = L[:, :n].reshape(L.shape[0], -1, window)
        Hh = Hh[:, :n].reshape(Hh.shape[0], -1, window)
        xs.append((Hh - Hh.mean(2, keepdims=True)).ravel())
        ys.append((L - L.mean(2, keepdims=True)).ravel())
    if not xs:
        raise StatsError(f"no updates from {lo} on to fit the loss on the mixup draws")
    x, y = np.concatenate(xs), np.concatenate(ys)
    if not np.any(x):
        raise StatsError("no mixup draw varies: nothing to fit (no mixup on either side?)")
    return float(x @ y / (x @ x)), float(np.corrcoef(x, y)[0, 1])


def mixup_adjusted(loss, a, p: float, slope: float) -> np.ndarray:
    """Per-step loss minus the part explained by that step's draw: loss - slope * (H(a) - E_p[H]). The
    expectation is the recipe's own (p), so a run that never mixes is not credited with a mixup penalty."""
    return np.asarray(loss, np.float64) - slope * (mixup_entropy(a) - expected_mixup_entropy(p))

"""PNG overlays of the dynamics check: both frameworks, mean +- SD across seeds (matplotlib, Agg)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from parity.dynamics import stats as S
from parity.dynamics.compare import WINDOW_STEPS, Comparison
from parity.dynamics.curves import Curves

COLORS = {"big_vision": "#1f77b4", "torch": "#d62728"}


def _band(ax, x, curves, label, color):
    m, s = curves.mean(0), curves.std(0, ddof=1) if curves.shape[0] > 1 else np.zeros(curves.shape[1])
    ax.plot(x, m, color=color, lw=1.4, label=f"{label} (n={curves.shape[0]})")
    ax.fill_between(x, m - s, m + s, color=color, alpha=0.25, lw=0)


def overlay(ours: Curves, ref: Curves, comparison: Comparison, out: str | Path, *, title: str = "") -> Path:
    """One PNG: training loss, grad norm, param norm (windowed), early loss and grad norm (per step), val
    top-1 and loss at the eval steps. Bands = mean +- 1 SD across seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = comparison.steps
    a, b = ours.upto(n), ref.upto(n)
    has_eval = bool(np.any((a.eval_steps > 0)) and np.any(b.eval_steps > 0))
    panels = [("train_loss", "training loss", True), ("grad_norm", "grad global norm (raw)", True),
              ("param_change", "param norm - param norm(step 1)", True),
              ("train_loss", "training loss, early steps", False), ("grad_norm", "grad norm, early steps", False),
              ("eval", "val top-1", None) if has_eval else
              ("param_change", "param norm - param norm(step 1), early steps", False)]
    if a.param_norm is not None and b.param_norm is not None:
        a.param_change = a.param_norm - a.param_norm[:, :1]
        b.param_change = b.param_norm - b.param_norm[:, :1]
    else:
        a.param_change = b.param_change = None
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    for ax, (q, label, windowed) in zip(axes.ravel(), panels):
        if q == "eval":
            for c, name in ((b, "big_vision"), (a, "torch")):
                keep = c.eval_steps > 0
                _band(ax, c.eval_steps[keep], c.eval_acc[:, keep], name, COLORS[name])
            ax.set_xlabel("step")
        elif getattr(a, q) is None or getattr(b, q) is None:
            ax.text(0.5, 0.5, f"{q}: not recorded on both sides", ha="center", va="center", transform=ax.transAxes)
        elif windowed:
            if n < 2 * WINDOW_STEPS:
                ax.text(0.5, 0.5, "run too short for windows", ha="center", va="center", transform=ax.transAxes)
            else:
                for c, name in ((b, "big_vision"), (a, "torch")):
                    w, s = S.smooth_checkpoints(getattr(c, q), c.steps, WINDOW_STEPS)
                    _band(ax, s, w, name, COLORS[name])
                ax.set_xlabel(f"step (means of {WINDOW_STEPS}-update windows)")
        else:
            e = min(comparison.early, n)
            for c, name in ((b, "big_vision"), (a, "torch")):
                _band(ax, c.steps[:e], getattr(c, q)[:, :e], name, COLORS[name])
            ax.set_xlabel("step")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    failed = ", ".join(comparison.failed)
    if len(failed) > 90:
        failed = failed[:87] + "..."
    verdict = "EQUIVALENT" if comparison.equivalent else f"NOT EQUIVALENT (failed: {failed})"
    fig.suptitle(f"{title or comparison.variant}: {verdict}\n{ours.k} torch vs {ref.k} big_vision seeds, "
                 f"{n} updates; bands = mean +- SD across seeds", fontsize=11)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    plt.close(fig)
    return out

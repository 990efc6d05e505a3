"""Figures for the RandAugment spectrum study (matplotlib, Agg backend: no display needed).

``render`` writes two PNGs per magnitude, the implementations side by side (one column each):
  <stem>_spectrum.png   per-draw sorted-pixel spectra: a heat map of the first draws' sorted pixel values
                        (one row per draw, rows ordered by mean grey) above the mean spectrum with its
                        10-90 % band
  <stem>_histogram.png  the pooled histogram of output values (log scale), and the interior 1..254 only
                        (the grid's own 0 and 255 hide everything the ops create; as in the mup-vit study).
                        Levels made by rare op pairs (1 draw in 8,000) show up only in the column with more
                        draws: compare the columns' large bars, the distances do that quantitatively.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from parity.spectrum import LEVELS, Spectra, sorted_spectra

HEATMAP_DRAWS = 300


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def render(spectra: Mapping[str, Spectra], outdir: Path, *, title: str, stem: str) -> list[Path]:
    plt = _pyplot()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    names = list(spectra)
    cols = len(names)
    paths = []

    # Sorted-pixel spectra.
    fig, axes = plt.subplots(2, cols, figsize=(4.2 * cols, 7.5), squeeze=False,
                             gridspec_kw={"height_ratios": [1.3, 1]})
    for j, name in enumerate(names):
        s = spectra[name]
        spec = sorted_spectra(s.hist)
        shown = spec[:HEATMAP_DRAWS]
        shown = shown[np.argsort(shown.mean(1), kind="stable")]
        ax = axes[0, j]
        ax.imshow(shown, aspect="auto", cmap="gray", vmin=0, vmax=255, interpolation="nearest",
                  extent=(0, 1, len(shown), 0))
        ax.set_title(f"{name}\n{s.n} draws; first {len(shown)} shown", fontsize=9)
        ax.set_xlabel("pixel rank (fraction of the image)")
        ax.set_ylabel("draw (ordered by mean grey)")
        ax = axes[1, j]
        x = (np.arange(spec.shape[1]) + 0.5) / spec.shape[1]
        lo, hi = np.percentile(spec, [10, 90], axis=0)
        ax.fill_between(x, lo, hi, color="tab:blue", alpha=0.25, label="10-90 % of draws")
        ax.plot(x, spec.mean(0), color="tab:blue", label="mean sorted spectrum")
        ax.set_ylim(-5, 260)
        ax.set_xlabel("pixel rank (fraction of the image)")
        ax.set_ylabel("grey level")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"{title}: sorted-pixel spectra", fontsize=11)
    fig.tight_layout()
    path = outdir / f"{stem}_spectrum.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    paths.append(path)

    # Histograms.
    fig, axes = plt.subplots(2, cols, figsize=(4.2 * cols, 6.5), squeeze=False, sharey="row")
    levels = np.arange(LEVELS)
    for j, name in enumerate(names):
        s = spectra[name]
        p = s.pooled()
        ax = axes[0, j]
        ax.bar(levels, p, width=1.0, color="tab:gray")
        ax.set_yscale("log")
        ax.set_ylim(1e-7, 1)
        ax.set_title(f"{name}\n{s.n} draws; coloured pixels: {s.coloured_fraction():.2g}", fontsize=9)
        ax.set_xlabel("grey level (all)")
        ax.set_ylabel("fraction of pixels")
        ax = axes[1, j]
        interior = p[1:LEVELS - 1]
        ax.bar(levels[1:LEVELS - 1], interior, width=1.0, color="tab:orange")
        ax.set_yscale("log")
        ax.set_ylim(1e-7, 1)
        ax.set_xlabel("grey level 1..254 (what the ops create)")
        ax.set_ylabel("fraction of pixels")
    fig.suptitle(f"{title}: pooled histograms", fontsize=11)
    fig.tight_layout()
    path = outdir / f"{stem}_histogram.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    paths.append(path)
    return paths

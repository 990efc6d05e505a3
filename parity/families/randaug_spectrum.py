"""Family `randaug_spectrum`: the distribution of RandAugment(2, M) outputs, ours vs big_vision.

Reference: big_vision's `randaug(2, M)` pp op run in tf.data ``n`` times on the 224x224 black & white grid
of 56x56 squares (n = 8,000 for the recipe's M = 10, 4,000 for M = 5 and 15); the recorded statistics are
per-draw grey-level histograms, pooled per-channel histograms and per-draw counts of coloured pixels
(see parity/spectrum.py).

Ours: torch_impl's RandAugment17 (num_ops=2, fill 128, big_vision's Contrast) run RUNS = 3 times with
seeds 1..3, ``n`` draws each (n = 1,000 at M = 10, 500 at the other magnitudes). One image per call:
RandAugment17 shares its drawn ops across a batch, so batching would not give independent draws.

Bar: the distance from our runs to big_vision (median over the 3 runs) in units of our own noise floor
(the median distance between our 3 runs of different seeds at the same n). A correct implementation sits
near or below 1 (the reference side has more draws than a torch run, so it adds less noise than a second
torch run); resampling the recorded big_vision draws as if they were ours gives ratios of 0.7 median and
at most 1.5 (TV) / 2.4 (spectrum) in 200 trials, so the bar of 3 floors does not fail a correct
implementation by chance, while the controls below land at 4.7 .. 7.5 floors (docs/spectrum.md).
Distances: total variation between pooled 256-bin histograms ("tv", every magnitude) and L1 between mean
sorted-pixel spectra ("spectrum_l1", M = 10 only: at n = 500 it separates torchvision by under 3 floors).

Colour: the grid is grey, and every big_vision op treats the three channels alike, so no output pixel
may have R != G or G != B; the bar is big_vision's recorded coloured fraction (0).

Negative controls that must be rejected: torchvision's own v2.RandAugment(num_ops=2) at the matching
magnitude bin (3M of 30, clipped to 30) with fill 128 (other op set, Identity included, signed enhance
factors); at M = 10 also our own ops with the probability big_vision samples and discards honoured
(``prob_honoured``); for the colour check, torchvision's RandAugment with timm's ImageNet-mean fill
(124, 116, 104), which paints coloured borders into a grey image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parity import grids
from parity.checks import Check
from parity.spectrum import DISTANCES, IMAGENET_MEAN_FILL, Spectra, cached_sample, compare, torchvision_magnitude
from parity.store import FixtureError, decode_spec, encode_spec

NAME = "randaug_spectrum"

# case -> (magnitude, big_vision draws). M = 10 is the ViT-S/16 recipe; 15 (vit_i21k "medium", mixer)
# goes beyond big_vision's _MAX_LEVEL of 10, which big_vision simply extrapolates.
CASES = {"bw_grid_m10": (10, 8000), "bw_grid_m5": (5, 4000), "bw_grid_m15": (15, 4000)}
REFERENCE_SEED = 0
RUNS = 3              # our runs (seeds 1..RUNS); the floor is the median distance over their 3 pairs
BAR = 3.0             # in noise floors
COLOUR_DRAWS = 100    # draws for the colour negative control (a coloured fill shows in ~40 % of draws)
METRICS = {"tv": "TV(pooled histogram)", "spectrum_l1": "L1(mean sorted spectrum)"}


@dataclass(frozen=True)
class Plan:
    """What the torch side runs for one magnitude."""
    n: int                       # draws per torch run (the floor is measured at this n)
    metrics: tuple[str, ...]     # distances checked
    controls: dict               # negative control implementation -> metrics it is checked with
    slow: bool


# M = 10 (the recipe): both distances, torchvision and the honoured-probability bug as controls.
# Other magnitudes: the pooled-histogram TV only (at n = 500 the mean-spectrum distance of torchvision is
# within ~3 floors at M = 5, too close to the bar to be a reliable control; see docs/spectrum.md).
PLANS = {10: Plan(1000, ("tv", "spectrum_l1"),
                  {"torchvision": ("tv", "spectrum_l1"), "prob_honoured": ("tv", "spectrum_l1")}, slow=False)}
OTHER_PLAN = Plan(500, ("tv",), {"torchvision": ("tv",)}, slow=True)


def plan(magnitude: int) -> Plan:
    return PLANS.get(magnitude, OTHER_PLAN)


def grid() -> np.ndarray:
    """The study's image: 224x224, 56x56 black and white squares, (H, W, 3) uint8."""
    return grids.bw_grid(224, 224, 56)


def make_requests() -> dict[str, dict[str, np.ndarray]]:
    return {case: {"image": grid(),
                   "spec": encode_spec({"num_layers": 2, "magnitude": m, "n": n, "seed": REFERENCE_SEED})}
            for case, (m, n) in CASES.items()}


def _reference(store, rel) -> tuple[int, Spectra]:
    data = store.load(rel)
    where = str(store.root / rel)
    if "spec" not in data or "image" not in data:
        raise FixtureError(f"{where}: fields 'spec' and 'image' are required; regenerate the fixture with "
                         f"`parity fixtures generate --family {NAME}`")
    spec = decode_spec(data["spec"])
    if not np.array_equal(data["image"], grid()):
        raise FixtureError(f"{where}: field 'image' is not the 224x224 B&W grid this family samples; regenerate "
                         f"the fixture with `parity fixtures generate --family {NAME}`")
    return int(spec["magnitude"]), Spectra.from_arrays(data, source=where)


def recorded(store) -> dict[int, Spectra]:
    """Every recorded big_vision spectrum in ``store``, by magnitude."""
    return dict(_reference(store, rel) for rel in store.files(NAME))


def _runs(impl: str, magnitude: int, count: int, n: int) -> list[Spectra]:
    return [cached_sample(impl, magnitude, n, seed) for seed in range(1, 1 + count)]


def _guarded(compute, magnitude: int):
    """An implementation that refuses the magnitude is a failed check (NaN, with the reason), not a crash."""
    def run():
        try:
            return compute()
        except (ValueError, TypeError) as e:
            why = f"the implementation raised {type(e).__name__}: {e}"
            if magnitude > 10:
                why += (f". big_vision's randaug accepts magnitude {magnitude} and extrapolates its level "
                        f"mapping past _MAX_LEVEL = 10 (its configs use randaug(2, 15) and randaug(2, 20)), "
                        f"so RandAugment17 should too")
            return math.nan, why
    return run


def _distance_check(store, rel, metric: str, impl: str, magnitude: int):
    def compute():
        m, reference = _reference(store, rel)
        p = plan(m)
        floor_runs = _runs("ours", m, RUNS, p.n)
        candidate = floor_runs if impl == "ours" else _runs(impl, m, 1, p.n)
        c = compare(candidate, floor_runs, reference, metric)
        return c.ratio, (f"{c.describe()}; big_vision vs itself at the same n: "
                         f"{reference_floor(reference, metric, p.n):.4g}")
    return _guarded(compute, magnitude)


def reference_floor(reference: Spectra, metric: str, n: int) -> float:
    """Cross-check of the floor without torch: median distance between disjoint n-draw chunks of the
    recorded big_vision draws (the reference's own sampling noise at the torch side's n)."""
    k = reference.n // n
    d = [DISTANCES[metric](reference.hist[i * n:(i + 1) * n], reference.hist[(i + 1) * n:(i + 2) * n])
         for i in range(0, k - 1, 2)]
    return float(np.median(d)) if d else math.nan


def _colour_check(store, rel, impl: str, magnitude: int):
    def compute():
        m, reference = _reference(store, rel)
        runs = _runs("ours", m, RUNS, plan(m).n) if impl == "ours" else _runs(impl, m, 1, COLOUR_DRAWS)
        coloured = sum(int(r.colour_count.sum()) for r in runs)
        total = sum(r.n * r.pixels for r in runs)
        worst = max(int(r.colour_count.max()) for r in runs)
        return coloured / total, (f"{coloured} of {total} output pixels coloured (worst draw {worst}); "
                                  f"big_vision: {reference.coloured_fraction():.3g} over {reference.n} draws")
    return _guarded(compute, magnitude)


def checks(store) -> list[Check]:
    out = []
    for rel in store.files(NAME):
        m, reference = _reference(store, rel)
        p = plan(m)
        case = f"m{m}"
        for metric in p.metrics:
            out.append(Check(NAME, f"{case}:{metric}", f"{METRICS[metric]} / noise floor", BAR,
                             _distance_check(store, rel, metric, "ours", m), slow=p.slow))
        for impl, metrics in p.controls.items():
            label = f"torchvision_randaugment_{torchvision_magnitude(m)}of30" if impl == "torchvision" else impl
            for metric in metrics:
                out.append(Check(NAME, f"{case}:{metric}:{label}", f"{METRICS[metric]} / noise floor", BAR,
                                 _distance_check(store, rel, metric, impl, m), negative=True, slow=p.slow))
        bar = reference.coloured_fraction()
        out.append(Check(NAME, f"{case}:colourless", "coloured pixel fraction", bar,
                         _colour_check(store, rel, "ours", m), slow=p.slow))
        out.append(Check(NAME, f"{case}:colourless:torchvision_fill_{'_'.join(map(str, IMAGENET_MEAN_FILL))}",
                         "coloured pixel fraction", bar, _colour_check(store, rel, "torchvision_mean_fill", m),
                         negative=True, slow=p.slow))
    return out


def figures(store, results, outdir) -> list[Path]:
    """The sorted-pixel spectra and histograms of ours, big_vision and torchvision, one PNG per magnitude."""
    from parity.spectrum_plots import render
    paths = []
    for m, reference in sorted(recorded(store).items()):
        n = plan(m).n
        try:
            ours = cached_sample("ours", m, n, 1)
        except (ValueError, TypeError):
            continue  # the checks report the refusal
        spectra = {"ours (torch_impl)": ours, "big_vision": reference,
                   f"torchvision v2.RandAugment({torchvision_magnitude(m)}/30)": cached_sample("torchvision", m, n, 1)}
        paths += render(spectra, Path(outdir), title=f"RandAugment(2, {m}) on the 224x224 B&W grid",
                        stem=f"{NAME}_m{m}")
    return paths

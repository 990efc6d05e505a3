"""RandAugment pixel-value spectra: ours vs big_vision vs torchvision (the library; the `parity spectrum`
command is parity/spectrum_cli.py).

The study (after the mup-vit RandAugment investigation): apply RandAugment(2, M) ``n`` times to the
224x224 black & white grid of 56x56 squares and look at the distribution of output pixel values. The grid
has only the values 0 and 255, so every other value in an output was made by an op (fills of 128,
brightness/contrast blends, posterize, solarize-add, sharpness edges, ...): the histogram is a fingerprint
of which ops run at which strength, and a per-draw *sorted-pixel spectrum* (the draw's pixel values in
increasing order) shows how much of each image an op changed.

Statistics (the same on both sides; the big_vision side is recorded by
``reference/generators/randaug_spectrum.py``):
  hist          (n, 256)  per-draw histogram of channel 0 (a draw's sorted spectrum is its inverse CDF)
  hist_rgb      (3, 256)  every output value per channel, pooled over the draws
  colour_count  (n,)      per draw, pixels with R != G or G != B (the grid is grey, so should be 0)

Distances between two sets of draws:
  tv_distance        total variation between the pooled, normalised 256-bin histograms (0 identical,
                     1 disjoint)
  spectrum_distance  mean |difference| between the mean sorted spectra (in grey levels, 0..255)
  w1_distance        Wasserstein-1 between the pooled pixel-value distributions (grey levels, 0..255)
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torchvision.transforms import v2

from parity import grids
from torch_impl.pp.randaug import OPS, apply_op
from torch_impl.pp.transforms import RandAugment17

LEVELS = 256
SPECTRUM_POINTS = 224
# torchvision's RandAugment spreads magnitudes over 31 bins (0..30); big_vision's levels run 0..10.
TORCHVISION_BINS = 31
BIG_VISION_MAX_LEVEL = 10
# timm's RandAugment default fill: the ImageNet mean in uint8 (a per-channel fill: colours a grey image).
IMAGENET_MEAN_FILL = (124, 116, 104)


class SpectrumError(ValueError):
    """Spectrum statistics have the wrong shape or type (names the source and the field)."""


@dataclass(frozen=True)
class Spectra:
    """Pixel-value statistics of ``n`` augmented draws of one image."""
    hist: np.ndarray          # (n, 256) int64
    hist_rgb: np.ndarray      # (3, 256) int64
    colour_count: np.ndarray  # (n,) int64

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], *, source: str = "spectra") -> Spectra:
        """Validate recorded arrays; a problem names ``source`` and the field, and how to fix it."""
        fix = "regenerate the fixture (`parity fixtures generate --family randaug_spectrum`)"
        for key in ("hist", "hist_rgb", "colour_count"):
            if key not in arrays:
                raise SpectrumError(f"{source}: field {key!r} is missing; {fix}")
        hist = np.asarray(arrays["hist"])
        rgb = np.asarray(arrays["hist_rgb"])
        colour = np.asarray(arrays["colour_count"])
        if hist.ndim != 2 or hist.shape[1] != LEVELS or hist.shape[0] < 1:
            raise SpectrumError(f"{source}: field 'hist' must have shape (n, {LEVELS}), got {hist.shape}; {fix}")
        if rgb.shape != (3, LEVELS):
            raise SpectrumError(f"{source}: field 'hist_rgb' must have shape (3, {LEVELS}), got {rgb.shape}; {fix}")
        if colour.shape != (hist.shape[0],):
            raise SpectrumError(f"{source}: field 'colour_count' must have shape ({hist.shape[0]},), got "
                                f"{colour.shape}; {fix}")
        for key, a in (("hist", hist), ("hist_rgb", rgb), ("colour_count", colour)):
            if not np.issubdtype(a.dtype, np.integer) or (a.size and a.min() < 0):
                raise SpectrumError(f"{source}: field {key!r} must hold non-negative integer counts "
                                    f"(got dtype {a.dtype}); {fix}")
        totals = hist.sum(1)
        if np.any(totals != totals[0]):
            raise SpectrumError(f"{source}: field 'hist': draws have different pixel counts "
                                f"({totals.min()}..{totals.max()}); {fix}")
        return cls(hist.astype(np.int64), rgb.astype(np.int64), colour.astype(np.int64))

    @property
    def n(self) -> int:
        return int(self.hist.shape[0])

    @property
    def pixels(self) -> int:
        """Pixels per draw."""
        return int(self.hist[0].sum())

    def pooled(self) -> np.ndarray:
        """Normalised 256-bin histogram of channel 0 over all draws."""
        h = self.hist.sum(0).astype(np.float64)
        return h / h.sum()

    def coloured_fraction(self) -> float:
        return float(self.colour_count.sum()) / (self.n * self.pixels)


# ---- distances ----------------------------------------------------------------------------------
def _normalised(h) -> np.ndarray:
    h = np.asarray(h, np.float64)
    if h.ndim == 2:  # per-draw histograms: pool them
        h = h.sum(0)
    if h.shape != (LEVELS,) or h.min() < 0 or h.sum() <= 0:
        raise SpectrumError(f"a histogram must be {LEVELS} non-negative counts with a positive total, "
                            f"got shape {h.shape}")
    return h / h.sum()


def tv_distance(a, b) -> float:
    """Total variation between two 256-bin histograms (counts, normalised here): 0 .. 1."""
    return 0.5 * float(np.abs(_normalised(a) - _normalised(b)).sum())


def w1_distance(a, b) -> float:
    """Wasserstein-1 (earth mover's) distance between two histograms over grey levels 0..255: 0 .. 255."""
    return float(np.abs(np.cumsum(_normalised(a)) - np.cumsum(_normalised(b))).sum())


def sorted_spectra(hist, points: int = SPECTRUM_POINTS) -> np.ndarray:
    """Per draw, its sorted pixel values sampled at ``points`` evenly spaced ranks: (n, points) uint8.

    Computed from the histograms: the value at rank r is the first level whose cumulative count exceeds r.
    """
    hist = np.atleast_2d(np.asarray(hist, np.int64))
    cum = np.cumsum(hist, axis=1)
    total = cum[:, -1]
    out = np.empty((hist.shape[0], points), np.uint8)
    frac = (np.arange(points) + 0.5) / points
    for i in range(hist.shape[0]):
        ranks = np.floor(frac * total[i]).astype(np.int64)
        out[i] = np.searchsorted(cum[i], ranks, side="right")
    return out


def mean_spectrum(hist, points: int = SPECTRUM_POINTS) -> np.ndarray:
    """The average of the per-draw sorted spectra: (points,) float, grey levels."""
    return sorted_spectra(hist, points).mean(0, dtype=np.float64)


def spectrum_distance(a_hist, b_hist, points: int = SPECTRUM_POINTS) -> float:
    """Mean absolute difference between the mean sorted spectra of two sets of draws: 0 .. 255."""
    return float(np.abs(mean_spectrum(a_hist, points) - mean_spectrum(b_hist, points)).mean())


DISTANCES: dict[str, Callable] = {"tv": tv_distance, "spectrum_l1": spectrum_distance, "w1": w1_distance}


# ---- sampling the torch side --------------------------------------------------------------------
@contextlib.contextmanager
def _one_thread():
    """Per-image ops on 224x224 are ~10x slower with intra-op threads on a busy 2-core box; run them serially."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def sample(make_transform: Callable, image, n: int, *, seed: int) -> Spectra:
    """Apply a transform to ``image`` (uint8 (3, H, W) tensor or (H, W, 3) numpy) ``n`` times.

    ``make_transform(generator)`` builds the per-image callable; both the generator and torch's global RNG
    (which torchvision's own transforms draw from) are seeded with ``seed``, and the global RNG state is
    restored afterwards.
    """
    import torch
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if isinstance(image, np.ndarray):
        image = grids.to_chw(image)
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be a uint8 (3, H, W) tensor, got {image.dtype} {tuple(image.shape)}")
    pixels = image.shape[1] * image.shape[2]
    hist = np.empty((n, LEVELS), np.int64)
    rgb = np.zeros((3, LEVELS), np.int64)
    colour = np.empty(n, np.int64)
    with torch.random.fork_rng(devices=[]), _one_thread(), torch.inference_mode():
        torch.manual_seed(seed)
        transform = make_transform(torch.Generator().manual_seed(seed))
        for i in range(n):
            out = transform(image)
            if out.dtype != torch.uint8 or out.shape != image.shape:
                raise RuntimeError(f"transform returned {out.dtype} {tuple(out.shape)}, expected uint8 "
                                   f"{tuple(image.shape)}")
            flat = out.reshape(3, pixels).to(torch.int64)
            counts = torch.stack([torch.bincount(flat[c], minlength=LEVELS) for c in range(3)]).numpy()
            hist[i] = counts[0]
            rgb += counts
            colour[i] = int(((flat[0] != flat[1]) | (flat[1] != flat[2])).sum())
    return Spectra(hist, rgb, colour)


def torchvision_magnitude(magnitude: int) -> int:
    """big_vision level M of 10 -> torchvision bin 3M of 30 (same strength); clipped to torchvision's 30."""
    return min(round(magnitude * (TORCHVISION_BINS - 1) / BIG_VISION_MAX_LEVEL), TORCHVISION_BINS - 1)


def ours(magnitude: int, *, contrast: str = "big_vision", fill=128) -> Callable:
    """Factory for torch_impl's RandAugment17 with big_vision's settings (num_ops=2)."""
    def make(generator):
        return RandAugment17(num_ops=2, magnitude=magnitude, fill=fill, contrast=contrast, generator=generator)
    return make


def torchvision_randaugment(magnitude: int, *, fill=128) -> Callable:
    """Factory for torchvision's own v2.RandAugment(num_ops=2) at the matching bin (it uses the global RNG)."""
    def make(generator):
        fill_arg = list(fill) if isinstance(fill, (tuple, list)) else fill
        return v2.RandAugment(num_ops=2, magnitude=torchvision_magnitude(magnitude),
                              num_magnitude_bins=TORCHVISION_BINS, fill=fill_arg)
    return make


# big_vision's randaug op list, in its order (names as big_vision spells them).
BIG_VISION_OPS = OPS  # big_vision's 16 ops in its order (torch_impl.pp.randaug's op table)


def prob_honoured(magnitude: int, *, num_ops: int = 2, fill=128) -> Callable:
    """A known-wrong RandAugment built from our own ops: each layer applies its op only with the probability
    big_vision samples (uniform in [0.2, 0.8]) and then discards. big_vision always applies the op; honouring
    the probability (as AutoAugment policies do) leaves about half the layers as identity."""
    def make(generator):
        import torch

        def transform(image):
            h, w = image.shape[-2:]
            for _ in range(num_ops):
                name = BIG_VISION_OPS[int(torch.randint(0, len(BIG_VISION_OPS), (1,), generator=generator))]
                sign = 1 if int(torch.randint(0, 2, (1,), generator=generator)) else -1
                center = (int(torch.randint(0, h, (1,), generator=generator)),
                          int(torch.randint(0, w, (1,), generator=generator)))
                prob = 0.2 + 0.6 * float(torch.rand((), generator=generator))
                u = float(torch.rand((), generator=generator))
                if u < prob:
                    image = apply_op(image, name, magnitude, sign=sign, replace=fill, cutout_center=center)
            return image
        return transform
    return make


IMPLEMENTATIONS: dict[str, Callable[[int], Callable]] = {
    "ours": ours,
    "ours_contrast_fixed": lambda m: ours(m, contrast="fixed"),
    "ours_fill_0": lambda m: ours(m, fill=0),
    "prob_honoured": prob_honoured,
    "torchvision": torchvision_randaugment,
    "torchvision_mean_fill": lambda m: torchvision_randaugment(m, fill=IMAGENET_MEAN_FILL),
}

_CACHE: dict[tuple, Spectra] = {}


def cached_sample(impl: str, magnitude: int, n: int, seed: int, image_key: str = "bw_grid") -> Spectra:
    """``sample`` of a named implementation on the B&W grid, memoised (several checks share the runs)."""
    if image_key != "bw_grid":
        raise ValueError(f"unknown image {image_key!r}")
    key = (impl, magnitude, n, seed, image_key)
    if key not in _CACHE:
        _CACHE[key] = sample(IMPLEMENTATIONS[impl](magnitude), grids.bw_grid(), n, seed=seed)
    return _CACHE[key]


@dataclass(frozen=True)
class Comparison:
    """Distance of an implementation to the reference, in units of our own run-to-run noise floor."""
    metric: str
    distance: float           # median over our runs of d(run_i, reference)
    floor: float              # median of d(run_i, run_j) over pairs of our runs (same n)
    floors: tuple[float, ...]
    n: int

    @property
    def ratio(self) -> float:
        if self.floor > 0:
            return self.distance / self.floor
        return 0.0 if self.distance == 0 else math.inf

    def describe(self) -> str:
        return (f"{self.metric} = {self.distance:.4g} vs noise floor {self.floor:.4g} (median of "
                f"{', '.join(f'{f:.4g}' for f in self.floors)}; n = {self.n} draws per torch run)")


def noise_floor(runs: list[Spectra], metric: str) -> tuple[float, tuple[float, ...]]:
    """Median distance between every pair of runs of the same implementation with different seeds."""
    d = DISTANCES[metric]
    floors = tuple(d(runs[i].hist, runs[j].hist) for i in range(len(runs)) for j in range(i + 1, len(runs)))
    if not floors:
        raise ValueError("the noise floor needs at least two runs")
    return float(np.median(floors)), floors


def compare(candidate: list[Spectra], floor_runs: list[Spectra], reference: Spectra, metric: str) -> Comparison:
    d = DISTANCES[metric]
    floor, floors = noise_floor(floor_runs, metric)
    dist = float(np.median([d(c.hist, reference.hist) for c in candidate]))
    return Comparison(metric, dist, floor, floors, candidate[0].n)

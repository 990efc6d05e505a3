"""Family `inception_crop`: crop boxes of big_vision's inception crop vs torch_impl.inception_crop.

Reference: boxes sampled by big_vision's own ops inside tf.data (reference/generators/inception_crop.py):
20,000 per image size from ``decode_jpeg_and_inception_crop`` (the ViT-S/16 train op) and 10,000 from
``inception_crop``, on sizes from ImageNet-typical to extreme (64x1000, 33x31) plus two where TF's
fallback to the whole image matters (100x2660: ~40% of calls; 10x400: always).

Checks per size and op: two-sample KS tests (scipy.stats.ks_2samp) of ours vs TF's on the area fraction
h*w/(H*W), the aspect ratio w/h, and the offsets top/(H-h), left/(W-w); pass if p >= 0.001. The
samples are fixed (TF seed in the request, torch seed below), so the verdicts are deterministic; with
~60 tests a correct sampler would still fail one at that bar only ~6% of the time if all seeds were
redrawn, while the negative controls score p < 1e-50. The rate of full-image boxes (the fallback, or a
sampled box that happens to cover everything) is compared with a two-proportion z test, same bar.
Negative controls that must be rejected: torchvision's RandomResizedCrop.get_params (scale 8%-100%,
area uniform, centre-crop fallback), a uniform-in-area sampler with TF's own 5% floor and ratios, and our
sampler with offsets drawn from {0..H-h} instead of TF's {0..H-h-1}.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from parity.checks import Check
from parity.photos import encode_jpeg
from parity.store import encode_spec
from torch_impl.inception_crop import sample_inception_boxes

NAME = "inception_crop"

# (height, width); the case name is f"{h}x{w}"
SIZES = [(375, 500), (224, 224), (500, 120), (64, 1000), (33, 31), (100, 2660), (10, 400)]
N_TRAIN, N_CROP = 20_000, 10_000
N_NEGATIVE = 5_000  # the negative controls miss by p < 1e-50 already at this size
P_BAR = 1e-3
TORCH_SEED = 20240611
AREA_NEGATIVE_SIZES = {(375, 500), (224, 224)}
FALLBACK_NEGATIVE_SIZES = {(10, 400), (100, 2660)}
OFFSET_NEGATIVE_SIZES = {(33, 31)}


def make_requests() -> dict[str, dict[str, np.ndarray]]:
    reqs = {}
    for i, (h, w) in enumerate(SIZES):
        grey = np.full((h, w, 3), 128, np.uint8)
        jpeg = np.frombuffer(encode_jpeg(grey, 75), np.uint8)
        spec = {"height": h, "width": w, "n_train": N_TRAIN, "n_crop": N_CROP, "seed": 1000 + 10 * i}
        reqs[f"{h}x{w}"] = {"jpeg": jpeg, "spec": encode_spec(spec)}
    return reqs


# ---- statistics ---------------------------------------------------------------------------------
def box_stats(boxes: np.ndarray, height: int, width: int) -> dict[str, np.ndarray]:
    b = np.asarray(boxes, np.float64)
    top, left, h, w = b.T
    return {
        "area": h * w / (height * width),
        "aspect": w / h,
        "top": top / np.maximum(height - h, 1),
        "left": left / np.maximum(width - w, 1),
    }


def full_rate_pvalue(ours: np.ndarray, ref: np.ndarray, height: int, width: int) -> tuple[float, str]:
    """Two-sided two-proportion z test on the share of boxes that are the whole image."""
    k1 = int(((ours[:, 2] == height) & (ours[:, 3] == width)).sum())
    k2 = int(((ref[:, 2] == height) & (ref[:, 3] == width)).sum())
    n1, n2 = len(ours), len(ref)
    p = (k1 + k2) / (n1 + n2)
    detail = f"ours {k1}/{n1} = {k1 / n1:.4f}, TF {k2}/{n2} = {k2 / n2:.4f}"
    if p in (0.0, 1.0):
        return 1.0, detail
    z = (k1 / n1 - k2 / n2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2)), detail + f", z = {z:.2f}"


def ks_pvalue(a: np.ndarray, b: np.ndarray) -> tuple[float, str]:
    from scipy.stats import ks_2samp
    r = ks_2samp(a, b)
    return float(r.pvalue), f"D = {r.statistic:.4f}, n = {len(a)} vs {len(b)}"


# ---- samplers -----------------------------------------------------------------------------------
def _single_thread(fn):
    def wrapped(*a, **k):
        n = torch.get_num_threads()
        torch.set_num_threads(1)  # many tiny ops: threads only add overhead
        try:
            return fn(*a, **k)
        finally:
            torch.set_num_threads(n)
    return wrapped


@_single_thread
def ours(height: int, width: int, n: int, seed: int) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    return sample_inception_boxes(height, width, n, area_range=(0.05, 1.0), generator=g).numpy()


@_single_thread
def torchvision_rrc(height: int, width: int, n: int, seed: int) -> np.ndarray:
    """Negative control: torchvision's RandomResizedCrop box sampler at its defaults."""
    from torchvision.transforms import v2
    torch.manual_seed(seed)
    img = torch.empty(1, height, width, dtype=torch.uint8)
    return np.array([v2.RandomResizedCrop.get_params(img, scale=[0.08, 1.0], ratio=[3 / 4, 4 / 3])
                     for _ in range(n)], np.int64)


@_single_thread
def fast_sampler(height: int, width: int, n: int, seed: int) -> np.ndarray:
    """The one-box sampler the fast training pipeline calls per image (``sample_inception_box1``), n times:
    the code that trains, checked against TF's boxes too (an off-by-one in its offsets must fail here)."""
    from torch_impl.fast_ops import sample_inception_box1
    g = torch.Generator().manual_seed(seed)
    return np.array([sample_inception_box1(height, width, (0.05, 1.0), generator=g) for _ in range(n)], np.int64)


def inclusive_offsets(height: int, width: int, n: int, seed: int) -> np.ndarray:
    """Negative control: our boxes, offsets redrawn from {0, .., H - h} (TF never returns H - h)."""
    b = ours(height, width, n, seed).copy()
    rng = np.random.default_rng(seed)
    b[:, 0] = np.floor(rng.uniform(size=n) * (height - b[:, 2] + 1)).astype(np.int64)
    b[:, 1] = np.floor(rng.uniform(size=n) * (width - b[:, 3] + 1)).astype(np.int64)
    return b


@_single_thread
def uniform_area(height: int, width: int, n: int, seed: int, max_attempts: int = 100) -> np.ndarray:
    """Negative control: area fraction ~ U[0.05, 1], ratio ~ U[0.75, 1.33], whole image on failure."""
    rng = np.random.default_rng(seed)
    out = np.tile(np.array([0, 0, height, width]), (n, 1))
    pending = np.arange(n)
    for _ in range(max_attempts):
        if not len(pending):
            break
        a = rng.uniform(0.05, 1.0, len(pending)) * height * width
        r = rng.uniform(0.75, 1.33, len(pending))
        w = np.rint(np.sqrt(a * r)).astype(int)
        h = np.rint(np.sqrt(a / r)).astype(int)
        ok = (w >= 1) & (h >= 1) & (w <= width) & (h <= height)
        top = np.floor(rng.uniform(size=len(pending)) * (height - h + 1)).astype(int)
        left = np.floor(rng.uniform(size=len(pending)) * (width - w + 1)).astype(int)
        out[pending[ok]] = np.stack([top, left, h, w], 1)[ok]
        pending = pending[~ok]
    return out


# ---- checks -------------------------------------------------------------------------------------
def _cache(fn):
    memo = {}

    def get(*key):
        if key not in memo:
            memo[key] = fn(*key)
        return memo[key]
    return get


def checks(store) -> list[Check]:
    out = []
    samplers = {"ours": ours, "torchvision_rrc": torchvision_rrc, "uniform_area": uniform_area,
                "inclusive_offsets": inclusive_offsets, "fast_sampler": fast_sampler}
    positive = ("ours", "fast_sampler")
    sample = _cache(lambda which, h, w, n, seed: samplers[which](h, w, n, seed))

    def ks_check(rel, case, tag, op, stat, which, h, w, n, seed):
        def compute():
            a = box_stats(sample(which, h, w, n, seed), h, w)[stat]
            return ks_pvalue(a, box_stats(store.load(rel)[op], h, w)[stat])
        suffix = "" if which == "ours" else f":{which}"
        return Check(NAME, f"{case}/{tag}/{stat}{suffix}", "KS p-value", P_BAR, compute,
                     higher_is_better=True, negative=which not in positive)

    def full_check(rel, case, tag, op, which, h, w, n, seed):
        def compute():
            return full_rate_pvalue(sample(which, h, w, n, seed), store.load(rel)[op], h, w)
        suffix = "" if which == "ours" else f":{which}"
        return Check(NAME, f"{case}/{tag}/full_image_rate{suffix}", "two-proportion p-value", P_BAR, compute,
                     higher_is_better=True, negative=which not in positive)

    for rel in store.files(NAME):
        case = rel.rsplit("/", 1)[1][:-4]
        h, w = (int(v) for v in case.split("x"))
        for op, tag, n, k in (("boxes_train", "train_op", N_TRAIN, 0), ("boxes_crop", "crop_op", N_CROP, 1)):
            seed = TORCH_SEED + 7 * k + 31 * h + w
            for stat in ("area", "aspect", "top", "left"):
                out.append(ks_check(rel, case, tag, op, stat, "ours", h, w, n, seed))
            out.append(full_check(rel, case, tag, op, "ours", h, w, n, seed))
            if op != "boxes_train":
                continue
            # the per-image sampler of the fast training pipeline, on the same TF boxes (own torch seed)
            for stat in ("area", "aspect", "top", "left"):
                out.append(ks_check(rel, case, tag, op, stat, "fast_sampler", h, w, n, seed + 1))
            out.append(full_check(rel, case, tag, op, "fast_sampler", h, w, n, seed + 1))
            # Negative controls: uniform-in-area samplers get the area distribution wrong (density flat
            # instead of ~1/sqrt(A)); torchvision's fallback is a centre crop, not the whole image.
            if (h, w) in AREA_NEGATIVE_SIZES:
                for which in ("torchvision_rrc", "uniform_area"):
                    out.append(ks_check(rel, case, tag, op, "area", which, h, w, N_NEGATIVE, seed))
            if (h, w) in OFFSET_NEGATIVE_SIZES:  # the off-by-one in TF's offsets is visible on small images
                for stat in ("top", "left"):
                    out.append(ks_check(rel, case, tag, op, stat, "inclusive_offsets", h, w, n, seed))
            if (h, w) in FALLBACK_NEGATIVE_SIZES:
                out.append(full_check(rel, case, tag, op, "torchvision_rrc", h, w, N_NEGATIVE, seed))
    return out


def figures(store, results, outdir) -> list:
    """Area-fraction and aspect histograms at 375x500: big_vision (TF), ours, torchvision RandomResizedCrop."""
    from pathlib import Path

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rel = next((r for r in store.files(NAME) if r.endswith("/375x500.npz")), None)
    if rel is None:
        return []
    h, w = 375, 500
    seed = TORCH_SEED + 31 * h + w
    series = {"big_vision (TF)": store.load(rel)["boxes_train"], "ours": ours(h, w, N_TRAIN, seed),
              "torchvision RandomResizedCrop": torchvision_rrc(h, w, N_NEGATIVE, seed)}
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for label, boxes in series.items():
        st = box_stats(boxes, h, w)
        axes[0].hist(st["area"], bins=60, range=(0, 1), density=True, histtype="step", label=label)
        axes[1].hist(st["aspect"], bins=60, range=(0.7, 1.4), density=True, histtype="step", label=label)
    axes[0].set(title="crop area fraction (375x500): TF density ~ 1/sqrt(A)", xlabel="h*w / (H*W)")
    axes[1].set(title="crop aspect ratio w/h", xlabel="w / h")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "inception_crop_area_aspect.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]

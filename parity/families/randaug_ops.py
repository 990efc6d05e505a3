"""Family `randaug_ops`: big_vision's 16 randaug ops vs torch_impl.augment.apply_op.

Reference: big_vision's own ``randaug(1, level)`` pp op inside tf.data, with its random draws forced (op
index, sign, cutout centre; see reference/generators/randaug_ops.py), for every op x level 0..10 x both
signs (signed ops) on calibration grids (B&W, grey ramp, colour patches, contrast calibration, non-square
and odd sizes, noise) and downscaled real photos at odd sizes.
One check per op x image covers all its levels and signs; the detail names the worst case.
Bars: max |diff| <= 1 at every pixel, and at most 0.1% of the values differing at all (several wrong
implementations are off by exactly one on 20-50% of the values). Ours is exact on every recorded case.
Negative controls (must be rejected): torchvision's own kernels at big_vision's arguments, Contrast with
the true mean (contrast="fixed"), Rotate and Translate in the wrong direction, nearest rounding with ties
to even, Posterize without TF's shift clamp, Sharpness that also smooths the border.
Quirk checks: the documented big_vision quirks, read off the recorded reference outputs alone.
"""
from __future__ import annotations

import collections
import contextlib
import math

import numpy as np
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from parity import grids, photos
from parity.checks import Check, max_abs_diff
from parity.store import decode_spec, encode_spec
from torch_impl import augment as A

NAME = "randaug_ops"
LEVELS = tuple(range(11))
BAR = 1.0          # DESIGN: every pixel within +-1
SHARE_BAR = 1e-3   # and at most 0.1% of the values off at all (we are exact: 0)


def _images() -> dict[str, np.ndarray]:
    g = grids.calibration_grids()
    keep = ("bw_224_sq56", "bw_224_sq7", "bw_224_sq1", "grey_ramp_224", "contrast_cal_224", "bw_160x288_sq32",
            "colour_patches_75x203")
    out = {k: g[k] for k in keep}
    out["noise_61x83"] = grids.noise(61, 83, seed=1)  # odd x odd; smaller than noise_97x131 to fit the budget
    out["chelsea_75x113"] = photos.photo("chelsea", (75, 113))
    out["coffee_61x91"] = photos.photo("coffee", (61, 91))
    out["astronaut_64x64"] = photos.photo("astronaut", (64, 64))
    return out


def _cutout_centres(h: int, w: int) -> list[tuple[int, int]]:
    """Centres for levels 0..10: middle, corners, edges (clipped squares) and interior points."""
    rng = np.random.default_rng(h * 1000 + w)
    fixed = [(h // 2, w // 2), (0, 0), (h - 1, w - 1), (0, w - 1), (h - 1, 0), (h // 3, 1), (2, w // 2)]
    extra = [(int(rng.integers(h)), int(rng.integers(w))) for _ in range(len(LEVELS) - len(fixed))]
    return fixed + extra


def _cases(h: int, w: int) -> list[list]:
    """[op, level, sign, cy, cx] for every op x level x sign (sign -1 only for the signed ops)."""
    centres = _cutout_centres(h, w)
    cases = []
    for op in A.OPS:
        for level in LEVELS:
            for sign in ((1, -1) if op in A.SIGNED_OPS else (1,)):
                cy, cx = centres[level] if op == "Cutout" else (0, 0)
                cases.append([op, level, sign, cy, cx])
    return cases


def make_requests() -> dict[str, dict[str, np.ndarray]]:
    reqs = {}
    for name, image in _images().items():
        h, w = image.shape[:2]
        reqs[name] = {"image": image, "spec": encode_spec({"cases": _cases(h, w)})}
    return reqs


# ---- loading and sweeping (memoised: the two metrics of one op x image share one sweep) ----------------
_CACHE: dict = {}                        # sweep results (small)
_LOADED: collections.OrderedDict = collections.OrderedDict()  # the last few fixture files, decoded


def _load(store, rel):
    key = (id(store), rel)
    if key not in _LOADED:
        data = store.load(rel)
        cases = [tuple(c) for c in decode_spec(data["spec"])["cases"]]
        refs = {c: data["outputs"][i] for c, i in zip(cases, data["index"])}
        ndiff = dict(zip(cases, (int(n) for n in data["eager_ndiff"])))
        _LOADED[key] = (data["image"], refs, ndiff)
        while len(_LOADED) > 3:
            _LOADED.popitem(last=False)
    _LOADED.move_to_end(key)
    return _LOADED[key]


def _label(case) -> str:
    op, level, sign, cy, cx = case
    extra = f",sign={sign:+d}" if op in A.SIGNED_OPS else ""
    extra += f",centre=({cy},{cx})" if op == "Cutout" else ""
    return f"{op}[level={level}{extra}]"


def _sweep_stats(store, rel, op, label, fn):
    """Over every recorded (level, sign) case of ``op``: worst max |diff|, worst share of differing values."""
    key = ("sweep", id(store), rel, op, label)
    if key in _CACHE:
        return _CACHE[key]
    image, refs, ndiff = _load(store, rel)
    x = grids.to_chw(image)
    with _one_thread():
        stats = _sweep_cases(x, refs, ndiff, op, fn, rel)
    _CACHE[key] = stats
    return stats


@contextlib.contextmanager
def _one_thread():
    """Small-image kernels run ~20x slower with 2 intra-op threads on a contended 2-core machine (and a
    DataLoader worker runs torch single-threaded anyway): sweep with one thread, then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sweep_cases(x, refs, ndiff, op, fn, rel):
    worst, worst_case, worst_detail, share, share_case, exact, n = -1.0, None, "", 0.0, None, 0, 0
    for case, ref in refs.items():
        if case[0] != op:
            continue
        try:
            ours = grids.to_hwc(fn(x, case))
            value, detail = max_abs_diff(ours, ref)
            frac = float((ours != ref).mean()) if ours.shape == ref.shape else 1.0
        except (ValueError, TypeError, RuntimeError) as e:  # a control that cannot even run is wrong
            value, detail, frac = math.inf, f"raised {type(e).__name__}: {e}", 1.0
        n += 1
        exact += value == 0
        if value > worst:
            worst, worst_case, worst_detail = value, case, detail
        if frac > share or share_case is None:
            share, share_case = frac, case
    if n == 0:
        stats = (math.nan, math.nan, f"no {op} cases in {rel}")
    else:
        eager = sum(v for c, v in ndiff.items() if c[0] == op)
        summary = (f"{exact}/{n} cases exact; worst {_label(worst_case)}: {worst_detail}; largest share of differing "
                   f"values {share:.3%} at {_label(share_case)}; big_vision eager vs tf.data: {eager} pixels differ")
        stats = (worst, share, summary)
    return stats


def _sweep(store, rel, op, fn, label="ours", metric="max"):
    def compute():
        worst, share, summary = _sweep_stats(store, rel, op, label, fn)
        return (worst if metric == "max" else share), summary
    return compute


def _apply(**overrides):
    def fn(x, case):
        op, level, sign, cy, cx = case
        kw = dict(sign=sign, cutout_center=(cy, cx))
        kw.update(overrides)
        return A.apply_op(x, op, level, **kw)
    return fn


# ---- negative controls: known-wrong implementations ----------------------------------------------------
def _tv_op(x, case):
    """torchvision's own kernel for the op, at big_vision's argument (what a port that trusts torchvision's
    ops would do)."""
    op, level, sign, cy, cx = case
    arg = A.op_argument(op, level, sign)
    nearest = v2.InterpolationMode.NEAREST
    if op == "Rotate":
        return TF.rotate(x, arg, interpolation=nearest, fill=128)
    if op in ("ShearX", "ShearY"):
        deg = math.degrees(math.atan(arg))
        shear = [deg, 0.0] if op == "ShearX" else [0.0, deg]
        return TF.affine(x, angle=0.0, translate=[0, 0], scale=1.0, shear=shear, interpolation=nearest, fill=128,
                         center=[0, 0])
    if op in ("TranslateX", "TranslateY"):
        t = [int(arg), 0] if op == "TranslateX" else [0, int(arg)]
        return TF.affine(x, angle=0.0, translate=t, scale=1.0, shear=[0.0, 0.0], interpolation=nearest, fill=128)
    if op == "Contrast":
        return TF.adjust_contrast(x, arg)
    if op == "Color":
        return TF.adjust_saturation(x, arg)
    if op == "Brightness":
        return TF.adjust_brightness(x, arg)
    if op == "Sharpness":
        return TF.adjust_sharpness(x, arg)
    if op == "Posterize":
        return TF.posterize(x, arg)
    if op == "Solarize":  # torchvision refuses threshold 256 on uint8; a port would clamp it to 255
        return TF.solarize(x, min(arg, 255))
    if op == "AutoContrast":
        return TF.autocontrast(x)
    if op == "Equalize":
        return TF.equalize(x)
    if op == "Invert":
        return TF.invert(x)
    if op == "SolarizeAdd":  # torchvision has none; PIL-style: add, clip, then solarize at 128
        return TF.solarize((x.to(torch.int16) + arg).clamp(0, 255).to(torch.uint8), 128)
    if op == "Cutout":  # torchvision's RandomErasing-style erase of the same box, value 0
        h, w = x.shape[-2:]
        top, left = max(0, cy - arg), max(0, cx - arg)
        return TF.erase(x, top, left, min(h, cy + arg) - top, min(w, cx + arg) - left, torch.tensor(0, dtype=torch.uint8))
    raise KeyError(op)


def _wrong_direction(x, case):
    op, level, sign, cy, cx = case
    return A.apply_op(x, op, level, sign=-sign)


def _ties_to_even(x, case):
    """Geometry with torch.round (ties to even) instead of TF's std::round (ties away from zero)."""
    from torch_impl.pp import geometry as G    # the nearest-neighbour sampling looks its rounding up there
    orig = G._round_half_away
    G._round_half_away = torch.round
    try:
        return _apply()(x, case)
    finally:
        G._round_half_away = orig


def _posterize_unclamped(x, case):
    op, level, sign, cy, cx = case
    shift = 8 - A.op_argument(op, level)
    return ((x.to(torch.int32) >> shift) << shift).to(torch.uint8)


def _sharpness_smooth_border(x, case):
    """Sharpness that smooths the border too (edge-replicated padding) instead of keeping original borders."""
    op, level, sign, cy, cx = case
    factor = A.op_argument(op, level)
    xf = torch.nn.functional.pad(x.to(torch.float32)[None], (1, 1, 1, 1), mode="replicate")[0]
    k = torch.tensor([[1., 1., 1.], [1., 5., 1.], [1., 1., 1.]]) / 13.0
    deg = torch.nn.functional.conv2d(xf[:, None], k[None, None])[:, 0].clamp(0, 255).to(torch.uint8)
    return A._blend(deg, x, factor)


def _autocontrast_global(x, case):
    """AutoContrast stretched with one min/max over all channels (big_vision stretches each channel)."""
    lo, hi = x.amin().float(), x.amax().float()
    return ((x.float() - lo) * (255.0 / (hi - lo))).clamp(0, 255).to(torch.uint8)


def _equalize_no_half_step(x, case):
    """Equalize without the step // 2 rounding term of the LUT (PIL and big_vision add it)."""
    out = torch.empty_like(x)
    for c in range(3):
        ch = x[c].reshape(-1).long()
        hist = torch.bincount(ch, minlength=256)
        step = (hist.sum() - hist[ch.max()]) // 255
        if step == 0:
            out[c] = x[c]
            continue
        lut = torch.cat([torch.zeros(1, dtype=torch.long), (hist.cumsum(0) // step)[:-1]]).clamp(0, 255)
        out[c] = lut[ch].reshape(x.shape[1:]).to(torch.uint8)
    return out


def _blend_rounded(x, case):
    """Brightness with the blend rounded to nearest instead of truncated (TF's cast truncates)."""
    op, level, sign, cy, cx = case
    return (x.double() * A.op_argument(op, level)).round().clamp(0, 255).to(torch.uint8)


def _color_torchvision_grey(x, case):
    """Color with torchvision's rgb_to_grayscale as the degenerate image (TF's weights/rounding differ)."""
    op, level, sign, cy, cx = case
    return A._blend(TF.rgb_to_grayscale(x, num_output_channels=3), x, A.op_argument(op, level))


# Negative controls per op: (label, implementation, images it runs on, metric). The "share" metric (share of
# values that differ at all) catches implementations that are off by one on many pixels, which +-1 hides.
_PHOTOS = ("chelsea_75x113", "noise_61x83")
_GEOM = ("chelsea_75x113", "noise_61x83", "bw_224_sq56")
NEGATIVES = {
    "Rotate": [("torchvision_rotate", _tv_op, _PHOTOS, "max"), ("wrong_direction", _wrong_direction, _GEOM, "max"),
               ("ties_to_even", _ties_to_even, ("bw_224_sq1",), "max")],
    "ShearX": [("torchvision_affine", _tv_op, _GEOM, "max"), ("wrong_direction", _wrong_direction, _GEOM, "max"),
               ("ties_to_even", _ties_to_even, ("bw_224_sq1", "noise_61x83"), "max")],
    "ShearY": [("torchvision_affine", _tv_op, _GEOM, "max"), ("wrong_direction", _wrong_direction, _GEOM, "max"),
               ("ties_to_even", _ties_to_even, ("bw_224_sq1", "noise_61x83"), "max")],
    "TranslateX": [("torchvision_affine", _tv_op, _GEOM, "max"), ("wrong_direction", _wrong_direction, _GEOM, "max")],
    "TranslateY": [("torchvision_affine", _tv_op, _GEOM, "max"), ("wrong_direction", _wrong_direction, _GEOM, "max")],
    "Contrast": [("torchvision_adjust_contrast", _tv_op, _PHOTOS + ("contrast_cal_224",), "max"),
                 ("contrast_fixed", _apply(contrast="fixed"), ("contrast_cal_224", "bw_224_sq56", "chelsea_75x113"), "max")],
    "Color": [("torchvision_adjust_saturation", _tv_op, _PHOTOS, "share"),
              ("torchvision_grayscale", _color_torchvision_grey, _PHOTOS, "share")],
    "Brightness": [("blend_rounded", _blend_rounded, _PHOTOS, "share")],
    "Sharpness": [("torchvision_adjust_sharpness", _tv_op, _PHOTOS, "share"),
                  ("smooth_border", _sharpness_smooth_border, ("bw_224_sq7", "noise_61x83"), "max")],
    "Posterize": [("torchvision_posterize", _tv_op, _PHOTOS, "max"), ("no_shift_clamp", _posterize_unclamped, _PHOTOS, "max")],
    "Solarize": [("torchvision_solarize", _tv_op, _PHOTOS, "max")],
    "SolarizeAdd": [("pil_style_solarize_add", _tv_op, _PHOTOS, "max")],
    "AutoContrast": [("global_min_max", _autocontrast_global, ("chelsea_75x113", "coffee_61x91"), "max"),
                     # off by one on 0.35% of coffee's values (float rounding of the scale), exact elsewhere
                     ("torchvision_autocontrast", _tv_op, ("coffee_61x91",), "share")],
    "Equalize": [("no_half_step_rounding", _equalize_no_half_step, _PHOTOS, "share")],
    "Cutout": [("erase_with_0", _tv_op, _PHOTOS, "max")],
}


# Ops whose torchvision kernel is bit-exact with big_vision (checked as positive facts for the docs).
TORCHVISION_EXACT = ("Equalize", "Brightness", "Invert")


# ---- quirks, read off the reference outputs alone -------------------------------------------------------
def _ref(refs, op, level, sign=1):
    for c, r in refs.items():
        if c[0] == op and c[1] == level and c[2] == sign:
            return r
    raise KeyError((op, level, sign))


def _shift(image: np.ndarray, dy: int, dx: int, fill: int = 128) -> np.ndarray:
    """Content moved by (dy, dx) pixels (down/right positive), uncovered area = fill."""
    h, w = image.shape[:2]
    out = np.full_like(image, fill)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = image[ys, xs]
    return out


def _rotation_disagreement(ref, image, degrees):
    """Share of pixels where big_vision's output differs from torchvision's nearest rotation by ``degrees``
    (positive = counter-clockwise on screen, as torchvision documents)."""
    tv = grids.to_hwc(TF.rotate(grids.to_chw(image), degrees, interpolation=v2.InterpolationMode.NEAREST, fill=128))
    return float((tv != ref).any(axis=-1).mean())


def _quirk_checks(store, rel, image_name):
    out = []

    def q(key, metric, fn, bar=0.0):
        def compute():
            image, refs, _ = _load(store, rel)
            return fn(image, refs)
        out.append(Check(NAME, f"quirk:{key}[{image_name}]", metric, bar, compute))

    q("solarize_level10_equals_invert", "max |Solarize(10) - Invert|",
      lambda im, r: max_abs_diff(_ref(r, "Solarize", 10), _ref(r, "Invert", 0)))
    q("posterize_0_bits_is_shift_7", "max |Posterize(0..2) - (x >> 7) << 7|",
      lambda im, r: max(max_abs_diff(_ref(r, "Posterize", lv), (im >> 7) << 7) for lv in (0, 1, 2)))
    q("sharpness_keeps_border", "max |Sharpness(0..10) - x| on the 1-pixel border",
      lambda im, r: max(max_abs_diff(np.concatenate([o[0], o[-1], o[:, 0], o[:, -1]]),
                                     np.concatenate([im[0], im[-1], im[:, 0], im[:, -1]]))
                        for o in (_ref(r, "Sharpness", lv) for lv in LEVELS)))
    if image_name in ("bw_224_sq56", "chelsea_75x113"):
        q("translate_x_positive_moves_content_left", "max |TranslateX(+p) - shift left by p, fill 128|",
          lambda im, r: max(max_abs_diff(_ref(r, "TranslateX", lv, 1), _shift(im, 0, -10 * lv)) for lv in LEVELS))
        q("translate_y_positive_moves_content_up", "max |TranslateY(+p) - shift up by p, fill 128|",
          lambda im, r: max(max_abs_diff(_ref(r, "TranslateY", lv, 1), _shift(im, -10 * lv, 0)) for lv in LEVELS))
        q("rotate_positive_is_counter_clockwise", "share of pixels off torchvision's CCW rotate(+30)",
          lambda im, r: (_rotation_disagreement(_ref(r, "Rotate", 10, 1), im, 30.0),
                         f"vs clockwise rotate(-30): {_rotation_disagreement(_ref(r, 'Rotate', 10, 1), im, -30.0):.3f}"),
          bar=0.02)
    if image_name == "bw_224_sq56":
        # Contrast at level 0 (factor 0.1) on a B&W grid: 196 + 0.1 * (x - 196), truncated: the blend target is
        # 224 * 224 / 256 = 196 although the mean grey is 127.5.
        q("contrast_mean_is_196_at_224x224", "max |Contrast(0) - trunc(196 + 0.1 (x - 196))|",
          lambda im, r: max_abs_diff(_ref(r, "Contrast", 0),
                                     (np.float32(196) + np.float32(0.1) * (im.astype(np.float32) - 196)).astype(np.uint8)))
    return out


def checks(store) -> list[Check]:
    out = []
    for rel in store.files(NAME):
        image_name = rel.rsplit("/", 1)[1][:-4]
        for op in A.OPS:
            levels = "levels 0..10" + (", signs +-1" if op in A.SIGNED_OPS else "")
            ours = _apply()
            out.append(Check(NAME, f"{op}[{image_name}]", f"max |diff| over {levels}", BAR,
                             _sweep(store, rel, op, ours)))
            out.append(Check(NAME, f"{op}[{image_name}]:share_differing", f"worst share of differing values over {levels}",
                             SHARE_BAR, _sweep(store, rel, op, ours, metric="share")))
            for label, fn, where, metric in NEGATIVES.get(op, []):
                if image_name in where:
                    m, bar = ((f"max |diff| over {levels}", BAR) if metric == "max" else
                              (f"worst share of differing values over {levels}", SHARE_BAR))
                    out.append(Check(NAME, f"{op}[{image_name}]:{label}", m, bar,
                                     _sweep(store, rel, op, fn, label, metric), negative=True))
            if op in TORCHVISION_EXACT and image_name in _PHOTOS + ("coffee_61x91",):
                # A documented fact, not a control: torchvision's kernel equals big_vision's for these ops.
                out.append(Check(NAME, f"{op}[{image_name}]:torchvision_is_exact", f"max |diff| over {levels}", 0.0,
                                 _sweep(store, rel, op, _tv_op, "torchvision_is_exact")))
        if image_name in _PHOTOS + ("coffee_61x91",):
            # Sharpness bit for bit in the TF arithmetic the manifest says the fixture was recorded with
            # (oneDNN off: "eigen"); the other one (oneDNN's fused multiply-add) must be rejected. The
            # +-1 / 0.1% bar above would not separate them (docs/portability.md).
            from parity.families import randaug_onednn as OD
            out.append(Check(NAME, f"Sharpness[{image_name}]:bit_exact", "share of differing values", 0.0,
                             OD.sweep(store, rel, "Sharpness", OD.sharpness_conv_of)))
            out.append(Check(NAME, f"Sharpness[{image_name}]:other_tf_arithmetic", "share of differing values", 0.0,
                             OD.sweep(store, rel, "Sharpness", OD._other), negative=True))
        out.extend(_quirk_checks(store, rel, image_name))
    return out

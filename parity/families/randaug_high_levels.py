"""Family `randaug_high_levels`: every randaug op at levels above big_vision's _MAX_LEVEL of 10.

big_vision maps a level linearly (level / 10) and does not clip it, so randaug(2, 15) and randaug(2, 20),
which its configs use, reach arguments the [0, 10] sweep of `randaug_ops` never sees: Solarize thresholds
above 256 (wrapped to uint8), Posterize with more than 8 bits (a negative shift that TF wraps to uint8 and
clamps to 7), rotations past 30 degrees, translations past 100 pixels. Bar: exact.
Negative control: Posterize clamping the shift at 0 for bits > 8 (identity), which big_vision does not do.
"""
from __future__ import annotations

import numpy as np
import torch

from parity import grids, photos
from parity.checks import Check, max_abs_diff
from parity.store import decode_spec, encode_spec
from torch_impl import augment as A

NAME = "randaug_high_levels"
LEVELS = (12, 15, 20, 25, 30)


def _images() -> dict[str, np.ndarray]:
    return {"noise_41x53": grids.noise(41, 53, seed=7), "chelsea_71x97": photos.photo("chelsea", (71, 97)),
            "bw_64_sq16": grids.bw_grid(64, 64, 16)}


def make_requests():
    reqs = {}
    for name, image in _images().items():
        h, w = image.shape[:2]
        cases = [[op, lv, s, (7 * lv) % h, (11 * lv) % w] for op in A.OPS for lv in LEVELS
                 for s in ((1, -1) if op in A.SIGNED_OPS else (1,))]
        reqs[name] = {"image": image, "spec": encode_spec({"cases": cases})}
    return reqs


def _posterize_clamped_at_zero(image, level):
    bits = A.op_argument("Posterize", level)
    shift = min(max(8 - bits, 0), 7)
    return (image >> shift) << shift


def _sweep(store, rel, op, fn):
    def compute():
        data = store.load(rel)
        x = grids.to_chw(data["image"])
        worst, detail = 0.0, ""
        with torch.inference_mode():
            for case, i in zip(decode_spec(data["spec"])["cases"], data["index"]):
                name, lv, s, cy, cx = case
                if name != op:
                    continue
                d, where = max_abs_diff(grids.to_hwc(fn(x, name, lv, s, (cy, cx))), data["outputs"][i])
                if d > worst or not detail:
                    worst, detail = d, f"level={lv} sign={s:+d}: {where}"
        return worst, detail
    return compute


def checks(store) -> list[Check]:
    out = []
    for rel in store.files(NAME):
        image = rel.rsplit("/", 1)[1][:-4]
        for op in A.OPS:
            out.append(Check(NAME, f"{op}[{image}]", "max |diff| over levels 12..30", 0.0, _sweep(
                store, rel, op, lambda x, n, lv, s, c: A.apply_op(x, n, lv, sign=s, cutout_center=c))))
        out.append(Check(NAME, f"Posterize[{image}]:shift_clamped_at_0", "max |diff| over levels 12..30", 0.0,
                         _sweep(store, rel, "Posterize", lambda x, n, lv, s, c: _posterize_clamped_at_zero(x, lv)),
                         negative=True))
    return out

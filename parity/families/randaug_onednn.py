"""Family `randaug_onednn`: big_vision's randaug ops recorded with TensorFlow's oneDNN kernels ON.

TensorFlow turns oneDNN on by default on some x86-64 CPUs (AVX-512 VNNI/BF16, AMX: "oneDNN custom
operations are on" in its log) and off on others. The reference pins the mode (default off) and records it
in each fixture's provenance; this small set is generated with it ON (``ONEDNN = "on"``), so the default
suite checks both arithmetics TensorFlow can give big_vision's ops (docs/portability.md):

* Sharpness: ``tf.nn.depthwise_conv2d`` of the 3x3 SMOOTH kernel. TF's own (Eigen) kernel sums the nine
  taps in row-major order, each product rounded to float32 then added; oneDNN's sums them in the same
  order with fused multiply-adds (one rounding per tap). Up to ~0.4% of the uint8 outputs move by 1.
  ``apply_op(..., sharpness_conv="onednn")`` reproduces the oneDNN bits; the family's checks read which
  arithmetic the fixture was recorded with from the manifest, so each is compared bit-exactly with its own.

Same request format and tf.data path as `randaug_ops` (reference/generators/randaug_onednn.py).
Bar: exact (every value equal). Negative control: the other arithmetic must be rejected.
"""
from __future__ import annotations

import numpy as np

from parity import grids, photos
from parity.checks import Check, max_abs_diff
from parity.store import decode_spec, encode_spec
from torch_impl import augment as A

NAME = "randaug_onednn"
ONEDNN = "on"              # generated with TF_ENABLE_ONEDNN_OPTS=1 whatever `--onednn` says
OPS = ("Sharpness",)       # the ops whose bits depend on the mode (docs/portability.md: the audit)
LEVELS = tuple(range(11)) + (15, 20)
SHARPNESS_CONV = {"off": "eigen", "on": "onednn"}


def _images() -> dict[str, np.ndarray]:
    return {"noise_61x83": grids.noise(61, 83, seed=1), "chelsea_75x113": photos.photo("chelsea", (75, 113)),
            "coffee_61x91": photos.photo("coffee", (61, 91))}


def make_requests() -> dict[str, dict[str, np.ndarray]]:
    return {name: {"image": image, "spec": encode_spec({"cases": [[op, lv, 1, 0, 0] for op in OPS for lv in LEVELS]})}
            for name, image in _images().items()}


def sharpness_conv_of(store, rel: str) -> str:
    """The depthwise-conv arithmetic the reference used for ``rel``, from its manifest provenance."""
    mode = store.entries()[rel].get("onednn", {}).get("mode", "unknown")
    if mode not in SHARPNESS_CONV:
        raise ValueError(f"{store.root / rel}: the manifest does not record TensorFlow's oneDNN mode (got "
                         f"{mode!r}); regenerate it with `parity fixtures generate --family {rel.split('/')[0]}`")
    return SHARPNESS_CONV[mode]


def sweep(store, rel, op, conv_for, metric="share"):
    """Worst over every recorded case of ``op``: share of differing values, or max |diff|."""
    def compute():
        data = store.load(rel)
        conv = conv_for(store, rel)
        x = grids.to_chw(data["image"])
        worst, detail, n = 0.0, "", 0
        for case, i in zip(decode_spec(data["spec"])["cases"], data["index"]):
            name, lv, s, cy, cx = case
            if name != op:
                continue
            ours = grids.to_hwc(A.apply_op(x, name, lv, sign=s, cutout_center=(cy, cx), sharpness_conv=conv))
            ref = data["outputs"][i]
            d, where = max_abs_diff(ours, ref)
            v = d if metric == "max" else float((ours != ref).mean())
            n += 1
            if v > worst or not detail:
                worst, detail = v, f"level {lv}: {where}"
        recorded = "on" if sharpness_conv_of(store, rel) == "onednn" else "off"
        return worst, f"sharpness_conv={conv!r}, fixture recorded with oneDNN {recorded}; {n} cases; worst {detail}"
    return compute


def _other(store, rel):
    return "eigen" if sharpness_conv_of(store, rel) == "onednn" else "onednn"


def checks(store) -> list[Check]:
    out = []
    for rel in store.files(NAME):
        image = rel.rsplit("/", 1)[1][:-4]
        for op in OPS:
            out.append(Check(NAME, f"{op}[{image}]", "max |diff| over levels", 0.0,
                             sweep(store, rel, op, sharpness_conv_of, "max")))
            out.append(Check(NAME, f"{op}[{image}]:share_differing", "share of differing values", 0.0,
                             sweep(store, rel, op, sharpness_conv_of)))
            out.append(Check(NAME, f"{op}[{image}]:other_tf_arithmetic", "share of differing values", 0.0,
                             sweep(store, rel, op, _other), negative=True))
    return out

"""Family `preprocess`: big_vision's deterministic preprocessing ops vs torch_impl.preprocess.

Reference: big_vision pp strings run in tf.data on calibration grids and real photos (odd sizes included).
Bar: exact for crops (integer indexing), 0 ulp-level for value_range (same float32 arithmetic).
Negative control: torchvision's center_crop, which rounds the offset where big_vision floors it.
"""
from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from parity import grids, photos
from parity.checks import Check, max_abs_diff
from parity.store import encode_spec
from torch_impl import preprocess as P

NAME = "preprocess"

# case key -> (big_vision pp string, torch function on a (3, H, W) uint8 tensor)
PIPELINES = {
    "central_crop_224": ("central_crop(224)", lambda x: P.central_crop(x, 224)),
    "central_crop_101x57": ("central_crop((101, 57))", lambda x: P.central_crop(x, (101, 57))),
    "central_crop_square": ("central_crop", lambda x: P.central_crop(x)),
    "value_range_m1_1": ("value_range(-1, 1)", lambda x: P.value_range(x, -1, 1)),
    "value_range_0_1_clip": ("value_range(0, 1, 10, 200, True)", lambda x: P.value_range(x, 0, 1, 10, 200, True)),
}


def _images() -> dict[str, np.ndarray]:
    g = grids.calibration_grids()
    return {
        "bw_160x288_sq32": g["bw_160x288_sq32"],
        "colour_patches_75x203": g["colour_patches_75x203"],
        "noise_97x131": g["noise_97x131"],
        "chelsea_300x451": photos.photo("chelsea"),
        "coffee_255x387": photos.photo("coffee", (255, 387)),
    }


def _applicable(key: str, image: np.ndarray) -> bool:
    h, w = image.shape[:2]
    if key.startswith("value_range"):
        return h * w <= 160 * 288  # float32 outputs: keep the store small (grids and noise cover all values)
    if key == "central_crop_224":
        return h >= 224 and w >= 224
    if key == "central_crop_101x57":
        return h >= 101 and w >= 57
    return True


def make_requests() -> dict[str, dict[str, np.ndarray]]:
    reqs = {}
    for name, image in _images().items():
        pipelines = {k: pp for k, (pp, _) in PIPELINES.items() if _applicable(k, image)}
        reqs[name] = {"image": image, "spec": encode_spec({"pipelines": pipelines})}
    return reqs


def _compare(store, rel, key, fn):
    def compute():
        data = store.load(rel)
        ours = fn(grids.to_chw(data["image"]))
        return max_abs_diff(grids.to_hwc(ours), data[f"out_{key}"])
    return compute


def checks(store) -> list[Check]:
    out = []
    for rel in store.files(NAME):
        data = store.load(rel)
        image_name = rel.rsplit("/", 1)[1][:-4]
        for key, (_, fn) in PIPELINES.items():
            if f"out_{key}" not in data:
                continue
            out.append(Check(NAME, f"{key}[{image_name}]", "max |diff|", 0.0, _compare(store, rel, key, fn)))
        # Negative control: torchvision's center_crop rounds (H-h)/2 up where big_vision floors it; the
        # odd-difference crops must therefore be rejected.
        if "out_central_crop_101x57" in data and ((data["image"].shape[0] - 101) % 2 or (data["image"].shape[1] - 57) % 2):
            out.append(Check(NAME, f"central_crop_101x57[{image_name}]:torchvision_center_crop", "max |diff|", 0.0,
                             _compare(store, rel, "central_crop_101x57", lambda x: TF.center_crop(x, [101, 57])),
                             negative=True))
        if "out_value_range_m1_1" in data:
            out.append(Check(NAME, f"value_range_m1_1[{image_name}]:to_dtype_scale", "max |diff|", 0.0,
                             _compare(store, rel, "value_range_m1_1",
                                      lambda x: TF.to_dtype(x, torch.float32, scale=True)),
                             negative=True))
    return out

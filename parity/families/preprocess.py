"""Family `preprocess`: big_vision's deterministic preprocessing ops vs torch_impl.preprocess.

Reference: big_vision pp strings run in tf.data on calibration grids, real photos (odd sizes included)
and real JPEG files (camera JPEGs shipped by scikit-image, and photos re-encoded baseline / progressive /
4:4:4 / grayscale / CMYK).
Bar: exact (max |diff| = 0) everywhere: crops are integer indexing, value_range is the same float32
arithmetic, the resizes are TF's kernels redone in float32 in TF's order, decoding uses the same
libjpeg-turbo IDCTs. The one exception is big_vision's fused ``decode_and_crop_jpeg`` (train op), which
differs from decode-then-crop in the crop window's last column on chroma-subsampled JPEGs; see
``train_op_*`` below.
The training path's value_range (``fast_pipeline.to_value_range``) is checked too, on the CPU and, with
``parity check --device cuda``, on the GPU, where torch's ``tensor / 255.0`` would multiply by the float32
reciprocal instead of dividing (1 ulp off on about half the values).
Negative controls: x * float32(1/255) (that reciprocal), torchvision's center_crop (rounds the offset), torchvision's antialiased resize in
place of TF's area resize, the accurate decode against TF's default (fast-DCT) decode, torchvision's own
eval transforms (Resize(256) + CenterCrop(224)).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from parity import grids, photos
from parity.checks import Check, device_tag, max_abs_diff
from parity.store import decode_spec, encode_spec
from torch_impl import preprocess as P

NAME = "preprocess"

# case key -> (big_vision pp string, torch function on a (3, H, W) uint8 tensor)
PIPELINES = {
    "central_crop_224": ("central_crop(224)", lambda x: P.central_crop(x, 224)),
    "central_crop_101x57": ("central_crop((101, 57))", lambda x: P.central_crop(x, (101, 57))),
    "central_crop_square": ("central_crop", lambda x: P.central_crop(x)),
    "value_range_m1_1": ("value_range(-1, 1)", lambda x: P.value_range(x, -1, 1)),
    "value_range_0_1_clip": ("value_range(0, 1, 10, 200, True)", lambda x: P.value_range(x, 0, 1, 10, 200, True)),
    "resize_small_256_area": ("resize_small(256)", lambda x: P.resize_small(x, 256)),
    "resize_small_256_bilinear": ("resize_small(256, 'bilinear')", lambda x: P.resize_small(x, 256, method="bilinear")),
    "resize_small_256_bilinear_aa": ("resize_small(256, 'bilinear', True)",
                                     lambda x: P.resize_small(x, 256, method="bilinear", antialias=True)),
    "resize_small_64_area": ("resize_small(64)", lambda x: P.resize_small(x, 64)),
    "resize_small_64_bilinear": ("resize_small(64, 'bilinear')", lambda x: P.resize_small(x, 64, method="bilinear")),
    "resize_small_64_bilinear_aa": ("resize_small(64, 'bilinear', True)",
                                    lambda x: P.resize_small(x, 64, method="bilinear", antialias=True)),
    "resize_224_bilinear": ("resize(224)", lambda x: P.resize(x, 224)),
    "resize_224_bilinear_aa": ("resize(224, antialias=True)", lambda x: P.resize(x, 224, antialias=True)),
    "resize_61x47_area": ("resize((61, 47), 'area')", lambda x: P.resize(x, (61, 47), "area")),
}
# Outputs of these are big: record them on the grids (they compress) and on one photo only.
_BIG_OUTPUTS = ("resize_small_256", "resize_224")
_BIG_OUTPUT_IMAGES = ("bw_160x288_sq32", "colour_patches_75x203", "chelsea_300x451")


def _images() -> dict[str, np.ndarray]:
    g = grids.calibration_grids()
    return {
        "bw_160x288_sq32": g["bw_160x288_sq32"],
        "colour_patches_75x203": g["colour_patches_75x203"],
        "noise_97x131": g["noise_97x131"],
        "chelsea_300x451": photos.photo("chelsea"),
        "coffee_255x387": photos.photo("coffee", (255, 387)),
    }


def _applicable(key: str, name: str, image: np.ndarray) -> bool:
    h, w = image.shape[:2]
    if key.startswith("value_range"):
        return h * w <= 160 * 288  # float32 outputs: keep the store small (grids and noise cover all values)
    if key == "central_crop_224":
        return h >= 224 and w >= 224
    if key == "central_crop_101x57":
        return h >= 101 and w >= 57
    if key.startswith(_BIG_OUTPUTS):
        # the photo gets only the eval pipeline's resize; the variants run on the (compressible) grids
        return name in _BIG_OUTPUT_IMAGES and (name != "chelsea_300x451" or key == "resize_small_256_area")
    return True


def make_requests() -> dict[str, dict[str, np.ndarray]]:
    reqs = {}
    for name, image in _images().items():
        pipelines = {k: pp for k, (pp, _) in PIPELINES.items() if _applicable(k, name, image)}
        reqs[name] = {"image": image, "spec": encode_spec({"pipelines": pipelines})}
    return reqs


def _compare(store, rel, key, fn):
    def compute():
        data = store.load(rel)
        ours = fn(grids.to_chw(data["image"]))
        return max_abs_diff(grids.to_hwc(ours), data[f"out_{key}"])
    return compute


def _to_value_range(device: str):
    """The training path's value_range (fast_pipeline.to_value_range: numba/numpy on the CPU, torch on a
    device, where the training loop runs it with runtime.device_value_range / device_augment)."""
    def fn(x):
        from torch_impl.fast_pipeline import to_value_range
        return to_value_range(x.to(device)).cpu()
    return fn


def _reciprocal_multiply(x):
    # What torch's CUDA ``tensor / 255.0`` computes: x * float32(1/255), 1 ulp off the true division.
    return (x.to(torch.float32) * torch.tensor(1.0 / 255.0, dtype=torch.float32)) * 2.0 - 1.0


def _image_checks(store, device: str = "cpu") -> list[Check]:
    """The checks on decoded images; on ``device`` != "cpu" the training path's value_range runs there
    (case names ending in "@cuda")."""
    at = device_tag(device)
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
            out.append(Check(NAME, f"value_range_m1_1[{image_name}]:train_path{at}", "max |diff|", 0.0,
                             _compare(store, rel, "value_range_m1_1", _to_value_range(device))))
            if len(np.unique(data["image"])) > 16:   # (a black-and-white grid maps exactly either way)
                out.append(Check(NAME, f"value_range_m1_1[{image_name}]:reciprocal_multiply", "max |diff|", 0.0,
                                 _compare(store, rel, "value_range_m1_1", _reciprocal_multiply), negative=True))
            out.append(Check(NAME, f"value_range_m1_1[{image_name}]:to_dtype_scale", "max |diff|", 0.0,
                             _compare(store, rel, "value_range_m1_1",
                                      lambda x: TF.to_dtype(x, torch.float32, scale=True)),
                             negative=True))
    return out


# ---- JPEG files: decode, the eval pipeline, the deterministic part of the train pipeline ------------
EVAL_PP = "decode|resize_small(256)|central_crop(224)"
JPEG_PIPELINES = {
    "decode_precise": "decode(precise=True)",
    "decode_default": "decode",
    "eval": EVAL_PP,
    # With the box fixed (the reference replaces TF's sampler), the train op is deterministic:
    "train_op": "decode_jpeg_and_inception_crop({size})",        # big_vision's fused decode_and_crop_jpeg
    "train_decode_then_crop": "decode|inception_crop({size})",   # decode, tf.slice, the same resize
}
_SMALL = (151, 227)
# files whose recorded train_op output shows decode_and_crop_jpeg's edge columns (on rocket and retina the
# 224 resize of the big window reads neither edge column)
TRAIN_OP_EDGE_CASES = ("jpeg_chelsea_q90_420",)
SUMMARY_STRIDE = 11  # must equal reference/generators/preprocess.py STRIDE  # odd sizes: chroma subsampling and the resizes see odd edges


def _reencoded() -> dict[str, bytes]:
    import io

    from PIL import Image
    img = photos.photo("chelsea", _SMALL)
    out = {
        "chelsea_q90_420": photos.encode_jpeg(img, 90, subsampling=2),
        "chelsea_q90_progressive": photos.encode_jpeg(img, 90, subsampling=2, progressive=True),
        "chelsea_q95_444": photos.encode_jpeg(img, 95, subsampling=0),
    }
    for mode in ("L", "CMYK"):
        buf = io.BytesIO()
        Image.fromarray(img).convert(mode).save(buf, format="JPEG", quality=90)
        out[f"chelsea_q90_{'gray' if mode == 'L' else 'cmyk'}"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    out["chelsea_png_named_jpeg"] = buf.getvalue()
    return out


def jpeg_cases() -> dict[str, dict]:
    """name -> {"jpeg": bytes, "pipelines": [...], "box": (top, left, h, w) | None, "summarise": [...]}"""
    cases = {
        "jpeg_rocket": {"jpeg": photos.jpeg_bytes("rocket"), "box": (37, 101, 301, 383),
                        "pipelines": list(JPEG_PIPELINES), "summarise": ["decode_precise", "decode_default"]},
        "jpeg_retina": {"jpeg": photos.jpeg_bytes("retina"), "box": (211, 96, 1001, 1188),
                        "pipelines": list(JPEG_PIPELINES), "summarise": ["decode_precise", "decode_default"]},
    }
    for name, data in _reencoded().items():
        pipes = ["decode_precise"] if name == "chelsea_png_named_jpeg" else ["decode_precise", "decode_default"]
        if name == "chelsea_q90_420":
            pipes += ["eval", "train_op", "train_decode_then_crop"]
        cases[f"jpeg_{name}"] = {"jpeg": data, "box": (9, 16, 97, 150), "pipelines": pipes, "summarise": [],
                                 "train_size": 112}
    return cases


# ---- many crop windows per JPEG encoding: big_vision's own decode_jpeg_and_inception_crop, boxes forced ----
# The train op decodes only the window (decode_and_crop_jpeg): on chroma-subsampled files the window is the
# image for chroma upsampling, so every window shape/offset class matters (iMCU-aligned left edge, a right
# edge inside a chroma pair, the image's own edges, 1-pixel windows). A small image keeps 24 windows per
# encoding at a few tens of KB; its odd size gives partial iMCUs at the right and bottom.
WINDOW_SHAPE = (75, 117)
WINDOW_PIPELINES = {"crop": "decode_jpeg_and_inception_crop",            # the raw window, no resize
                    "train224": "decode_jpeg_and_inception_crop(224)"}    # + big_vision's resize(224)
# train224 on the first windows of each file only (each 224x224 output costs ~160 KB): 2 on the subsampled
# encodings whose edges the resize reads, 1 elsewhere
WINDOWS_RESIZED = {"420": 2, "422": 2, "411": 2, "440": 2}
N_WINDOWS, N_WINDOWS_TRUNCATED = 24, 16


def _encode(img: np.ndarray, mode: str | None = None, **kw) -> bytes:
    import io

    from PIL import Image
    buf = io.BytesIO()
    im = Image.fromarray(img)
    (im.convert(mode) if mode else im).save(buf, format="JPEG", quality=kw.pop("quality", 90), **kw)
    return buf.getvalue()


def window_files() -> dict[str, bytes]:
    """The JPEG encodings big_vision's train op meets in ImageNet-like data. 4:1:1 (4x1 luma blocks per
    chroma block: a 32-pixel iMCU, so TF's crop aligns the window's left edge down to 32) and 4:4:0 (chroma
    halved vertically only) come from imagecodecs' libjpeg-turbo encoder (Pillow writes neither)."""
    import imagecodecs
    img = photos.photo("chelsea", WINDOW_SHAPE)
    return {"420": _encode(img, subsampling=2), "422": _encode(img, subsampling=1),
            "444": _encode(img, quality=95, subsampling=0),
            "progressive": _encode(img, subsampling=2, progressive=True),
            "optimized": _encode(img, subsampling=2, optimize=True),
            "restarts": _encode(img, subsampling=2, restart_marker_blocks=2),
            "grey": _encode(img, "L"), "cmyk": _encode(img, "CMYK"),
            "411": bytes(imagecodecs.jpeg8_encode(img, 90, subsampling="411")),
            "440": bytes(imagecodecs.jpeg8_encode(img, 90, subsampling="440"))}


def truncated_files() -> dict[str, bytes]:
    """Cut files: TF's verdict depends on the window (rows the window needs past the data fail; rows below
    are skipped unread), a progressive file fails whatever the window, a missing EOI only fails windows
    that reach the bottom row."""
    f = window_files()
    return {"420_cut50": f["420"][:len(f["420"]) // 2], "422_cut75": f["422"][:len(f["422"]) * 3 // 4],
            "progressive_cut90": f["progressive"][:len(f["progressive"]) * 9 // 10],
            "420_no_eoi": f["420"][:-2]}


def window_boxes(h: int, w: int, n: int, seed: int) -> list[list[int]]:
    """(top, left, height, width) windows: the first ones are those resized (an iMCU-aligned left edge, an
    unaligned one, the whole image), then edge cases, then seeded random ones."""
    rng = np.random.default_rng(seed)
    boxes = [[5, 16, 50, 61], [3, 7, 60, 101], [0, 0, h, w],
             [0, 0, 1, 1], [h - 1, w - 1, 1, 1], [0, 15, h, w - 15], [10, 32, 7, 1], [10, 33, 7, 2],
             [20, w - 3, 30, 3], [0, 1, h, w - 2]]
    while len(boxes) < n:
        bh, bw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        if rng.random() < 0.3:
            left = (left // 16) * 16          # iMCU-aligned left edge (16 px for 4:2:0 / 4:2:2)
        boxes.append([top, left, bh, bw])
    return boxes[:n]


def _window_requests() -> dict[str, dict[str, np.ndarray]]:
    reqs = {}
    h, w = WINDOW_SHAPE
    for name, data in window_files().items():
        spec = {"boxes": window_boxes(h, w, N_WINDOWS, seed=len(name)), "box_pipelines": WINDOW_PIPELINES,
                "box_limit": {"train224": WINDOWS_RESIZED.get(name, 1)}}
        reqs[f"windows_{name}"] = {"jpeg": np.frombuffer(data, np.uint8), "spec": encode_spec(spec)}
    for name, data in truncated_files().items():
        # windows spread over the rows, so both verdicts occur
        spec = {"boxes": window_boxes(h, w, N_WINDOWS_TRUNCATED, seed=100 + len(name)),
                "box_pipelines": {"crop": WINDOW_PIPELINES["crop"]}, "record_errors": True}
        reqs[f"windows_{name}"] = {"jpeg": np.frombuffer(data, np.uint8), "spec": encode_spec(spec)}
    return reqs


def _jpeg_requests() -> dict[str, dict[str, np.ndarray]]:
    reqs = {}
    for name, c in jpeg_cases().items():
        size = c.get("train_size", 224)
        spec = {"jpeg_pipelines": {k: JPEG_PIPELINES[k].format(size=size) for k in c["pipelines"]},
                "box": list(c["box"]), "summarise": c["summarise"], "train_size": size}
        reqs[name] = {"jpeg": np.frombuffer(c["jpeg"], np.uint8), "spec": encode_spec(spec)}
    return {**reqs, **_window_requests()}


_image_requests = make_requests


def make_requests() -> dict[str, dict[str, np.ndarray]]:  # noqa: F811 - images + JPEG files
    return {**_image_requests(), **_jpeg_requests()}


def _has_fast_dct() -> bool:
    try:
        import simplejpeg  # noqa: F401
    except ImportError:
        return False
    return True


def _summary(image: np.ndarray) -> dict[str, np.ndarray]:
    x = image.astype(np.int64)
    return {"rowsum": x.sum(axis=1), "colsum": x.sum(axis=0), "strided": image[::SUMMARY_STRIDE, ::SUMMARY_STRIDE],
            "shape": np.array(image.shape, np.int64)}


def _summary_diff(ours: np.ndarray, data, key: str) -> tuple[float, str]:
    """Max |diff| over row sums, column sums and a strided pixel sample (the full decode is not stored)."""
    ref_shape = tuple(int(v) for v in data[f"out_{key}__shape"])
    if ours.shape != ref_shape:
        return float("inf"), f"shape {ours.shape} != reference {ref_shape}"
    s = _summary(ours)
    worst, detail = 0.0, ""
    for part in ("rowsum", "colsum", "strided"):
        v, d = max_abs_diff(s[part], data[f"out_{key}__{part}"])
        if v > worst or not detail:
            worst, detail = max(worst, v), f"{part}: {d}"
    return worst, detail


def _jpeg_torch(key: str, data: bytes, box, train_size: int = 224) -> np.ndarray:
    from torch_impl.inception_crop import crop_and_resize
    if key == "decode_precise":
        out = P.decode_jpeg(data, precise=True)
    elif key == "decode_default":
        out = P.decode_jpeg(data, precise=False)
    elif key == "eval":
        out = P.central_crop(P.resize_small(P.decode_jpeg(data, precise=False), 256), 224)
    elif key == "train_op":     # decode only the window, as big_vision's fused op does
        from torch_impl.pp.transforms import decode_jpeg_and_crop
        out = decode_jpeg_and_crop(data, box, train_size)
    elif key == "train_decode_then_crop":
        out = crop_and_resize(P.decode_jpeg(data, precise=False), box, train_size)
    else:
        raise KeyError(key)
    return grids.to_hwc(out)


def _jpeg_compare(store, rel, key, fn=None, *, ours_key=None):
    """Our ``ours_key`` pipeline (default ``key``; or ``fn(jpeg)``) against big_vision's ``key`` output."""
    def compute():
        data = store.load(rel)
        spec = decode_spec(data["spec"])
        jpeg = data["jpeg"].tobytes()
        ours = (fn or (lambda d: _jpeg_torch(ours_key or key, d, spec["box"], spec.get("train_size", 224))))(jpeg)
        if key in spec.get("summarise", []):
            return _summary_diff(ours, data, key)
        return max_abs_diff(ours, data[f"out_{key}"])
    return compute


def window_decode(data: bytes, box, key: str) -> np.ndarray:
    """Our train op on one forced box, as big_vision's ``decode_jpeg_and_inception_crop`` with that box:
    key "crop" = the raw window (H, W, 3), "train224" = + resize(224). Raises where TF's op fails."""
    from torch_impl.pp.transforms import decode_jpeg_and_crop   # what DecodeJpegAndInceptionCrop runs
    return grids.to_hwc(decode_jpeg_and_crop(data, box, 224 if key == "train224" else None))


def decode_then_slice(data: bytes, box, key: str) -> np.ndarray:
    """Negative control: the whole file decoded (TF's fast DCT), then sliced (what we did before)."""
    from torch_impl.pp.crop import crop_and_resize
    full = P.decode_jpeg(data, precise=False)
    return grids.to_hwc(crop_and_resize(full, box, 224 if key == "train224" else None))


def window_diff(data, key: str, fn) -> tuple[float, str]:
    """Max |diff| of ``fn(jpeg, box, key)`` against big_vision over every recorded window of one file; a
    window where one side fails and the other does not (TF's "jpeg::Uncompress failed") counts as inf."""
    spec = decode_spec(data["spec"])
    jpeg = data["jpeg"].tobytes()
    worst, detail, n, verdicts, failed = 0.0, "", 0, [], 0
    for i, box in enumerate(spec["boxes"]):
        if f"out_{key}__w{i}" not in data and f"error_{key}__w{i}" not in data:
            continue
        n += 1
        tf_failed = f"error_{key}__w{i}" in data
        failed += tf_failed
        try:
            ours = fn(jpeg, box, key)
        except ValueError as e:     # tf_jpeg.JpegDecodeError / ImageDecodeError
            if not tf_failed:
                verdicts.append(f"{box}: we fail ({e}), big_vision decodes")
            continue
        if tf_failed:
            verdicts.append(f"{box}: we decode, big_vision fails")
            continue
        v, d = max_abs_diff(ours, data[f"out_{key}__w{i}"])
        if v > worst or not detail:
            worst, detail = max(worst, v), f"window {box}: {d}"
    if verdicts:
        return math.inf, f"{len(verdicts)} of {n} windows with another verdict than big_vision: " + "; ".join(verdicts[:3])
    if n == 0:
        return math.inf, f"no recorded {key} windows"
    return worst, f"{n} windows ({failed} rejected by big_vision and by us); worst {detail}"


def _window_check(store, rel, key, fn=window_decode):
    def compute():
        return window_diff(store.load(rel), key, fn)
    return compute


def _window_checks(store, rel: str, name: str, data) -> list[Check]:
    enc = name[len("windows_"):]
    out = []
    for key in WINDOW_PIPELINES:
        if not any(k.startswith((f"out_{key}__", f"error_{key}__")) for k in data):
            continue
        out.append(Check(NAME, f"train_window_{key}[{enc}]", "max |diff| over windows", 0.0,
                         _window_check(store, rel, key)))
        # decode-then-slice: wrong window edges on chroma-subsampled files, and the whole file's verdict
        # (a cut file fails everywhere) on the truncated ones
        # (not on 4:4:4 / grey / CMYK, where the slice is exact, nor on the cut progressive file, which TF
        # rejects whatever the window, as the whole-file decode does; nor on 4:1:1 and 4:4:0: libjpeg-turbo
        # upsamples 4:1:1 chroma by replication (its interpolating "fancy" upsampling covers h2v1, h2v2 and
        # h1v2 only) and 4:4:0 is subsampled across rows only, so no output pixel reads a column outside the
        # window: the slice is exact there too, as the recorded windows show)
        if enc not in ("444", "grey", "cmyk", "progressive_cut90", "411", "440"):
            out.append(Check(NAME, f"train_window_{key}[{enc}]:decode_then_slice", "max |diff| over windows", 0.0,
                             _window_check(store, rel, key, decode_then_slice), negative=True))
    return out


def checks(store, device: str = "cpu") -> list[Check]:
    """Every check: images (:func:`_image_checks`, ``device`` as there), then the negative controls and the
    JPEG-file checks."""
    out = _image_checks(store, device)
    fast = _has_fast_dct()
    for rel in store.files(NAME):
        data = store.load(rel)
        name = rel.rsplit("/", 1)[1][:-4]
        # Negative control for area: torchvision's antialiased bilinear (what one might use for "area").
        for key in ("resize_small_256_area", "resize_small_64_area"):
            if f"out_{key}" in data and name != "colour_patches_75x203":
                size = 256 if "256" in key else 64
                out.append(Check(NAME, f"{key}[{name}]:torchvision_resize_antialias", "max |diff|", 1.0,
                                 _compare(store, rel, key, lambda x, s=size: TF.resize(
                                     x, list(P.resize_small_size(*x.shape[-2:], s)), antialias=True)),
                                 negative=True))
        if "jpeg" not in data:
            continue
        if name.startswith("windows_"):
            out += _window_checks(store, rel, name, data)
            continue
        spec = decode_spec(data["spec"])
        for key in spec["jpeg_pipelines"]:
            if key != "decode_precise" and not fast:
                continue  # TF's default (fast-DCT) decode needs simplejpeg; see torch_impl.preprocess
            if key == "train_op":
                # big_vision's fused decode_and_crop_jpeg, now decoded the same way (only the window)
                out.append(Check(NAME, f"train_op[{name}]", "max |diff|", 0.0, _jpeg_compare(store, rel, key)))
                if name in TRAIN_OP_EDGE_CASES:
                    # decode-then-crop: the window's edge columns differ on these chroma-subsampled files
                    out.append(Check(NAME, f"train_op[{name}]:decode_then_crop", "max |diff|", 0.0,
                                     _jpeg_compare(store, rel, key, ours_key="train_decode_then_crop"),
                                     negative=True))
                continue
            out.append(Check(NAME, f"{key}[{name}]", "max |diff|", 0.0, _jpeg_compare(store, rel, key)))
        if "decode_default" in spec["jpeg_pipelines"] and not name.endswith("png_named_jpeg"):
            out.append(Check(NAME, f"decode_default[{name}]:accurate_dct", "max |diff|", 1.0,
                             _jpeg_compare(store, rel, "decode_default",
                                           lambda d: grids.to_hwc(P.decode_jpeg(d, precise=True))),
                             negative=True))
        if "eval" in spec["jpeg_pipelines"]:
            def tv_eval(d):
                x = P.decode_jpeg(d, precise=True)
                return grids.to_hwc(TF.center_crop(TF.resize(x, 256, antialias=True), [224, 224]))
            out.append(Check(NAME, f"eval[{name}]:torchvision_resize_center_crop", "max |diff|", 1.0,
                             _jpeg_compare(store, rel, "eval", tv_eval), negative=True))
    return out

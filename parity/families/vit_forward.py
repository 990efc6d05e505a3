"""Family `vit_forward`: torch_impl's ViT forward pass vs big_vision's, logits and every intermediate.

Reference (reference/generators/vit_forward.py):
* tiny models (width 32, 2 blocks, 2 heads, patch 8, 5 classes; and big_vision's "mu/8") in every pool
  type (gap, tok, map, 0, none), both position embeddings, rep_size, square and non-square images; flax
  init + perturbation, parameters recorded, every intermediate recorded in full;
* ViT-S/16 at 224 (the i1k config: gap, sincos2d, rep_size) with parameters filled from a numpy seed on
  both sides (nothing but the seed stored), on two real photos; outputs stored reduced (per-token norms +
  four whole tokens per intermediate, small outputs whole);
* a tiny model written as big_vision .npz checkpoint files, loaded with torch_impl.convert.

Bar: fp32 relative error (max |ours - bv| / max |bv|) <= 1e-5, separately for the logits and for EACH
intermediate ("stem", "with_posemb", "encoder/blockNN/{sa,+sa,mlp,+mlp}", "encoded", "head_input",
"pre_logits", ...), so a mismatch is located to a layer. Typical values are 1e-7..1e-6.

``parity check --device cuda`` runs our side of every check on the GPU (float32, TF32 off: the bar is the
float32 one), with the same fixtures and bars; case names then end in ``@cuda``.

Negative controls (must be rejected): a converter that forgets to transpose the q/k/v kernels (square,
so no shape error would catch it); exact-erf GELU (torch's nn.GELU() default) instead of flax's tanh
approximation; the sincos2d embedding with x and y swapped.
"""
from __future__ import annotations

import math
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from parity import photos
from parity.checks import Check, device_tag, max_rel_err
from parity.store import decode_spec, encode_spec
from torch_impl.model.convert import big_vision_shapes, load_big_vision_checkpoint, load_big_vision_params
from torch_impl.model import ViT, posemb_sincos_2d

NAME = "vit_forward"
BAR = 1e-5

TINY = {"variant": "mu/8", "width": 32, "depth": 2, "num_heads": 2, "mlp_dim": 64, "num_classes": 5,
        "head_zeroinit": False}
# case -> (model kwargs in big_vision's names, image (h, w))
RECORDED = {
    "tiny_gap_sincos_48x32": ({**TINY, "pool_type": "gap", "posemb": "sincos2d"}, (48, 32)),
    "tiny_tok_learn_rep_32x48": ({**TINY, "pool_type": "tok", "posemb": "learn", "rep_size": True}, (32, 48)),
    "tiny_map_learn": ({**TINY, "pool_type": "map", "posemb": "learn"}, (32, 32)),
    "tiny_0_sincos_rep16": ({**TINY, "pool_type": "0", "posemb": "sincos2d", "rep_size": 16}, (32, 32)),
    "tiny_none_learn": ({**TINY, "pool_type": "none", "posemb": "learn"}, (32, 32)),
    "mu8_gap_sincos": ({"variant": "mu/8", "num_classes": 3, "pool_type": "gap", "posemb": "sincos2d",
                        "head_zeroinit": False}, (32, 32)),
}
CHECKPOINT = {"tiny_checkpoint": ({**TINY, "num_classes": 10, "pool_type": "tok", "posemb": "learn"}, (32, 32))}
SYNTHETIC = {"S16_i1k_224": ({"variant": "S/16", "num_classes": 1000, "pool_type": "gap", "posemb": "sincos2d",
                             "rep_size": True}, (224, 224), ("astronaut", "coffee"), 0)}


# ---- shared with the reference generator (re-implemented; the checksums prove they agree) ------------
def synthetic_param(seed: int, name: str, shape) -> np.ndarray:
    """Same fill as reference/generators/vit_forward.synthetic_param (see there)."""
    shape = tuple(int(s) for s in shape)
    z = np.random.default_rng([seed, zlib.crc32(name.encode())]).standard_normal(shape)
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "scale":
        a = 1.0 + 0.1 * z
    elif leaf == "bias":
        a = 0.05 * z
    elif leaf == "kernel":
        qkv = name.endswith(("/query/kernel", "/key/kernel", "/value/kernel"))
        a = z / np.sqrt(shape[0] if qkv else int(np.prod(shape[:-1])))
    else:
        a = 0.5 * z
    return a.astype(np.float32)


def uint8_to_unit(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) * np.float32(2 / 255) - np.float32(1)


def reduce_output(a: np.ndarray) -> dict[str, np.ndarray]:
    a = np.asarray(a, np.float32)
    if a.ndim <= 2:
        return {"full": a}
    tokens = a.reshape(a.shape[0], -1, a.shape[-1])
    t = tokens.shape[1]
    picks = sorted({0, min(1, t - 1), t // 2, t - 1})
    return {"norm": np.sqrt((tokens.astype(np.float64) ** 2).sum(-1)), "tok": tokens[:, picks]}


# ---- requests ----------------------------------------------------------------------------------------
def _tiny_images(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(h * 1000 + w)
    photo_imgs = [uint8_to_unit(photos.photo(n, (h, w))) for n in ("astronaut", "chelsea")]
    noise = [np.clip(rng.standard_normal((h, w, 3)), -3, 3).astype(np.float32) for _ in range(2)]
    return np.stack(photo_imgs + noise)


def make_requests():
    reqs = {}
    for i, (case, (model, (h, w))) in enumerate({**RECORDED, **CHECKPOINT}.items()):
        kind = "checkpoint" if case in CHECKPOINT else "recorded"
        reqs[case] = {"images": _tiny_images(h, w), "spec": encode_spec(
            {"kind": kind, "model": model, "init_seed": i, "perturb_seed": 100 + i, "perturb": 0.1})}
    for case, (model, (h, w), names, seed) in SYNTHETIC.items():
        reqs[case] = {"images_uint8": np.stack([photos.photo(n, (h, w)) for n in names]),
                      "spec": encode_spec({"kind": "synthetic", "model": model, "fill_seed": seed})}
    return reqs


# ---- our side -------------------------------------------------------------------------------------------
def build_model(model_kwargs: dict, image_hw) -> ViT:
    kw = dict(model_kwargs)
    return ViT(kw.pop("num_classes", None), image_size=tuple(int(s) for s in image_hw),
               generator=torch.Generator().manual_seed(0), **kw)


def qkv_untransposed(params: dict) -> dict:
    """Negative control: what a converter that copies each q/k/v kernel onto Linear.weight WITHOUT the
    (in, out) -> (out, in) transpose loads. Expressed as the parameters that make our (correct) converter
    produce exactly that weight."""
    out = dict(params)
    for k, v in params.items():
        if k.endswith(("/query/kernel", "/key/kernel", "/value/kernel")):
            c = v.shape[0]
            out[k] = np.ascontiguousarray(v.reshape(c, -1).T.reshape(v.shape))
    return out


def gelu_erf(model: ViT) -> None:
    """Negative control: exact-erf GELU (torch's nn.GELU() default, torchvision's MLPBlock)."""
    for m in model.modules():
        if hasattr(m, "act") and isinstance(m.act, nn.GELU):
            m.act = nn.GELU()


def sincos_xy_swapped(model: ViT, h: int, w: int, device: torch.device = torch.device("cpu")) -> None:
    """Negative control: [sin y, cos y, sin x, cos x] instead of big_vision's x-first order."""
    pe = posemb_sincos_2d(h, w, model.width)[0]
    q = model.width // 4
    swapped = torch.cat([pe[:, 2 * q:], pe[:, :2 * q]], dim=1)[None]
    model._sincos_cache[(h, w, device, torch.float32)] = swapped.to(device)


def _forward(model: ViT, images: np.ndarray, device: torch.device, **kw):
    """Our forward in float32 on ``device`` (TF32 matmuls/convolutions off on CUDA: the bar is float32's)."""
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)
    model = model.to(device)
    with torch.no_grad():
        if device.type != "cuda":
            return _to_numpy(model(x, **kw))
        saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        try:
            return _to_numpy(model(x, **kw))
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _to_numpy(out):
    logits, inter = out
    return logits.float().cpu().numpy(), {k: v.float().cpu().numpy() for k, v in inter.items()}


_CACHE: dict = {}
_DATA: dict = {}


def _load(store, rel: str) -> dict:
    """store.load (sha256-verified) once per fixture and process: ~60 checks read the same S/16 file."""
    key = (id(store), str(store.root), rel)
    if key not in _DATA:
        if len(_DATA) > 16:
            _DATA.clear()
        _DATA[key] = store.load(rel)
    return _DATA[key]


def _ours(store, rel: str, control: str | None = None, device: str = "cpu"):
    """(logits, out) of our model on a case's images, cached per (fixture, control, device)."""
    key = (id(store), str(store.root), rel, control, device)
    dev = torch.empty(0, device=device).device   # "cuda" -> cuda:0, as x.device in the model's caches
    if key in _CACHE:
        return _CACHE[key]
    data = _load(store, rel)
    spec = decode_spec(data["spec"])
    if spec["kind"] == "synthetic":
        images = uint8_to_unit(data["images_uint8"])
    else:
        images = data["images"]
    h, w = images.shape[1:3]
    model = build_model(spec["model"], (h, w)).eval()
    if spec["kind"] == "synthetic":
        params = {k: synthetic_param(spec["fill_seed"], k, s) for k, s in big_vision_shapes(model).items()}
    else:
        params = {k[len("param/"):]: v for k, v in data.items() if k.startswith("param/")}
    if control == "qkv_untransposed":
        params = qkv_untransposed(params)
    load_big_vision_params(model, params)
    if control == "gelu_erf":
        gelu_erf(model)
    if control == "sincos_xy_swapped":
        sincos_xy_swapped(model, h // model.patch_size[0], w // model.patch_size[1], dev)
    logits, out = _forward(model, images, dev, outputs_2d=True)
    result = (logits, out, params)
    if len(_CACHE) > 8:
        _CACHE.clear()
    _CACHE[key] = result
    return result


def _ref_outputs(data) -> dict[str, dict[str, np.ndarray]]:
    """{intermediate name: {"ref" | "norm" | "tok" | "full": array}} from a fixture."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for k, v in data.items():
        prefix, _, name = k.partition("/")
        if prefix in ("ref", "norm", "tok", "full"):
            out.setdefault(name, {})[prefix] = v
    return out


def _compare_one(ours: np.ndarray, ref: dict[str, np.ndarray]):
    if "ref" in ref:
        return max_rel_err(ours, ref["ref"])
    red = reduce_output(ours)
    worst, details = 0.0, []
    for kind, r in ref.items():
        if kind not in red:
            return math.inf, f"ours has no {kind!r} reduction (shape {ours.shape})"
        e, d = max_rel_err(red[kind], r)
        worst = max(worst, e)
        details.append(f"{kind}: {e:.3g} ({d})")
    return worst, "; ".join(details)


def _intermediate(store, rel, name, control=None, device="cpu"):
    def compute():
        ref = _ref_outputs(_load(store, rel))[name]
        _, out, _ = _ours(store, rel, control, device)
        if name not in out:
            return math.inf, f"our model returns no intermediate {name!r}"
        return _compare_one(out[name], ref)
    return compute


def _logits(store, rel, control=None, device="cpu"):
    def compute():
        data = _load(store, rel)
        logits, _, _ = _ours(store, rel, control, device)
        return max_rel_err(logits, data["logits"])
    return compute


def _names(store, rel, device="cpu"):
    def compute():
        ref = set(_ref_outputs(_load(store, rel)))
        _, out, _ = _ours(store, rel, device=device)
        diff = sorted(ref ^ set(out))
        return float(len(diff)), (f"only in big_vision: {sorted(ref - set(out))}; only ours: {sorted(set(out) - ref)}"
                                  if diff else f"{len(ref)} intermediates, same names")
    return compute


def _fill(store, rel):
    def compute():
        data = _load(store, rel)
        _, _, params = _ours(store, rel)
        names = [str(n) for n in data["fill_names"]]
        if sorted(params) != names:
            return math.inf, f"parameter names differ: {sorted(set(params) ^ set(names))[:10]}"
        ours = np.array([float(params[n].astype(np.float64).sum()) for n in names])
        bad = [n for n, a, b in zip(names, ours, data["fill_checksum"]) if a != b]
        return float(len(bad)), (f"synthetic fill differs from the reference's for {bad[:5]}: keep "
                                 f"synthetic_param identical on both sides" if bad else f"{len(names)} parameters identical")
    return compute


def _checkpoint(store, rel, stem, device="cpu"):
    def compute():
        data = _load(store, rel)
        spec = decode_spec(data["spec"])
        images = data["images"]
        model = build_model(spec["model"], images.shape[1:3]).eval()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{stem}.npz"
            path.write_bytes(data[f"ckpt_bytes/{stem}"].tobytes())
            load_big_vision_checkpoint(model, path)
        logits, _ = _forward(model, images, torch.device(device))
        return max_rel_err(logits, data[f"ckpt_logits/{stem}"])
    return compute


def checks(store, device: str = "cpu") -> list[Check]:
    """Every check; ``device`` runs our side there (e.g. "cuda"; the case names then end in "@cuda")."""
    at = device_tag(device)
    out = []
    for rel in store.files(NAME):
        case = rel.rsplit("/", 1)[1][:-4]
        data = _load(store, rel)
        spec = decode_spec(data["spec"])
        if spec["kind"] == "checkpoint":
            for k in sorted(data):
                if k.startswith("ckpt_bytes/"):
                    stem = k.split("/", 1)[1]
                    out.append(Check(NAME, f"{case}:{stem}.npz:logits{at}", "max rel err", BAR,
                                     _checkpoint(store, rel, stem, device)))
            continue
        slow = spec["kind"] == "synthetic"
        if spec["kind"] == "synthetic":
            out.append(Check(NAME, f"{case}:fill", "params differing", 0.0, _fill(store, rel), slow=slow))
        out.append(Check(NAME, f"{case}:intermediate_names{at}", "names differing", 0.0, _names(store, rel, device),
                         slow=slow))
        out.append(Check(NAME, f"{case}:logits{at}", "max rel err", BAR, _logits(store, rel, device=device), slow=slow))
        for name in sorted(set(_ref_outputs(data)) - {"logits"}):  # logits: checked above
            out.append(Check(NAME, f"{case}:{name}{at}", "max rel err", BAR,
                             _intermediate(store, rel, name, device=device), slow=slow))
        # negative controls
        if case in ("tiny_gap_sincos_48x32", "S16_i1k_224"):
            for control in ("qkv_untransposed", "gelu_erf"):
                out.append(Check(NAME, f"{case}:{control}{at}", "max rel err (logits)", BAR,
                                 _logits(store, rel, control, device), negative=True, slow=slow))
        if case == "tiny_gap_sincos_48x32":
            out.append(Check(NAME, f"{case}:sincos_xy_swapped{at}", "max rel err (with_posemb)", BAR,
                             _intermediate(store, rel, "with_posemb", "sincos_xy_swapped", device), negative=True))
    return out

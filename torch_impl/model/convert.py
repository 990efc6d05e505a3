"""big_vision ViT parameters <-> torch_impl.model.ViT, by big_vision's flattened '/'-joined names.

Naming and layouts (big_vision name -> torch parameter; flax layout -> torch layout):

  embedding/kernel                  (ph, pw, 3, C)  HWIO   -> embedding.weight (C, 3, ph, pw) OIHW
  embedding/bias                    (C,)                    -> embedding.bias
  pos_embedding                     (1, h*w, C)             -> pos_embedding          (posemb="learn")
  cls                               (1, 1, C)               -> cls                    (pool_type="tok")
  Transformer/encoderblock_{i}/LayerNorm_0/{scale,bias}     -> encoder.blocks.{i}.norm1.{weight,bias}
  .../MultiHeadDotProductAttention_0/{query,key,value}/kernel (C, heads, hd) -> attn.{q,k,v}.weight (heads*hd, C)
  .../MultiHeadDotProductAttention_0/{query,key,value}/bias   (heads, hd)    -> attn.{q,k,v}.bias (heads*hd,)
  .../MultiHeadDotProductAttention_0/out/kernel (heads, hd, C)  -> attn.out.weight (C, heads*hd)
  .../MultiHeadDotProductAttention_0/out/bias   (C,)            -> attn.out.bias
  Transformer/encoderblock_{i}/LayerNorm_1/{scale,bias}     -> encoder.blocks.{i}.norm2.{weight,bias}
  Transformer/encoderblock_{i}/MlpBlock_0/Dense_{0,1}/kernel (in, out) -> mlp.fc{1,2}.weight (out, in)
  Transformer/encoder_norm/{scale,bias}                     -> encoder.norm.{weight,bias}
  MAPHead_0/probe, MAPHead_0/MultiHeadDotProductAttention_0/..., MAPHead_0/LayerNorm_0/...,
  MAPHead_0/MlpBlock_0/...                                  -> map_head.{probe,attn,norm,mlp}...
  pre_logits/{kernel,bias}, head/{kernel,bias}  Dense (in, out) -> Linear weight (out, in)

A big_vision checkpoint .npz (as ``big_vision.utils.load_checkpoint_np`` reads it) holds one array per
leaf under these names, possibly below a "params/" prefix (checkpoints with optimizer state) or
"opt/target/" (old flax-optimizer checkpoints); bfloat16 arrays are stored as 2-byte void. Older layouts
(position embedding inside "Transformer", [cls] folded into the position embedding, scanned encoder blocks
"Transformer/encoderblock/..." stacked along a leading depth axis) are normalised the way big_vision's
``vit.load`` does before loading.
"""
from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from torch_impl.model.vit import Attention, MlpBlock, ViT


class ConversionError(ValueError):
    """Parameter names or shapes do not match between a big_vision tree and the torch model."""


@dataclass(frozen=True)
class _Entry:
    """One big_vision leaf: the torch tensor it lives in, and the layout maps between the two."""
    tensor: torch.Tensor
    bv_shape: tuple[int, ...]
    to_bv: Callable[[np.ndarray], np.ndarray]      # torch layout -> big_vision layout
    to_torch: Callable[[np.ndarray], np.ndarray]   # big_vision layout -> torch layout


def _same(t: torch.Tensor) -> _Entry:
    return _Entry(t, tuple(t.shape), lambda a: a, lambda a: a)


def _dense(lin: nn.Linear, prefix: str) -> dict[str, _Entry]:
    """flax Dense: kernel (in, out) vs torch Linear weight (out, in)."""
    w = lin.weight
    return {f"{prefix}/kernel": _Entry(w, (w.shape[1], w.shape[0]), lambda a: a.T, lambda a: a.T),
            f"{prefix}/bias": _same(lin.bias)}


def _layernorm(ln: nn.LayerNorm, prefix: str) -> dict[str, _Entry]:
    return {f"{prefix}/scale": _same(ln.weight), f"{prefix}/bias": _same(ln.bias)}


def _attention(attn: Attention, prefix: str) -> dict[str, _Entry]:
    """flax MultiHeadDotProductAttention's DenseGeneral kernels: q/k/v (C, heads, hd), out (heads, hd, C)."""
    c, h, d = attn.width, attn.num_heads, attn.head_dim
    out = {}
    for name in ("query", "key", "value"):
        lin = getattr(attn, name)
        out[f"{prefix}/{name}/kernel"] = _Entry(
            lin.weight, (c, h, d),
            lambda a, c=c, h=h, d=d: a.T.reshape(c, h, d),
            lambda a, c=c, h=h, d=d: a.reshape(c, h * d).T)
        out[f"{prefix}/{name}/bias"] = _Entry(
            lin.bias, (h, d), lambda a, h=h, d=d: a.reshape(h, d), lambda a, h=h, d=d: a.reshape(h * d))
    out[f"{prefix}/out/kernel"] = _Entry(
        attn.out.weight, (h, d, c),
        lambda a, c=c, h=h, d=d: a.T.reshape(h, d, c),
        lambda a, c=c, h=h, d=d: a.reshape(h * d, c).T)
    out[f"{prefix}/out/bias"] = _same(attn.out.bias)
    return out


def _mlp(mlp: MlpBlock, prefix: str) -> dict[str, _Entry]:
    return {**_dense(mlp.fc1, f"{prefix}/Dense_0"), **_dense(mlp.fc2, f"{prefix}/Dense_1")}


def _entries(model: ViT) -> dict[str, _Entry]:
    if not isinstance(model, ViT):
        raise TypeError(f"expected a torch_impl.model.ViT, got {type(model).__name__}")
    e: dict[str, _Entry] = {}
    k = model.embedding.weight  # (C, 3, ph, pw) OIHW <-> (ph, pw, 3, C) HWIO
    e["embedding/kernel"] = _Entry(k, (k.shape[2], k.shape[3], k.shape[1], k.shape[0]),
                                   lambda a: a.transpose(2, 3, 1, 0), lambda a: a.transpose(3, 2, 0, 1))
    e["embedding/bias"] = _same(model.embedding.bias)
    if model.pos_embedding is not None:
        e["pos_embedding"] = _same(model.pos_embedding)
    if model.cls is not None:
        e["cls"] = _same(model.cls)
    for i, block in enumerate(model.encoder.blocks):
        p = f"Transformer/encoderblock_{i}"
        e.update(_layernorm(block.norm1, f"{p}/LayerNorm_0"))
        e.update(_attention(block.attn, f"{p}/MultiHeadDotProductAttention_0"))
        e.update(_layernorm(block.norm2, f"{p}/LayerNorm_1"))
        e.update(_mlp(block.mlp, f"{p}/MlpBlock_0"))
    e.update(_layernorm(model.encoder.norm, "Transformer/encoder_norm"))
    if model.map_head is not None:
        e["MAPHead_0/probe"] = _same(model.map_head.probe)
        e.update(_attention(model.map_head.attn, "MAPHead_0/MultiHeadDotProductAttention_0"))
        e.update(_layernorm(model.map_head.norm, "MAPHead_0/LayerNorm_0"))
        e.update(_mlp(model.map_head.mlp, "MAPHead_0/MlpBlock_0"))
    if model.pre_logits is not None:
        e.update(_dense(model.pre_logits, "pre_logits"))
    if model.head is not None:
        e.update(_dense(model.head, "head"))
    return e


def big_vision_shapes(model: ViT) -> dict[str, tuple[int, ...]]:
    """{big_vision name: big_vision (flax) shape} of this model's parameters, sorted by name."""
    return {k: v.bv_shape for k, v in sorted(_entries(model).items())}


# ---- names: torch parameter name -> big_vision name --------------------------------------------------
_NORM_LAYERS = tuple(getattr(nn, n) for n in ("LayerNorm", "GroupNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
                                              "SyncBatchNorm", "InstanceNorm1d", "InstanceNorm2d", "RMSNorm")
                     if hasattr(nn, n))


def generic_big_vision_name(torch_name: str, module: nn.Module | None = None) -> str:
    """big_vision-style name of a parameter of an arbitrary module: '/'-joined path, with the weight of a
    Linear/Conv called "kernel" and the weight of a norm layer called "scale" (flax's names)."""
    parts = torch_name.split(".")
    if parts[-1] == "weight":
        is_norm = module is not None and isinstance(module, _NORM_LAYERS)
        parts[-1] = "scale" if is_norm else "kernel"
    return "/".join(parts)


def big_vision_names(model: nn.Module) -> dict[str, str]:
    """torch parameter name -> big_vision parameter name.

    For :class:`torch_impl.model.ViT` the names come from this module's table (the one that loads big_vision
    checkpoints); for any other module a generic flax-like name is derived (weight decay masks and the
    optimizer's clipping order use them).
    """
    if isinstance(model, ViT):
        by_id = {id(t): name for name, t in big_vision_tensors(model).items()}
        out = {}
        for tname, p in model.named_parameters():
            if id(p) not in by_id:
                raise ValueError(f"parameter {tname} has no big_vision name in torch_impl.model.convert's table")
            out[tname] = by_id[id(p)]
        return out
    modules = dict(model.named_modules())
    out = {}
    for tname, _ in model.named_parameters():
        owner = modules.get(tname.rsplit(".", 1)[0] if "." in tname else "")
        out[tname] = generic_big_vision_name(tname, owner)
    return out


def big_vision_tensors(model: ViT) -> dict[str, torch.Tensor]:
    """{big_vision name: the model's own tensor (torch layout, no copy)}, sorted by name."""
    return {k: v.tensor for k, v in sorted(_entries(model).items())}


def big_vision_params(model: ViT) -> dict[str, np.ndarray]:
    """The model's parameters as big_vision's flat tree: {name: float32 array in flax layout}."""
    out = {}
    for name, ent in sorted(_entries(model).items()):
        a = ent.tensor.detach().to("cpu", torch.float32).numpy()
        # Always a copy: for CPU float32 tensors whose layout needs no transpose, .numpy() shares memory
        # with the live parameter, and a snapshot must not move as training goes on.
        out[name] = np.array(ent.to_bv(a), copy=True, order="C")
    return out


def _list(names, limit=40) -> str:
    names = sorted(names)
    more = f"\n    ... and {len(names) - limit} more" if len(names) > limit else ""
    return "".join(f"\n    {n}" for n in names[:limit]) + more


def load_big_vision_params(model: ViT, params: Mapping[str, np.ndarray]) -> None:
    """Copy big_vision parameters (flat '/'-joined names, flax layouts) into ``model``, in place.

    Every name the model needs must be present with its big_vision shape, and no other name may be
    present; otherwise a :class:`ConversionError` lists the missing, unexpected and mis-shaped names
    (nothing is copied then). bfloat16 / float64 values are converted to the model's dtype.
    """
    entries = _entries(model)
    missing = set(entries) - set(params)
    extra = set(params) - set(entries)
    bad_shape = {n: (tuple(np.shape(params[n])), entries[n].bv_shape)
                 for n in set(entries) & set(params) if tuple(np.shape(params[n])) != entries[n].bv_shape}
    if missing or extra or bad_shape:
        msg = [f"big_vision parameters do not fit this {model.extra_repr()} model:"]
        if missing:
            msg.append(f"  missing (the model needs them, the parameters lack them):{_list(missing)}")
        if extra:
            msg.append(f"  unexpected (in the parameters, not in this model):{_list(extra)}")
        if bad_shape:
            msg.append("  wrong shape (given -> expected in big_vision layout):" + "".join(
                f"\n    {n}: {g} -> {w}" for n, (g, w) in sorted(bad_shape.items())))
        msg.append("  Check the model's variant / pool_type / posemb / rep_size / num_classes / image_size "
                   "against the checkpoint's config.")
        raise ConversionError("\n".join(msg))
    with torch.no_grad():
        for name, ent in entries.items():
            a = _to_float(np.asarray(params[name]), name)
            t = torch.from_numpy(np.ascontiguousarray(ent.to_torch(a)))
            ent.tensor.copy_(t.to(ent.tensor.dtype))


def _to_float(a: np.ndarray, name: str) -> np.ndarray:
    if a.dtype.kind == "V" and a.itemsize == 2:  # numpy writes bfloat16 as 2-byte void
        a = bfloat16_to_float32(a)
    elif a.dtype.name == "bfloat16":  # ml_dtypes bfloat16, if the caller has it
        a = bfloat16_to_float32(a.view(np.uint16))
    if a.dtype.kind != "f":
        raise ConversionError(f"big_vision parameter {name}: dtype {a.dtype} is not a float type")
    return a.astype(np.float32, copy=False)


def bfloat16_to_float32(a: np.ndarray) -> np.ndarray:
    """bfloat16 bits (2-byte void or uint16) -> float32 (exact: bf16 is the top half of fp32)."""
    bits = np.ascontiguousarray(a).view(np.uint16).astype(np.uint32) << 16
    return bits.view(np.float32)


# ---- big_vision checkpoint files ----------------------------------------------------------------
def read_big_vision_npz(path: str | os.PathLike, key: str | None = None, *,
                        normalize: bool = True) -> dict[str, np.ndarray]:
    """Read a big_vision .npz checkpoint to its flat parameter dict (names without "params/").

    ``key`` (or a "file.npz:img" suffix, as big_vision's ``utils.load_params`` accepts) selects a
    sub-model, e.g. "img" for the image tower of a SigLIP checkpoint. ``normalize``: apply
    :func:`normalize_legacy_layout`.
    """
    path = os.fspath(path)
    if key is None and not os.path.exists(path):
        m = re.match(r"^(.*\.npz):([\w/]+)$", path)
        if m:
            path, key = m.groups()
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: big_vision checkpoint not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            flat = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:   # not an .npz / truncated / pickled
        raise ConversionError(f"{path}: not a readable .npz checkpoint ({type(e).__name__}: {e})") from None
    # big_vision.utils.load_params: "params/..." (optax-state checkpoints), "opt/target/..." (old flax
    # optimizer checkpoints), else the file holds the parameters directly.
    for prefix in ("params/", "opt/target/"):
        if any(k.startswith(prefix) for k in flat):
            flat = {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
            break
    if key:
        sub = key.strip("/") + "/"
        picked = {k[len(sub):]: v for k, v in flat.items() if k.startswith(sub)}
        if not picked:
            tops = sorted({k.split("/", 1)[0] for k in flat})
            raise ConversionError(f"{path}: no parameters under {key!r}; top-level names are {tops}")
        flat = picked
    return normalize_legacy_layout(flat) if normalize else flat


def normalize_legacy_layout(params: Mapping[str, np.ndarray], *,
                            posemb_tokens: int | None = None) -> dict[str, np.ndarray]:
    """Rewrite older big_vision / vision_transformer ViT layouts to the current names (as vit.load does):
    posemb under "Transformer/posembed_input" or "Transformer", a [cls] entry folded into the position
    embedding, MAP-head leaves inlined at the top level, scanned blocks ("Transformer/encoderblock/...").

    A position embedding of g*g + 1 tokens is taken as the old "[cls] first" layout, as big_vision does;
    ``posemb_tokens`` (the number the target model expects) disambiguates grids like 2x5 = 3*3 + 1."""
    p = dict(params)
    for old in ("Transformer/posembed_input/pos_embedding", "Transformer/pos_embedding"):
        if old in p:
            p["pos_embedding"] = p.pop(old)
    if "pos_embedding" in p:
        pe = np.asarray(p["pos_embedding"])
        n = pe.shape[1]
        g = int(np.sqrt(n))
        folded = g * g + 1 == n and (posemb_tokens is None or posemb_tokens == n - 1)
        if folded:  # old order: [cls] concatenated first, then posemb added to all tokens
            p["pos_embedding"] = pe[:, 1:]
            if "cls" in p:
                p["cls"] = _to_float(np.asarray(p["cls"]), "cls") + _to_float(pe[:, :1], "pos_embedding")
    if "probe" in p:
        for k in [k for k in p if k == "probe" or k.split("/", 1)[0] in
                  ("MultiHeadDotProductAttention_0", "LayerNorm_0", "MlpBlock_0")]:
            p[f"MAPHead_0/{k}"] = p.pop(k)
    scanned = [k for k in p if k.startswith("Transformer/encoderblock/")]
    if scanned:
        depth = int(np.shape(p[scanned[0]])[0])
        for k in scanned:
            v = p.pop(k)
            rest = k[len("Transformer/encoderblock/"):]
            for i in range(depth):
                p[f"Transformer/encoderblock_{i}/{rest}"] = np.asarray(v)[i]
    return p


def load_big_vision_checkpoint(model: ViT, path: str | os.PathLike, *, key: str | None = None) -> None:
    """Load a big_vision .npz checkpoint file into ``model`` (same checks as :func:`load_big_vision_params`)."""
    params = read_big_vision_npz(path, key, normalize=False)
    want = model.pos_embedding.shape[1] if model.pos_embedding is not None else None
    params = normalize_legacy_layout(params, posemb_tokens=want)
    try:
        load_big_vision_params(model, params)
    except ConversionError as e:
        raise ConversionError(f"{os.fspath(path)}: {e}") from None


__all__ = ["ConversionError", "big_vision_names", "generic_big_vision_name", "big_vision_shapes", "big_vision_tensors",
           "big_vision_params", "load_big_vision_params", "load_big_vision_checkpoint", "read_big_vision_npz",
           "normalize_legacy_layout", "bfloat16_to_float32"]

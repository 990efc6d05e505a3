"""Fixtures for `vit_forward`: big_vision's ViT forward pass (logits + every intermediate in its `out`).

Three kinds of request (``spec["kind"]``):

* "recorded": a small model initialised by flax (``model.init`` with ``PRNGKey(init_seed)``), then every
  parameter perturbed by ``perturb * N(0, 1)`` from ``numpy.random.default_rng(perturb_seed)`` so that
  LayerNorm scales, biases and the head are all non-trivial. The parameters are returned (``param/<name>``)
  and recorded, with every intermediate in full (``ref/<name>``).
* "synthetic": a large model whose parameters are NOT stored: every leaf is filled by
  :func:`synthetic_param` (seed, name, shape), which the parity side re-implements; a checksum per
  parameter is returned so a drift between the two fills is reported as such. The outputs are stored
  reduced: per-token L2 norms (``norm/<name>``), a few whole tokens (``tok/<name>``), small outputs in
  full (``full/<name>``).
* "checkpoint": a "recorded" model written to .npz checkpoint files the way big_vision reads them
  (``utils.load_checkpoint_np``: '/'-joined leaf names; "params/..." next to optimizer state "opt/...";
  bfloat16 leaves stored by numpy as 2-byte void), read back with big_vision's ``utils.load_params`` and
  run. The file bytes are returned (``ckpt_bytes/<file>``) with the logits big_vision computes from them.

Images are NHWC float32; for "synthetic" they come as uint8 and are mapped to [-1, 1] by
``u8.astype(float32) * float32(2 / 255) - float32(1)`` (the same numpy expression on the parity side).
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zlib

import numpy as np


def synthetic_param(seed: int, name: str, shape) -> np.ndarray:
    """Deterministic big_vision-layout fill (re-implemented, identically, in parity/families/vit_forward.py).

    scale: 1 + 0.1 z; bias: 0.05 z; kernel: z / sqrt(fan_in) (fan_in = first axis for attention q/k/v
    kernels (C, heads, hd), product of all but the last axis otherwise); anything else (position
    embedding, cls, probe): 0.5 z. z ~ N(0, 1) from default_rng([seed, crc32(name)]), float64 -> float32.
    """
    shape = tuple(int(s) for s in shape)
    z = np.random.default_rng([seed, zlib.crc32(name.encode())]).standard_normal(shape)
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "scale":
        a = 1.0 + 0.1 * z
    elif leaf == "bias":
        a = 0.05 * z
    elif leaf == "kernel":
        qkv = name.endswith(("/query/kernel", "/key/kernel", "/value/kernel"))
        fan_in = shape[0] if qkv else int(np.prod(shape[:-1]))
        a = z / np.sqrt(fan_in)
    else:
        a = 0.5 * z
    return a.astype(np.float32)


def uint8_to_unit(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) * np.float32(2 / 255) - np.float32(1)


def reduce_output(a: np.ndarray) -> dict[str, np.ndarray]:
    """Token-shaped (N, ..., C) -> per-token L2 norm (float64) and a few whole tokens; (N, C) kept whole."""
    a = np.asarray(a, np.float32)
    if a.ndim <= 2:
        return {"full": a}
    tokens = a.reshape(a.shape[0], -1, a.shape[-1])
    t = tokens.shape[1]
    picks = sorted({0, min(1, t - 1), t // 2, t - 1})
    return {"norm": np.sqrt((tokens.astype(np.float64) ** 2).sum(-1)), "tok": tokens[:, picks]}


def _flat(u, tree) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in u.tree_flatten_with_names(tree)[0]}


def _recorded_params(model, u, images, spec):
    import jax
    params = model.init(jax.random.PRNGKey(spec["init_seed"]), images)["params"]
    flat = _flat(u, params)
    rng = np.random.default_rng(spec["perturb_seed"])
    flat = {k: (v.astype(np.float64) + spec["perturb"] * rng.standard_normal(v.shape)).astype(np.float32)
            for k, v in sorted(flat.items())}
    return flat


def _apply(model, u, flat_params, images):
    import jax
    params = u.recover_tree(list(flat_params), list(flat_params.values()))
    with jax.default_matmul_precision("float32"):
        logits, out = model.apply({"params": params}, images)
    return np.asarray(logits), _flat(u, out)


def _checkpoint_files(u, flat_params) -> dict[str, bytes]:
    """Two .npz files in big_vision's checkpoint format: float32 params next to an optax Adam state
    (bfloat16 first moment), and a params-only file with bfloat16 leaves (no prefix)."""
    import jax.numpy as jnp
    import optax
    params = u.recover_tree(list(flat_params), [jnp.asarray(v) for v in flat_params.values()])
    opt = optax.scale_by_adam(mu_dtype=jnp.bfloat16).init(params)
    files = {}
    for fname, tree in (("train_f32.npz", {"params": params, "opt": opt}),
                        ("params_bf16.npz", {k: v.astype(jnp.bfloat16) for k, v in _flat(u, params).items()})):
        arrays = {k: np.asarray(v) for k, v in u.tree_flatten_with_names(tree)[0]}
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        files[fname] = buf.getvalue()
    return files


def generate(name, request, bv):
    spec = json.loads(str(request["spec"][()]))
    vit = bv.module("models.vit")
    u = bv.module("utils")
    model = vit.Model(**spec["model"])
    kind = spec["kind"]
    result = {}
    if kind == "synthetic":
        import jax
        images = uint8_to_unit(request["images_uint8"])
        shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), images))["params"]
        names = sorted(k for k, _ in u.tree_flatten_with_names(shapes)[0])
        shape_of = dict(u.tree_flatten_with_names(shapes)[0])
        flat = {k: synthetic_param(spec["fill_seed"], k, shape_of[k].shape) for k in names}
        result["fill_names"] = np.array(names)
        result["fill_checksum"] = np.array([float(flat[k].astype(np.float64).sum()) for k in names])
        logits, out = _apply(model, u, flat, images)
        for key, val in out.items():
            for kind_, arr in reduce_output(val).items():
                result[f"{kind_}/{key}"] = arr
        result["logits"] = logits
        return result

    images = request["images"]
    flat = _recorded_params(model, u, images, spec)
    result.update({f"param/{k}": v for k, v in flat.items()})
    if kind == "recorded":
        logits, out = _apply(model, u, flat, images)
        result["logits"] = logits
        result.update({f"ref/{k}": v.astype(np.float32) for k, v in out.items()})
        return result
    if kind == "checkpoint":
        for fname, data in _checkpoint_files(u, flat).items():
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, fname)
                with open(path, "wb") as f:
                    f.write(data)
                loaded = _flat(u, u.load_params(path))  # big_vision's own reader
            logits, _ = _apply(model, u, loaded, images)
            stem = fname[:-4]
            result[f"ckpt_bytes/{stem}"] = np.frombuffer(data, np.uint8)
            result[f"ckpt_logits/{stem}"] = logits
        return result
    raise ValueError(f"vit_forward: unknown request kind {kind!r} in {name}")

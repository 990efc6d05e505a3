"""Family `vit_init`: torch_impl's ViT initialisation vs big_vision's, in distribution.

Reference: big_vision's ``models.vit.Model.init`` (flax, jax.random keys) over several seeds; for every
parameter the mean, std, min and max per seed (see reference/generators/vit_init.py). Ours: the same
statistics of ``ViT(..., generator=torch.Generator().manual_seed(s))`` over as many seeds.

Test (per model config): for every parameter p and statistic j, Welch's t
    t = (mean_seeds(ours) - mean_seeds(bv)) / sqrt(var_seeds(ours)/n_ours + var_seeds(bv)/n_bv),
using the seeds' own spread as the standard error. Constant statistics (LayerNorm ones, zero biases, the
zero head) have no spread on either side and must be equal exactly. Bar: the largest |t| must stay below
k = t_{2n-2}^{-1}(1 - alpha / (2 N)) with alpha = 0.01 and N the number of non-constant tests: under "same
distribution" both sides' variances are equal, so Welch's df is the pooled 2n-2, and Bonferroni over N
tests bounds the chance of a false alarm anywhere in the model by 1% (conservative: the tests are
correlated). k is about 6-7 for 8 seeds and about 9 for 5 seeds; the negative controls land at |t| in
the tens to thousands. Also checked: the parameter names, big_vision shapes and the parameter count.

Negative controls (each must be rejected): q/k/v/out drawn as torch's ``nn.MultiheadAttention`` does
(combined in_proj xavier, kaiming-uniform out_proj); MLP Dense layers with ``nn.Linear``'s default init;
the patch embedding with ``trunc_normal_`` lacking flax's variance correction (std 0.88x); the MAP probe
with torch's ``xavier_uniform_`` (torch's fans for a (1, 1, d) tensor are d and d, flax's are 1 and d).
"""
from __future__ import annotations

import json
import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from parity.checks import Check
from parity.store import decode_spec, encode_spec
from torch_impl.model.convert import big_vision_shapes, big_vision_tensors
from torch_impl.model import ViT

NAME = "vit_init"
ALPHA = 0.01  # family-wise false-alarm rate of one config's positive check
STATS = ("mean", "std", "min", "max")

# case -> (big_vision Model kwargs, image size, seeds). S/16 as the i1k baseline config builds it
# (big_vision/configs/vit_s16_i1k.py: gap, sincos2d, rep_size=True, zero head); S/16 with the MAP head,
# learned posemb and a lecun-initialised head; B/16 with [cls] token and learned posemb.
CASES = {
    "S16_i1k": ({"num_classes": 1000, "variant": "S/16", "pool_type": "gap", "posemb": "sincos2d",
                 "rep_size": True, "head_zeroinit": True}, (224, 224), list(range(8))),
    "S16_map_learn": ({"num_classes": 1000, "variant": "S/16", "pool_type": "map", "posemb": "learn",
                       "rep_size": False, "head_zeroinit": False}, (224, 224), list(range(8))),
    "B16_tok_learn": ({"num_classes": 1000, "variant": "B/16", "pool_type": "tok", "posemb": "learn",
                       "rep_size": False, "head_zeroinit": True}, (224, 224), list(range(5))),
}
OUR_SEED_OFFSET = 1000  # our seeds are 1000, 1001, ...: independent draws, not a copy of jax's streams


def make_requests():
    return {case: {"spec": encode_spec({"model": model, "image_size": list(size), "seeds": seeds})}
            for case, (model, size, seeds) in CASES.items()}


def build_model(model_kwargs: dict, image_size, generator: torch.Generator | None = None) -> ViT:
    kw = dict(model_kwargs)
    return ViT(kw.pop("num_classes"), image_size=tuple(image_size), generator=generator, **kw)


def tensor_stats(t: torch.Tensor) -> list[float]:
    """mean, population std, min, max. float32 reductions (torch sums pairwise): their rounding error
    (~1e-7 relative) is far below the seed-to-seed spread, and it is 3x faster than a float64 copy."""
    a = t.detach().float().reshape(-1)
    mean = a.sum() / a.numel()
    c = a - mean  # two-pass (centred) variance: no cancellation for the LayerNorm ones
    std = torch.sqrt(torch.dot(c, c) / a.numel())
    lo, hi = torch.aminmax(a)
    return [mean.item(), std.item(), lo.item(), hi.item()]


# ---- known-wrong initialisations (negative controls): each overwrites some parameters in place and
# returns the big_vision names it touched ---------------------------------------------------------------
def _attention_modules(model: ViT):
    prefixes = [(f"Transformer/encoderblock_{i}/MultiHeadDotProductAttention_0", b.attn)
                for i, b in enumerate(model.encoder.blocks)]
    if model.map_head is not None:
        prefixes.append(("MAPHead_0/MultiHeadDotProductAttention_0", model.map_head.attn))
    return prefixes


@torch.no_grad()
def torch_default_mha(model: ViT, seed: int) -> list[str]:
    """q/k/v/out as torch's nn.MultiheadAttention initialises them (its own _reset_parameters)."""
    touched = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for prefix, attn in _attention_modules(model):
            mha = nn.MultiheadAttention(attn.width, attn.num_heads)
            q, k, v = mha.in_proj_weight.chunk(3)
            qb, kb, vb = mha.in_proj_bias.chunk(3)
            for lin, w, b in ((attn.query, q, qb), (attn.key, k, kb), (attn.value, v, vb),
                              (attn.out, mha.out_proj.weight, mha.out_proj.bias)):
                lin.weight.copy_(w)
                lin.bias.copy_(b)
            touched += [f"{prefix}/{n}/{leaf}" for n in ("query", "key", "value", "out") for leaf in ("kernel", "bias")]
    return touched


@torch.no_grad()
def torch_default_linear_mlp(model: ViT, seed: int) -> list[str]:
    """MLP Dense layers with nn.Linear's default reset (kaiming-uniform weight and bias)."""
    touched = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, block in enumerate(model.encoder.blocks):
            for j, lin in enumerate((block.mlp.fc1, block.mlp.fc2)):
                lin.reset_parameters()
                touched += [f"Transformer/encoderblock_{i}/MlpBlock_0/Dense_{j}/{leaf}" for leaf in ("kernel", "bias")]
    return touched


@torch.no_grad()
def trunc_normal_no_correction(model: ViT, seed: int) -> list[str]:
    """Patch embedding with torch's trunc_normal_(std=1/sqrt(fan_in), a=-2 std, b=2 std): no /0.8796."""
    g = torch.Generator().manual_seed(seed)
    w = model.embedding.weight
    std = 1.0 / math.sqrt(w.shape[1] * w.shape[2] * w.shape[3])
    torch.nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std, generator=g)
    return ["embedding/kernel"]


@torch.no_grad()
def probe_torch_xavier(model: ViT, seed: int) -> list[str]:
    """MAP probe with torch's xavier_uniform_ on the (1, 1, d) tensor (fans d, d instead of flax's 1, d)."""
    g = torch.Generator().manual_seed(seed)
    torch.nn.init.xavier_uniform_(model.map_head.probe, generator=g)
    return ["MAPHead_0/probe"]


NEGATIVES = {
    "S16_i1k": (torch_default_mha, torch_default_linear_mlp, trunc_normal_no_correction),
    "S16_map_learn": (torch_default_mha, probe_torch_xavier),
    "B16_tok_learn": (trunc_normal_no_correction,),
}


@lru_cache(maxsize=4)
def _our_stats(case: str, model_json: str, image_size: tuple, n_seeds: int):
    """Our statistics per seed: {"ours": (n, P, 4), "<negative>": (n, P, 4)}, plus names and shapes.

    One model per seed; each negative control then overwrites only the parameters it concerns, so its
    statistics are the positive ones with those rows replaced (cheap, and identical for the rest).
    """
    model_kwargs = json.loads(model_json)
    negatives = NEGATIVES.get(case, ())
    names, shapes = None, None
    out = {"ours": []} | {fn.__name__: [] for fn in negatives}
    for s in range(n_seeds):
        seed = OUR_SEED_OFFSET + s
        model = build_model(model_kwargs, image_size, torch.Generator().manual_seed(seed))
        tensors = big_vision_tensors(model)
        if names is None:
            names, shapes = list(tensors), big_vision_shapes(model)
        row = np.array([tensor_stats(tensors[n]) for n in names])
        out["ours"].append(row)
        for fn in negatives:
            neg = row.copy()
            for n in fn(model, seed):
                neg[names.index(n)] = tensor_stats(tensors[n])
            out[fn.__name__].append(neg)
        del model, tensors
    return names, shapes, {k: np.stack(v) for k, v in out.items()}


def welch_max_t(ours: np.ndarray, ref: np.ndarray, names: list[str]) -> tuple[float, int, str]:
    """Largest |Welch t| over (parameter, statistic), the number of non-constant tests, and a detail line."""
    n_o, n_r = ours.shape[0], ref.shape[0]
    diff = ours.mean(0) - ref.mean(0)
    se = np.sqrt(ours.var(0, ddof=1) / n_o + ref.var(0, ddof=1) / n_r)
    const = se == 0
    tol = 1e-12 * np.maximum(1.0, np.abs(ref.mean(0)))
    t = np.where(const, np.where(np.abs(diff) <= tol, 0.0, np.inf), np.abs(diff) / np.where(const, 1.0, se))
    i, j = np.unravel_index(int(np.argmax(t)), t.shape)
    detail = (f"worst: {names[i]} {STATS[j]}: ours {ours[:, i, j].mean():.6g} vs big_vision {ref[:, i, j].mean():.6g} "
              f"(se {se[i, j]:.3g}, {n_o} vs {n_r} seeds)")
    return float(t[i, j]), int((~const).sum()), detail


def bonferroni_k(n_tests: int, n_seeds: int, alpha: float = ALPHA) -> float:
    from scipy import stats
    return float(stats.t.ppf(1.0 - alpha / (2 * max(n_tests, 1)), 2 * (n_seeds - 1)))


def _case_data(store, rel):
    data = store.load(rel)
    spec = decode_spec(data["spec"])
    return data, spec


def checks(store) -> list[Check]:
    out = []
    for rel in store.files(NAME):
        case = rel.rsplit("/", 1)[1][:-4]
        data, spec = _case_data(store, rel)
        ref = data["stats"]
        n = ref.shape[0]
        names_ref = [str(x) for x in data["names"]]
        # bar: computed from the recorded reference (number of non-constant tests, seeds)
        n_tests = int((ref.std(0) > 0).sum())
        k = bonferroni_k(n_tests, n)
        key = (case, json.dumps(spec["model"], sort_keys=True), tuple(spec["image_size"]), n)

        def ours(which, key=key):
            names, shapes, st = _our_stats(*key)
            return names, shapes, st[which]

        def stats_check(which, names_ref=names_ref, ref=ref, ours=ours):
            def compute():
                names, _, st = ours(which)
                if names != names_ref:
                    return math.inf, f"parameter names differ: {sorted(set(names) ^ set(names_ref))[:10]}"
                t, n_t, detail = welch_max_t(st, ref, names)
                return t, f"{n_t} non-constant tests; {detail}"
            return compute

        def shapes_check(data=data, ours=ours):
            def compute():
                ref_shapes = {k: tuple(v) for k, v in json.loads(str(data["shapes"][()])).items()}
                _, shapes, _ = ours("ours")
                bad = sorted(set(ref_shapes) ^ set(shapes))
                bad += sorted(k for k in set(ref_shapes) & set(shapes) if ref_shapes[k] != tuple(shapes[k]))
                count = sum(int(np.prod(s)) for s in shapes.values())
                ref_count = int(data["param_count"])
                detail = f"parameters: ours {count:,} vs big_vision {ref_count:,}"
                if bad:
                    detail += f"; names/shapes differing: {bad[:10]}"
                return float(len(bad) + abs(count - ref_count)), detail
            return compute

        out.append(Check(NAME, f"{case}:names_shapes_count", "mismatches", 0.0, shapes_check()))
        out.append(Check(NAME, f"{case}:stats", "max |Welch t|", k, stats_check("ours"), slow=case.startswith("B")))
        for fn in NEGATIVES.get(case, ()):
            out.append(Check(NAME, f"{case}:{fn.__name__}", "max |Welch t|", k, stats_check(fn.__name__),
                             negative=True, slow=case.startswith("B")))
    return out

"""Where the parameter norm moves: per-group norms over the first updates, torch loop vs big_vision's train.py.

A diagnostic behind the dynamics check's parameter-norm statistics (docs/dynamics.md, "Open finding"):
the global ``l2_params`` mixes groups that move in opposite directions during the warmup (weight decay
shrinks the kernels, Adam grows the zero-initialised head and the LayerNorm scales), so a difference in
the global norm says nothing about where it comes from. Both sides record, after each of the first N
updates, the squared L2 norm of each group below and the sum of (LayerNorm scale - 1), for K seeds each;
``compare_groups`` puts the two seed distributions side by side (Welch t per group and update).

* big_vision side: ``python -m reference.dynamics.groups`` (big_vision's own train.py, one process per
  seed, run exactly as the reference with ``optax.apply_updates`` wrapped from outside big_vision).
* torch side: :func:`run_torch_seed` (the loop users run, a step post-hook, as parity.dynamics.torch_side).

Groups are defined on big_vision's parameter names (the torch side maps its names with
torch_impl.model.convert.big_vision_names), so both sides group by one function. This module imports
neither torch nor TF at import time: the reference process uses :func:`group_of` too.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

GROUPS = ("head", "layernorm_scale", "bias", "embedding_kernel", "kernel")
LN_SUM = "layernorm_scale_minus_1_sum"


def group_of(name: str) -> str:
    """The group of a big_vision parameter name ("Transformer/encoderblock_0/LayerNorm_0/scale", ...)."""
    parts = name.split("/")
    if parts[0] == "head":
        return "head"
    if parts[-1] == "scale":
        return "layernorm_scale"
    if parts[-1] == "bias":
        return "bias"
    if parts[0] == "embedding":
        return "embedding_kernel"
    return "kernel"


def run_torch_seed(recipe: dict, data_dir, seed: int, steps: int) -> dict[str, np.ndarray]:
    """``steps`` updates of one seed of the recipe with the torch loop; per update, the squared norm of each
    group (float64 sums) and LN_SUM, after the update."""
    import tempfile

    import torch

    from parity.dynamics.torch_config import torch_config
    from torch_impl.data.datasets import folder_splits
    from torch_impl.model.convert import big_vision_names
    from torch_impl.train import loop

    cfg = torch_config(recipe, seed)
    rec: dict[str, list[float]] = {g: [] for g in GROUPS + (LN_SUM,)}
    orig = loop.build_optimizer

    def build_optimizer(cfg_, model, total):
        opt, sched = orig(cfg_, model, total)
        named = [(group_of(big_vision_names(model)[n]), p) for n, p in model.named_parameters()]

        def post(optimizer, args, kwargs):
            with torch.no_grad():
                sq = dict.fromkeys(GROUPS, 0.0)
                ln = 0.0
                for g, p in named:
                    sq[g] += float(p.double().pow(2).sum())
                    if g == "layernorm_scale":
                        ln += float((p.double() - 1).sum())
            for g in GROUPS:
                rec[g].append(sq[g])
            rec[LN_SUM].append(ln)
        opt.register_step_post_hook(post)
        return opt, sched

    loop.build_optimizer = build_optimizer
    try:
        with tempfile.TemporaryDirectory() as d:
            loop.train(cfg, folder_splits(cfg, data_dir), d, stop_after_step=steps, echo=lambda *a, **k: None)
    finally:
        loop.build_optimizer = orig
    return {k: np.asarray(v, np.float64) for k, v in rec.items()}


def load_runs(folder: str | Path) -> list[dict[str, np.ndarray]]:
    """Every ``seed_<s>.npz`` (one run's per-group curves) in ``folder``, sorted by seed."""
    files = sorted(Path(folder).glob("seed_*.npz"), key=lambda p: int(p.stem.split("_")[1]))
    out = []
    for f in files:
        with np.load(f) as z:
            out.append({k: z[k] for k in z.files})
    return out


def compare_groups(ours: list[dict], ref: list[dict], at_steps) -> list[dict]:
    """Per group (and LN_SUM, and the global norm's change), at each update in ``at_steps``: the change since
    update 1 on each side (mean, SD over seeds) and the Welch t of the difference."""
    if len(ours) < 2 or len(ref) < 2:
        raise ValueError(f"compare_groups needs >= 2 runs per side (got {len(ours)} torch, {len(ref)} big_vision)")
    n = min(min(len(r[GROUPS[0]]) for r in ours), min(len(r[GROUPS[0]]) for r in ref))
    rows = []

    def quantity(run, name, i):
        if name == "norm_change":
            tot = sum(run[g] for g in GROUPS)
            return math.sqrt(tot[i]) - math.sqrt(tot[0])
        if name == LN_SUM:
            return float(run[name][i])
        return float(run[name][i] - run[name][0])

    for step in at_steps:
        if not 1 <= step <= n:
            raise ValueError(f"update {step} not recorded on both sides (1..{n})")
        for name in GROUPS + (LN_SUM, "norm_change"):
            a = np.array([quantity(r, name, step - 1) for r in ours])
            b = np.array([quantity(r, name, step - 1) for r in ref])
            se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
            rows.append({"step": int(step), "quantity": name, "torch_mean": float(a.mean()),
                         "torch_sd": float(a.std(ddof=1)), "ref_mean": float(b.mean()),
                         "ref_sd": float(b.std(ddof=1)), "t": float((a.mean() - b.mean()) / se) if se else 0.0})
    return rows


def describe(rows: list[dict], n_ours: int, n_ref: int) -> str:
    lines = [f"per-group change since update 1 (squared norms; {LN_SUM}: sum of scale - 1; norm_change: "
             f"global L2 norm), {n_ours} torch vs {n_ref} big_vision seeds; t = Welch t of the mean difference"]
    for r in rows:
        lines.append(f"  update {r['step']:3d}  {r['quantity']:28s} torch {r['torch_mean']:+.4f} +- {r['torch_sd']:.4f}"
                     f"  big_vision {r['ref_mean']:+.4f} +- {r['ref_sd']:.4f}  t {r['t']:+.2f}")
    return "\n".join(lines)

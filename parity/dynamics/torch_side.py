"""The torch side of the dynamics check: the training loop users run, K seeds, cached per seed.

``run_seed`` trains one seed of the recipe with ``torch_impl.loop.train`` (the loop behind `parity train`)
on the generated ImageFolder files and returns its per-step curves (see parity.dynamics.curves). A variant
(parity.dynamics.controls) injects one porting mistake for the duration of the run, from outside the
product code.

Cache: each run writes ``<workdir>/<variant>/seed_<s>_steps_<n>/run.npz`` with a key (recipe digest,
variant, steps, the data's listing, the source of torch_impl and of this package); a rerun with the same key
reads the file instead of training. Change any of them and the run is redone.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from parity.dynamics import recipe_digest
from parity.dynamics.controls import Variant, get
from parity.dynamics.curves import Curves, CurvesError, stack_runs

ROOT = Path(__file__).resolve().parents[2]


def source_digest() -> str:
    """sha256 over the torch side's code: torch_impl/**/*.py and parity/dynamics/{controls,torch_side,
    torch_config}.py (a changed loop, model or pipeline invalidates cached runs)."""
    h = hashlib.sha256()
    files = sorted((ROOT / "torch_impl").rglob("*.py")) + [
        Path(__file__).with_name(n) for n in ("controls.py", "torch_side.py", "torch_config.py")]
    for p in files:
        h.update(p.relative_to(ROOT).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def data_digest(data_dir: Path) -> str:
    """sha256 over the relative paths and sizes of the data files (cheap; data.verify checks the bytes)."""
    h = hashlib.sha256()
    for p in sorted(Path(data_dir).rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(data_dir).as_posix()}:{p.stat().st_size}\n".encode())
    return h.hexdigest()


def _loop_module():
    from torch_impl.train import loop as mod
    for name in ("build_model", "build_optimizer"):
        if not callable(getattr(mod, name, None)):
            raise RuntimeError(f"{mod.__name__}.{name} not found: the dynamics controls replace it for one run; "
                               "the training loop's API changed (see parity/dynamics/torch_side.py)")
    return mod


@contextlib.contextmanager
def injected(variant: Variant, recorder: dict):
    """Replace the loop's build_model / build_optimizer for one run: apply the variant's model and optimizer
    changes, and record per update the lr used, the raw-gradient global norm (before clipping, big_vision's
    ``l2_grads``) and the parameter norm after the update (``l2_params``), via optimizer step hooks."""
    import torch
    mod = _loop_module()
    orig_model, orig_opt = mod.build_model, mod.build_optimizer

    def build_model(cfg):
        m = orig_model(cfg)
        if variant.model is not None:
            variant.model(m)
        return m

    def build_optimizer(cfg, model, total_steps):
        opt, sched = (variant.optimizer or orig_opt)(cfg, model, total_steps)
        params = [p for p in model.parameters() if p.requires_grad]

        def pre(optimizer, args, kwargs):
            with torch.no_grad():
                sq = sum(float(p.grad.double().pow(2).sum()) for p in params if p.grad is not None)
            recorder["grad_norm"].append(math.sqrt(sq))
            recorder["lr"].append(float(optimizer.param_groups[0]["lr"]))

        def post(optimizer, args, kwargs):
            with torch.no_grad():
                recorder["param_norm"].append(math.sqrt(sum(float(p.double().pow(2).sum()) for p in params)))
        opt.register_step_pre_hook(pre)
        opt.register_step_post_hook(post)
        return opt, sched

    mod.build_model, mod.build_optimizer = build_model, build_optimizer
    try:
        yield
    finally:
        mod.build_model, mod.build_optimizer = orig_model, orig_opt


def run_key(recipe: dict, variant: str, seed: int, steps: int, data_dir: Path) -> dict:
    return {"recipe": recipe_digest(recipe), "variant": variant, "seed": int(seed), "steps": int(steps),
            "data": data_digest(data_dir), "source": source_digest()}


def run_seed(recipe: dict, data_dir: str | Path, workdir: str | Path, seed: int, *, variant: str = "correct",
             steps: int | None = None, num_workers: int = 1, fresh: bool = False, echo=None) -> dict:
    """Train one seed (or read its cached result). ``steps`` < recipe total stops the run early with the
    recipe's schedule unchanged (the first ``steps`` updates are those of a full run)."""
    from parity.dynamics.torch_config import torch_config
    from torch_impl.config import apply_overrides
    from torch_impl.data.datasets import folder_splits
    from torch_impl.train.loop import train
    from torch_impl.train.metrics import read_jsonl

    echo = echo or (lambda *a: print(*a, file=sys.stderr, flush=True))
    total = int(recipe["total_steps"])
    steps = total if steps is None else int(steps)
    if not 1 <= steps <= total:
        raise ValueError(f"steps={steps}: must be in [1, {total}] (the recipe's total_steps)")
    data_dir = Path(data_dir)
    v = get(variant)
    run_dir = Path(workdir) / variant / f"seed_{seed}_steps_{steps}"
    out = run_dir / "run.npz"
    key = run_key(recipe, variant, seed, steps, data_dir)
    if not fresh:
        hit = _cached(Path(workdir) / variant, seed, steps, key)
        if hit is not None:
            return hit
    if run_dir.exists():
        # a stale cache entry (other recipe, data or code) or an interrupted run: ours, start it over
        import shutil
        shutil.rmtree(run_dir)
    cfg = torch_config(recipe, seed, num_workers=num_workers)
    if v.config:
        apply_overrides(cfg, dict(v.config))
    splits = folder_splits(cfg, data_dir)
    if v.train_pp is not None:
        splits.train.transform = v.train_pp(cfg)
    rec = {"grad_norm": [], "lr": [], "param_norm": []}
    t0 = time.perf_counter()
    with injected(v, rec):
        result = train(cfg, splits, run_dir, stop_after_step=steps if steps < total else None,
                       metadata={"dynamics_variant": variant}, echo=lambda *a, **k: None)
    secs = time.perf_counter() - t0
    s = np.arange(1, steps + 1)
    loss = np.array([result.losses[int(i)] for i in s], np.float64)
    evals = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r.get("split") == "val"]
    ev_steps = np.array([r["step"] for r in evals], np.int64)
    if len(rec["lr"]) != steps:
        raise RuntimeError(f"{variant} seed {seed}: recorded {len(rec['lr'])} optimizer steps for {steps} updates")
    run = {"seed": int(seed), "steps": s, "train_loss": loss, "lr": np.array(rec["lr"]),
           "grad_norm": np.array(rec["grad_norm"]), "param_norm": np.array(rec["param_norm"]),
           "eval_steps": ev_steps, "eval_acc": np.array([r["prec@1"] for r in evals], np.float64),
           "eval_loss": np.array([r["loss"] for r in evals], np.float64), "seconds": secs}
    np.savez(out, key=np.array(json.dumps(key)), **{k: np.asarray(v) for k, v in run.items()})
    echo(f"dynamics: torch {variant} seed {seed}: {steps} steps in {secs:.0f} s, final loss {loss[-1]:.4f}"
         + (f", val acc {run['eval_acc'][-1]:.3f}" if len(evals) else ""))
    return run


def _cached(base: Path, seed: int, steps: int, key: dict) -> dict | None:
    """A cached run with this key, or the first ``steps`` updates of a longer cached run of the same seed
    (same recipe, so the same schedule: its first updates ARE the shorter run; evals after ``steps`` are
    dropped)."""
    for d in sorted(base.glob(f"seed_{seed}_steps_*"), key=lambda p: int(p.name.rsplit("_", 1)[1])):
        n = int(d.name.rsplit("_", 1)[1])
        if n < steps or not (d / "run.npz").exists():
            continue
        try:
            with np.load(d / "run.npz", allow_pickle=False) as z:
                cached = {k: z[k] for k in z.files}
            if json.loads(str(cached["key"][()])) != {**key, "steps": n}:
                continue
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # unreadable cache: the run is redone
            continue
        run = _from_npz(cached)
        if n > steps:
            e = run["eval_steps"] <= steps
            run.update({k: run[k][:steps] for k in ("steps", "train_loss", "lr", "grad_norm", "param_norm")})
            run.update({k: run[k][e] for k in ("eval_steps", "eval_acc", "eval_loss")})
        return run
    return None


def _from_npz(z: dict) -> dict:
    run = {k: z[k] for k in z if k != "key"}
    run["seed"] = int(run["seed"])
    run["seconds"] = float(run.get("seconds", 0.0))
    return run


def run_torch(recipe: dict, data_dir: str | Path, workdir: str | Path, seeds, *, variant: str = "correct",
              steps: int | None = None, num_workers: int = 1, fresh: bool = False, echo=None,
              progress: bool = True) -> Curves:
    """``run_seed`` for every seed (cached), stacked into Curves."""
    from tqdm import tqdm
    runs = []
    seeds = [int(s) for s in seeds]
    for s in tqdm(seeds, desc=f"torch {variant}", unit="seed", disable=not progress, leave=False):
        runs.append(run_seed(recipe, data_dir, workdir, s, variant=variant, steps=steps, num_workers=num_workers,
                             fresh=fresh, echo=echo))
    if not runs:
        raise CurvesError(f"torch {variant}: no seeds given")
    return stack_runs(runs, framework="torch", variant=variant,
                      meta={"recipe": recipe_digest(recipe), "seconds": [r["seconds"] for r in runs],
                            "machine": machine()})


def machine() -> str:
    import platform
    model = platform.processor() or platform.machine()
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os
    return f"{model}, {os.cpu_count()} cores"

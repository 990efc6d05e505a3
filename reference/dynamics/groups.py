"""Per-group parameter norms of big_vision's train.py over the first updates (the diagnostic of
parity/dynamics/groups.py; the torch side is there).

``python -m reference.dynamics.groups --data DIR --out DIR --seeds 0-15 --steps 30``

Each seed runs train.py exactly as ``python -m reference.dynamics`` does (one process, launch.prepare's
pinned seeds and oneDNN off, the recipe's whole schedule), with ``optax.apply_updates`` wrapped from outside
big_vision: after each update a ``jax.debug.callback`` receives the squared L2 norm of each group of
parity.dynamics.groups.GROUPS (named by big_vision's parameter paths) and the sum of (LayerNorm scale - 1).
The process ends after ``--steps`` updates, writing ``<out>/seed_<s>.npz``; finished seeds are skipped.
The extra callback changes XLA's fusion, so a run's numbers are not bit-identical to the recorded
reference's (the same distribution). Nothing here imports torch.
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np

from parity.dynamics.groups import GROUPS, LN_SUM, group_of


def _child(seed: int, config: str, workdir: str, steps: int, out: str) -> None:
    from reference.dynamics import launch
    launch.prepare(seed)
    import jax
    import optax

    rows: list[np.ndarray] = []
    names: list[str] = []

    def record(leaves):
        # float64 sums on the host, as the torch side: float32 sums of ~5e5 squares would be off by ~1e-7
        # relative, 1% of the first update's weight-decay change of the kernels' squared norm
        sums = dict.fromkeys(GROUPS + (LN_SUM,), 0.0)
        for name, p in zip(names, leaves):
            p64 = np.asarray(p, np.float64)
            g = group_of(name)
            sums[g] += float(np.sum(p64 * p64))
            if g == "layernorm_scale":
                sums[LN_SUM] += float(np.sum(p64 - 1.0))
        rows.append(np.array([sums[g] for g in GROUPS + (LN_SUM,)]))
        if len(rows) >= steps:
            arr = np.stack(rows)
            tmp = out + ".tmp.npz"
            np.savez(tmp, **{g: arr[:, i] for i, g in enumerate(GROUPS + (LN_SUM,))})
            os.replace(tmp, out)
            os._exit(0)     # the first `steps` updates are all this diagnostic needs

    apply_updates = optax.apply_updates

    def wrapped(params, updates):
        new = apply_updates(params, updates)
        flat = jax.tree_util.tree_flatten_with_path(new)[0]
        if not names:
            names.extend("/".join(str(getattr(k, "key", k)) for k in path) for path, _ in flat)
        jax.debug.callback(record, [p for _, p in flat])
        return new

    optax.apply_updates = wrapped
    sys.argv = ["big_vision/train.py", f"--config={config}", f"--workdir={workdir}", "--logtostderr", "--verbosity=0"]
    runpy.run_module("big_vision.train", run_name="__main__", alter_sys=True)
    raise RuntimeError(f"train.py ended before {steps} updates were recorded ({len(rows)})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reference.dynamics.groups", description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the generated data folder (train/, val/)")
    ap.add_argument("--out", required=True, help="folder for seed_<s>.npz (and per-seed work folders)")
    ap.add_argument("--seeds", default="0-7")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--recipe", default=None)
    ap.add_argument("--child", nargs=4, metavar=("SEED", "CONFIG", "WORKDIR", "NPZ"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        seed, config, workdir, npz = args.child
        _child(int(seed), config, workdir, args.steps, npz)
        return 0

    from reference.dynamics import config as bvcfg
    from reference.dynamics import run
    recipe = run.recipe_with_big_vision(args.recipe, "reference.dynamics.groups")
    if recipe is None:
        return 2
    if not 1 <= args.steps <= int(recipe["total_steps"]):
        print(f"reference.dynamics.groups: --steps {args.steps} outside 1..{recipe['total_steps']}", file=sys.stderr)
        return 2
    data, out = Path(args.data).resolve(), Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        _, n_train = run.prepare_jsonl(data, out)
    except FileNotFoundError as e:
        print(f"reference.dynamics.groups: {e}", file=sys.stderr)
        return 2
    here = Path(__file__).resolve().parent
    for seed in run.parse_seeds(args.seeds):
        npz = out / f"seed_{seed}.npz"
        if npz.exists():
            continue
        wd = out / "seeds" / f"seed{seed}"
        wd.mkdir(parents=True, exist_ok=True)
        cfg = bvcfg.translate(recipe, seed=seed, train_jsonl=str(out / "jsonl" / "train.jsonl"),
                              val_jsonl=str(out / "jsonl" / "val.jsonl"), data_root=str(data), n_train=n_train)
        (wd / "bv_config.json").write_text(json.dumps(cfg, indent=1))
        bv = wd / "bv"
        if bv.exists():     # an interrupted run: train.py would resume from its checkpoint
            for p in sorted(bv.rglob("*"), reverse=True):
                p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
        cmd = [sys.executable, "-m", "reference.dynamics.groups", "--data", str(data), "--out", str(out),
               "--steps", str(args.steps), "--child", str(seed), f"{here / 'bv_config.py'}:{wd / 'bv_config.json'}",
               str(bv), str(npz)]
        with open(wd / "train.log", "w") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=run.env_for_seed(1), cwd=str(run.REPO))
        if rc or not npz.exists():
            print(f"reference.dynamics.groups: seed {seed} failed (exit {rc}); see {wd / 'train.log'}", file=sys.stderr)
            return 1
        print(f"reference.dynamics.groups: seed {seed}: {args.steps} updates -> {npz}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`parity dynamics`: training-dynamics parity, torch loop vs big_vision's train.py (K seeds each).

  parity dynamics data --out DIR                      generate the 10-class JPEG data set (sha256-verified)
  parity dynamics run-torch [--variant V] [--k K] [--steps N] --workdir W   torch runs, cached per seed
  parity dynamics check [--variant V ...] [--k K] [--steps N] --workdir W [--report DIR]
                                                      runs what is missing, compares, prints the verdict
  parity dynamics report --workdir W --out DIR        the same comparison from the cached runs only
  parity dynamics groups [--k K] [--steps N] --workdir W
                                                      where the parameter norm moves: per-group norms over the
                                                      first N updates, both frameworks (needs BIG_VISION_DIR)

The reference curves come from fixtures/dynamics/reference.npz (written by `python -m reference.dynamics`,
which runs big_vision's train.py) or --reference FILE. Exit status of check/report: 0 when the correct
recipe is equivalent and the required controls (augmentation, init) are rejected, 1 otherwise, 2 on a usage
or input error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _seeds_args(p):
    p.add_argument("--k", type=int, default=None,
                   help="torch seeds for the correct recipe (default: as many as the reference has)")
    p.add_argument("--steps", type=int, default=None,
                   help="updates per torch run (default: the recipe's total; fewer = early-steps comparison only)")
    p.add_argument("--control-k", type=int, default=None,
                   help="seeds per negative control (default: min(--k, 8))")
    p.add_argument("--control-steps", type=int, default=None, help="updates per control run (default: --steps)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--recipe", default=None, help="recipe JSON (default: parity/dynamics/recipe.json)")
    common.add_argument("--data", default=None,
                        help="the generated data folder (default: $PARITY_DYNAMICS_DATA or ~/.cache/vit-parity/...)")
    common.add_argument("--workdir", default="runs/dynamics", help="torch runs are cached here (per variant/seed)")

    p = sub.add_parser("data", parents=[common], help="generate and verify the data set")
    p.add_argument("--out", default=None, help="output folder (default: --data / the cache folder)")

    from parity.dynamics.controls import VARIANTS
    p = sub.add_parser("run-torch", parents=[common], help="torch runs of one variant (cached per seed)")
    p.add_argument("--variant", default="correct", choices=list(VARIANTS))
    _seeds_args(p)
    p.add_argument("--fresh", action="store_true", help="retrain even if a cached run matches")
    p.add_argument("--num-workers", type=int, default=1, help="DataLoader workers per run")

    for name, help_ in (("check", "run what is missing, compare with the reference, print the verdict"),
                        ("report", "compare the cached runs only (no training) and write the report")):
        p = sub.add_parser(name, parents=[common], help=help_)
        p.add_argument("--variant", action="append", choices=list(VARIANTS), default=None,
                       help="variants to compare (repeatable; default: correct and every control)")
        _seeds_args(p)
        p.add_argument("--reference", default=None, help="reference.npz (default: the fixture store's)")
        p.add_argument("--fixtures", default=None, help="fixture store (default: the repo's)")
        p.add_argument("--report" if name == "check" else "--out", dest="report", default=None,
                       required=name == "report", help="write dynamics_report.{json,txt} and PNG overlays here")
        if name == "check":
            p.add_argument("--fresh", action="store_true", help="retrain even if cached runs match")
            p.add_argument("--num-workers", type=int, default=1, help="DataLoader workers per run")

    p = sub.add_parser("groups", parents=[common],
                       help="per-group parameter norms over the first updates, torch vs big_vision (diagnostic)")
    p.add_argument("--k", type=int, default=16, help="seeds per side (default 16)")
    p.add_argument("--steps", type=int, default=30, help="updates per run (default 30)")
    p.add_argument("--at", default="10,20,30", help="updates to compare (comma-separated)")
    p.add_argument("--fresh", action="store_true", help="rerun the torch seeds even if recorded")


def _groups(recipe: dict, args) -> int:
    """torch runs here, big_vision's in `python -m reference.dynamics.groups` (its own process), then the table."""
    import os
    import subprocess

    import numpy as np

    from parity.dynamics import check as C
    from parity.dynamics import groups as G
    from parity.preflight import check_big_vision_dir
    check_big_vision_dir()
    at = [int(x) for x in args.at.split(",") if x.strip()]
    if not at or max(at) > args.steps or min(at) < 1:
        return _err(f"--at {args.at!r}: updates between 1 and --steps {args.steps}")
    data = C.ensure_data(recipe, args.data)
    root = Path(args.workdir) / "groups"
    tdir, rdir = root / "torch", root / "big_vision"
    tdir.mkdir(parents=True, exist_ok=True)
    for seed in range(args.k):
        f = tdir / f"seed_{seed}.npz"
        if args.fresh or not f.exists():
            np.savez(f, **G.run_torch_seed(recipe, data, seed, args.steps))
            print(f"parity dynamics groups: torch seed {seed} -> {f}", file=sys.stderr)
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    cmd = [sys.executable, "-m", "reference.dynamics.groups", "--data", str(data), "--out", str(rdir),
           "--seeds", f"0-{args.k - 1}", "--steps", str(args.steps)] + (["--recipe", args.recipe] if args.recipe else [])
    if subprocess.call(cmd, env=env, cwd=str(repo)):
        return _err(f"`{' '.join(cmd[1:])}` failed (its message is above)")
    ours, ref = G.load_runs(tdir), G.load_runs(rdir)
    print(G.describe(G.compare_groups(ours, ref, at), len(ours), len(ref)))
    return 0


def _err(msg: str) -> int:
    print(f"parity dynamics: {msg}", file=sys.stderr)
    return 2


def main(args) -> int:
    from parity.dynamics import check as C
    from parity.dynamics.curves import CurvesError
    from parity.dynamics.stats import StatsError
    from parity.preflight import UsageError
    try:
        recipe = C.recipe_or_error(args.recipe)
        if args.action == "data":
            out = C.ensure_data(recipe, args.out or args.data)
            print(f"parity dynamics: data set ready and verified at {out}")
            return 0
        if args.action == "groups":
            return _groups(recipe, args)
        if args.action == "run-torch":
            from parity.dynamics.torch_side import run_torch
            data = C.ensure_data(recipe, args.data)
            k = args.k or C.load_reference().k
            if args.variant != "correct" and not args.k:
                k = min(k, C.DEFAULT_CONTROL_K)
            curves = run_torch(recipe, data, args.workdir, range(k), variant=args.variant, steps=args.steps,
                               num_workers=args.num_workers, fresh=args.fresh, progress=sys.stderr.isatty())
            print(f"parity dynamics: {curves.k} torch runs of {args.variant} ({curves.last_step} steps) in "
                  f"{Path(args.workdir) / args.variant}")
            return 0
        if args.report and args.action == "check":
            from parity.preflight import check_writable_dir
            check_writable_dir(Path(args.report), "--report")
        ref = C.load_reference(args.reference, store_root=args.fixtures)
        from parity.dynamics.controls import CONTROLS
        variants = tuple(args.variant or ("correct",) + CONTROLS)
        outcome = C.run_check(recipe=recipe, reference=ref, data_dir=args.data, workdir=args.workdir,
                              variants=variants, k=args.k, steps=args.steps, control_k=args.control_k,
                              control_steps=args.control_steps, train=args.action == "check",
                              num_workers=getattr(args, "num_workers", 1), fresh=getattr(args, "fresh", False),
                              progress=sys.stderr.isatty())
    except (C.DynamicsError, CurvesError, StatsError, UsageError, ValueError) as e:
        return _err(str(e))
    print(outcome.describe())
    if args.report:
        for p in C.write_report(outcome, args.report):
            print(f"parity dynamics: wrote {p}", file=sys.stderr)
    return 0 if outcome.ok or "correct" not in outcome.comparisons and all(
        v["rejected"] for v in outcome.control_verdicts().values() if v["required"]) else 1

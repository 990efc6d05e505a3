"""`parity train`: run the fast parity gate, then train (torch_impl.loop).

    parity train --config vit_s16_i1k --data synthetic                 # CPU demo: a tiny ViT, 200 steps
    parity train --config vit_s16_i1k --data /data/imagenet --workdir runs/s16   # ImageFolder train/ val/
    torchrun --nproc_per_node 8 -m parity.cli train --config vit_s16_i1k --data /data/imagenet --workdir runs/s16
    parity train ... --resume                                          # continue from workdir's LAST checkpoint
    parity train ... --set lr=0.003 --set input.batch_size=4096        # or big_vision style --config.lr=0.003
    parity train --config vit_s16_i1k --print-config                   # the resolved config, then exit

The gate: before training, the recorded-fixture parity checks (the non-slow checks of every family; for the
synthetic demo the DEMO_GATE families; `--gate-family F` to choose) must all pass, or the run refuses to
start and prints the failing rows. `--skip-parity` starts anyway,
prints a loud warning and records it in the run's metadata.json.

Before the gate, everything that can be checked without training is checked, in seconds: the config, the
device, the --workdir (writable; holding a run needs --resume or --restart), the --data tree (class folders,
num_classes, empty folders) and the schedule against the run length. Each mistake is one line naming the
field or path and the fix, exit code 2.

Exit codes: 0 done; 1 the gate refused; 2 a usage/data mistake (nothing trained); 3 non-finite loss;
128 + signal number (130 SIGINT, 143 SIGTERM) when a signal stopped the run: after the first signal the
current step is finished and a checkpoint written (`--resume` continues bit-identically); a second signal
(1 s or more after the first) aborts at once (also 128 + signal number).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from parity.preflight import UsageError, check_writable_dir

BANNER = "!" * 100
# The demo's gate (--data synthetic): the families closest to what training computes, fast to check.
# Real data runs gate on every family (non-slow checks) unless --gate-family says otherwise.
DEMO_GATE = ("vit_forward", "optimizer", "preprocess", "inception_crop")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="vit_s16_i1k", help="config name (torch_impl.config.CONFIGS)")
    parser.add_argument("--data", default="synthetic",
                        help="'synthetic' (CPU demo), an ImageFolder root with train/ and val/, or tfds:imagenet2012")
    parser.add_argument("--workdir", default=None, help="output folder (default: runs/<config>-<data>)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set lr=0.003 --set schedule.warmup_steps=5000 "
                             "(big_vision's --config.KEY=VALUE is accepted too)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from the workdir's LAST checkpoint")
    again.add_argument("--restart", action="store_true",
                       help="the workdir holds a run: move it into <workdir>/archive-<UTC time>/ (nothing is "
                            "deleted) and start again from step 0")
    parser.add_argument("--skip-parity", action="store_true",
                        help="train even if the parity gate fails or is not run (recorded in metadata.json)")
    parser.add_argument("--gate-family", action="append", default=None, metavar="F",
                        help="families the gate runs (default: all; with --data synthetic: "
                             + ", ".join(DEMO_GATE) + "); repeatable")
    parser.add_argument("--gate-all", action="store_true",
                        help="gate on every family including the slow checks (also for --data synthetic)")
    parser.add_argument("--fixtures", default=None, help="fixture store for the gate (default: the repo's)")
    parser.add_argument("--full-size", action="store_true",
                        help="with --data synthetic: keep the config's model and image size (GPU benchmarking) "
                             "instead of the tiny CPU demo overrides")
    parser.add_argument("--tfds-data-dir", default=None, help="tfds data_dir for --data tfds:NAME")
    parser.add_argument("--tfds-export-dir", default=None,
                        help="where --data tfds:NAME is exported as files (default ~/.cache/vit-parity/tfds-NAME)")
    _accept_big_vision_overrides(parser)


def _accept_big_vision_overrides(parser: argparse.ArgumentParser) -> None:
    """Let `--config.lr=0.003` / `--config.lr 0.003` through argparse into the --set list."""
    known = parser.parse_known_args

    def parse_args(args=None, namespace=None):
        ns, rest = known(args, namespace)
        extra, other, i = [], [], 0
        while i < len(rest):
            tok = rest[i]
            if tok.startswith("--config."):
                if "=" in tok:
                    extra.append(tok[len("--config."):])
                elif i + 1 < len(rest):
                    extra.append(f"{tok[len('--config.'):]}={rest[i + 1]}")
                    i += 1
                else:
                    parser.error(f"{tok}: missing value")
            else:
                other.append(tok)
            i += 1
        if other:
            parser.error(f"unrecognized arguments: {' '.join(other)}")
        ns.set = list(ns.set or []) + extra
        return ns
    parser.parse_args = parse_args


# ---------------------------------------------------------------------------- the gate
def run_gate(families: list[str] | None = None, *, fixtures: str | None = None, include_slow: bool = False,
             progress: bool | None = None):
    """(passed, results) of the recorded-fixture parity checks (non-slow ones unless include_slow).
    A check or family that raises counts as a failing row carrying the error, it does not abort the gate."""
    from parity import families as fam
    from parity.checks import CheckResult
    from parity.runner import collect
    from parity.store import FixtureError, FixtureStore
    from tqdm import tqdm
    known = fam.names()
    names = list(families or known)
    unknown = [f for f in names if f not in known]
    if unknown:
        raise SystemExit(f"parity train: unknown gate family {', '.join(unknown)}; known: {', '.join(known)}")
    store = FixtureStore(fixtures)
    results, checks = [], []
    # runner.collect, as `parity check` does: a declared check that cannot be built (missing/damaged file,
    # removed manifest entry) is a failing row, so the gate cannot pass on a partial store either.
    try:
        collected = collect(store, names)
    except FixtureError as e:   # no readable manifest: nothing to gate on is a failure, not a pass
        collected = []
        results.append(CheckResult("fixtures", "manifest", "checks collected", float("nan"), 0.0, False, False,
                                   False, str(e)))
    checks.extend(c for c in collected if include_slow or not c.slow)
    show = sys.stderr.isatty() if progress is None else progress
    for c in tqdm(checks, desc="parity gate", unit="check", disable=not show, leave=False):
        try:
            results.append(c.run())
        except Exception as e:  # noqa: BLE001
            results.append(CheckResult(c.family, c.case, c.metric, float("nan"), c.bar, False, c.negative,
                                       c.higher_is_better, f"{type(e).__name__}: {e}"))
    return bool(results) and all(r.ok for r in results), results


def _gate(args) -> dict:
    from parity import report
    if os.environ.get("RANK", "0") != "0":      # torchrun: rank 0 gates; if it refuses, torchrun stops all
        return {"status": "checked by rank 0"}
    t0 = time.perf_counter()
    fams = args.gate_family or (list(DEMO_GATE) if args.data == "synthetic" and not args.gate_all else None)
    print(f"parity train: running the parity gate on {', '.join(fams) if fams else 'all families'} "
          "(recorded fixtures) ...", file=sys.stderr, flush=True)
    ok, results = run_gate(fams, fixtures=args.fixtures, include_slow=args.gate_all)
    info = {"families": fams or "all", "n_checks": len(results),
            "n_failed": sum(not r.ok for r in results), "seconds": round(time.perf_counter() - t0, 1)}
    if ok:
        print(f"parity train: parity gate passed ({report.summary(results)})", file=sys.stderr)
        return {"status": "passed", **info}
    failing = report.failures(results) if results else (
        f"no parity checks were collected from {', '.join(fams) if fams else 'any family'} in the fixture store "
        f"{args.fixtures or '(default)'}: are the fixtures there? (parity fixtures verify)")
    if not args.skip_parity:
        print("parity train: REFUSING TO TRAIN: the parity gate failed. Failing rows:\n" + failing
              + "\n\nFix the mismatch (parity check --family F for details), or pass --skip-parity to train "
                "anyway (recorded in the run's metadata).", file=sys.stderr)
        raise SystemExit(1)
    print(f"{BANNER}\nparity train: WARNING: --skip-parity: the parity gate FAILED and training starts anyway; "
          f"this run is NOT certified equal to big_vision. Failing rows:\n{failing}\n{BANNER}", file=sys.stderr)
    return {"status": "FAILED, skipped with --skip-parity", "failing": failing.splitlines()[:50], **info}


# ---------------------------------------------------------------------------- main
def resolve_config(args):
    from torch_impl import config as C
    cfg = C.get_config(args.config)
    if args.data == "synthetic" and not args.full_size:
        C.apply_overrides(cfg, C.tiny_demo_overrides())
    elif args.data == "synthetic":
        C.apply_overrides(cfg, {"total_epochs": None, "total_steps": 300, "schedule.warmup_steps": 100,
                                "input.num_workers": 8,
                                "evals.val.max_examples": 4096, "evals.minival.max_examples": 4096})
    return C.apply_overrides(cfg, args.set)


def _check_device(cfg) -> None:
    if cfg.runtime.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise UsageError(f"runtime.device=cuda but this torch ({torch.__version__}) sees no CUDA device; "
                             "use --set runtime.device=cpu (or auto)")


def _check_workdir(workdir: Path, *, resume: bool, restart: bool) -> None:
    check_writable_dir(workdir, "--workdir")
    from torch_impl.train.checkpoint import describe_run
    held = describe_run(workdir)
    if held and not (resume or restart):
        raise UsageError(f"--workdir {workdir} already holds a run ({held}); add --resume to continue it, or "
                         f"--restart to move it into {workdir}/archive-<time>/ (nothing is deleted) and start over")


def _check_data_arg(args) -> None:
    if args.data == "synthetic" or args.data.startswith("tfds:"):
        return
    root = Path(args.data)
    if not root.exists():
        raise UsageError(f"--data {args.data}: no such folder; pass an ImageFolder root holding train/<class>/* "
                         "(and val/<class>/*), --data synthetic, or --data tfds:imagenet2012")
    if not root.is_dir():
        raise UsageError(f"--data {args.data}: not a folder; pass an ImageFolder root holding train/<class>/*")


def _check_run_length(cfg, train_size: int | None) -> None:
    """The schedule against the run length, and the batch against the processes (torchrun's WORLD_SIZE).
    Without ``train_size`` (before the data is listed) only a run given in total_steps is checked."""
    from torch_impl.train.loop import accumulation, resolve_total_steps
    if train_size is None and cfg.total_steps is None:
        return
    total = resolve_total_steps(cfg, train_size or 0)
    if total < 1:
        raise UsageError(f"the run has {total} steps (total_epochs={cfg.total_epochs} x {train_size} "
                         f"images / input.batch_size={cfg.input.batch_size}); raise total_epochs or set total_steps")
    warm = cfg.schedule.warmup_steps
    if total > 1 and warm >= total:
        src = (f"total_steps={cfg.total_steps}" if cfg.total_steps is not None else
               f"total_epochs={cfg.total_epochs} = {total} steps of {cfg.input.batch_size} on {train_size} "
               "images")
        raise UsageError(f"schedule.warmup_steps={warm} is not shorter than the run ({src}); lower "
                         "--set schedule.warmup_steps or lengthen the run")
    try:
        accumulation(cfg, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError as e:
        raise UsageError(str(e)) from None


def main(args) -> int:
    try:
        return _main(args)
    except UsageError as e:
        print(f"parity train: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        # the loop's own handler turns the first SIGINT/SIGTERM into "finish the step, checkpoint, exit"; a
        # KeyboardInterrupt here is a second one during training (TrainingAborted), or a Ctrl-C before
        # training began (the gate, the data listing: nothing written yet).
        msg = str(e) or "interrupted (Ctrl-C) before training started; nothing was written"
        print(f"parity train: {msg}", file=sys.stderr)
        return 128 + getattr(e, "signum", 2)


def _main(args) -> int:
    from torch_impl.config import ConfigError
    try:
        cfg = resolve_config(args)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    if args.print_config:
        if args.data == "synthetic" and not args.full_size:
            print("# with the tiny --data synthetic demo overrides; pass --data DIR for the config as trained",
                  file=sys.stderr)
        print(cfg.to_json())
        return 0
    workdir = Path(args.workdir or Path("runs") / f"{args.config}-{_slug(args.data)}")
    # everything checkable without training, before the minutes-long gate
    _check_device(cfg)
    _check_workdir(workdir, resume=args.resume, restart=args.restart)
    _check_data_arg(args)
    _check_run_length(cfg, None)          # a run given in steps: before listing the data
    from torch_impl.data import splits_from_arg
    try:
        splits = splits_from_arg(cfg, args.data, tfds_data_dir=args.tfds_data_dir, export_dir=args.tfds_export_dir)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise UsageError(f"data: {e}") from None
    _check_run_length(cfg, splits.train_size)
    if args.skip_parity and os.environ.get("RANK", "0") == "0":
        print(f"{BANNER}\nparity train: WARNING: --skip-parity given; the gate result (below) does not stop "
              f"this run and the run's metadata records it.\n{BANNER}", file=sys.stderr)
    gate = _gate(args)
    if args.skip_parity:
        gate["skip_parity"] = True
    from torch_impl.train.checkpoint import CheckpointError
    from torch_impl.train.loop import TrainingDiverged, train
    try:
        result = train(cfg, splits, workdir, resume=args.resume, restart=args.restart,
                       metadata={"parity_gate": gate, "data_arg": args.data})
    except TrainingDiverged as e:
        print(f"parity train: STOPPED: {e}", file=sys.stderr)
        return 3
    except CheckpointError as e:     # --resume and no checkpoint is readable
        raise UsageError(str(e)) from None
    except ValueError as e:   # what the checks above cannot see (e.g. a workdir filled in the meantime)
        raise UsageError(str(e)) from None
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(summary(result, workdir), indent=1))
        if result.stopped:
            print(f"parity train: stopped by {result.stopped} after step {result.step}; checkpoint "
                  f"{result.checkpoint}; the same command plus --resume continues it", file=sys.stderr)
    return 128 + result.stopped_signum if result.stopped else 0


SMOOTHING_STEPS = 50


def summary(result, workdir: Path) -> dict:
    """The final JSON. ``last_loss`` is one step's (noisy: mixup, randaug, one batch); ``last_loss_mean`` is
    the mean over the last ``last_loss_mean_steps`` steps this process ran (at most SMOOTHING_STEPS)."""
    steps = sorted(result.losses)
    window = steps[-SMOOTHING_STEPS:]
    ck = result.checkpoint if result.checkpoint is not None and Path(result.checkpoint).exists() else None
    return {"workdir": str(workdir), "steps": result.step, "stopped": result.stopped,
            "first_loss": result.losses[steps[0]] if steps else None,
            "last_loss": result.losses[steps[-1]] if steps else None,
            "last_loss_mean": sum(result.losses[s] for s in window) / len(window) if window else None,
            "last_loss_mean_steps": len(window),
            "checkpoint": str(ck) if ck else None, "bad_images": result.bad_images,
            "evals": {k: v for k, v in result.evals.items() if k.endswith(f"@{result.step}")}}


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in Path(s).name or s).strip("-") or "data"

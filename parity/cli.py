"""The `parity` command line.

  parity check [--family F] [--fixtures DIR] [--live] [--report DIR]   exit 1 on any failure
  parity fixtures generate [--family F] [--fixtures DIR] [--onednn off|on]   needs BIG_VISION_DIR
  parity fixtures verify [--fixtures DIR]
  parity fixtures census [--family F] [--fixtures DIR]                 record what each family must produce
  parity grids --out DIR
  parity spectrum / train / bench / dynamics                           see `parity <cmd> --help`
"""
from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

# Subcommands implemented in their own modules: each has add_arguments(parser) and main(args) -> int.
EXTRA_COMMANDS = {
    "spectrum": ("parity.spectrum_cli", "RandAugment pixel-value spectra: ours vs big_vision vs torchvision"),
    "train": ("parity.train_cli", "train a ViT (runs the fast parity gate first)"),
    "bench": ("parity.bench.cli", "throughput benchmarks (ratios against baselines measured in the same run)"),
    "dynamics": ("parity.dynamics.cli", "training dynamics: torch loop vs big_vision's train.py, K seeds each"),
}


def _families(arg):
    from parity import families
    names = families.names()
    if not arg:
        return names
    unknown = [f for f in arg if f not in names]
    if unknown:
        raise SystemExit(f"parity: unknown family {', '.join(unknown)}; known: {', '.join(names)}")
    return arg


def _big_vision_or_exit():
    from parity.preflight import check_big_vision_dir
    check_big_vision_dir()


def cmd_check(args) -> int:
    from parity import families, report, runner
    from parity.preflight import check_torch_device, check_writable_dir
    from parity.store import FixtureError, FixtureStore
    # mistakes that would otherwise surface after minutes of checks (or lose the report) come first
    check_torch_device(args.device)
    if args.report:
        check_writable_dir(Path(args.report), "--report")
    names = _families(args.family)
    tmp = None
    if args.live:
        _big_vision_or_exit()
        from parity.generate import generate_family
        tmp = tempfile.TemporaryDirectory(prefix="parity-live-")
        store = FixtureStore(tmp.name)
        for n in names:
            print(f"parity: generating {n} live with big_vision ...", file=sys.stderr)
            try:
                generate_family(n, store, onednn=args.onednn)
            except FixtureError as e:
                print(f"parity: {n}: {e}", file=sys.stderr)
                return 1
        runner.adopt_declarations(store, FixtureStore(args.fixtures), names)
    else:
        store = FixtureStore(args.fixtures)
    if args.device != "cpu":
        on = [n for n in runner.device_families() if n in names]
        print(f"parity: running {', '.join(on) or 'no family'} on {args.device} (the other families run on the "
              "CPU)", file=sys.stderr)
    try:
        checks = runner.collect(store, names, device=args.device)
    except FixtureError as e:  # no readable manifest: an empty or moved store checks nothing
        print(f"parity check: {e}", file=sys.stderr)
        return 1
    # a tqdm bar on a terminal; plain lines every 20 s in CI logs and pipes
    results = runner.run_checks(checks, progress=True if sys.stderr.isatty() else "lines")
    print(report.table(results))
    print()
    print(report.summary(results))
    print(_jpeg_decoder_line())
    if args.report:
        out = Path(args.report)
        figs = []
        for n in names:
            mod = families.get(n)
            if hasattr(mod, "figures"):
                figs += mod.figures(store, [r for r in results if r.family == n], out / "figures")
        paths = report.write_report(results, out, figs)
        print(f"report: {paths['md']}, {paths['html']}, {paths['json']}")
    bad = [r for r in results if not r.ok]
    if bad:
        print("\nFAILED:\n" + report.failures(results), file=sys.stderr)
    if not results:
        print(f"parity check: no checks ran (fixtures {store.root}); nothing was tested", file=sys.stderr)
    if tmp is not None:
        tmp.cleanup()
    return 1 if bad or not results else 0


def _jpeg_decoder_line() -> str:
    """Which crop-window JPEG decode the checked code (and training) runs: big_vision's own, or the loud fallback."""
    from torch_impl.pp import tf_jpeg
    st = tf_jpeg.status()
    if st.available:
        from torch_impl.pp.backends.numpy import resize_backend
        return (f"JPEG crop-window decode: big_vision's decode_and_crop_jpeg (torch_impl.pp.tf_jpeg on libjpeg-turbo "
                f"{st.version or '?'}, {st.library}); resize: {resize_backend()}")
    return (f"WARNING: the exact JPEG crop-window decode is unavailable ({st.reason}); training falls back to "
            "decode-then-slice, whose window edges differ from big_vision's (the train_window_* checks fail)")


def cmd_fixtures(args) -> int:
    from parity.store import FixtureError, FixtureStore
    store = FixtureStore(args.fixtures)
    if args.action == "census":
        from parity import runner
        try:
            for n in _families(args.family):
                decl = runner.declare(store, n)
                print(f"parity: {n}: declared {len(decl['checks'])} checks, {len(decl['controls'])} negative "
                      f"controls, {len(decl['internal'])} internal-consistency checks in {store.manifest_path}")
        except FixtureError as e:
            print(f"parity fixtures census: {e}", file=sys.stderr)
            return 1
        return 0
    if args.action == "verify":
        try:
            problems = store.verify()
            n = len(store.entries()) if store.manifest_path.exists() else 0
        except FixtureError as e:     # the manifest itself is missing, truncated or not a manifest
            print(f"parity fixtures verify: {e}", file=sys.stderr)
            return 1
        if problems:
            print("\n".join(problems), file=sys.stderr)
            print(f"parity: {len(problems)} problem(s) in {store.root} ({n} files in the manifest)", file=sys.stderr)
            return 1
        print(f"parity: {n} fixture files in {store.root} match the manifest")
        return 0
    _big_vision_or_exit()
    from parity.generate import generate_family
    from parity import runner
    names = _families(args.family)
    for n in names:
        try:
            written = generate_family(n, store, onednn=args.onednn)
        except FixtureError as e:   # e.g. the dynamics reference program failed: its own messages are above
            print(f"parity: {n}: {e}", file=sys.stderr)
            return 1
        print(f"parity: {n}: wrote {len(written)} file(s) into {store.root}")
    for n in names:  # after all of them: a family may build checks from another's files (fast_paths)
        try:
            decl = runner.declare(store, n)
        except FixtureError as e:   # e.g. the manifest lists other families' files that are not in this folder
            first = str(e).splitlines()[:2]
            print(f"parity: {n}: files written, but its checks cannot be declared: {' '.join(first)} "
                  f"(generate into a complete store, or restore the missing files, then run "
                  f"`parity fixtures census --family {n}`)", file=sys.stderr)
            return 1
        print(f"parity: {n}: declared {sum(map(len, (decl['checks'], decl['controls'], decl['internal'])))} checks")
    return 0


def cmd_grids(args) -> int:
    from parity import grids
    paths = grids.write_pngs(grids.calibration_grids(), Path(args.out))
    print(f"parity: wrote {len(paths)} grids into {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="parity", description="PyTorch vs big_vision parity harness.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="run the parity checks (recorded fixtures by default)")
    c.add_argument("--family", action="append", help="only this family (repeatable)")
    c.add_argument("--fixtures", default=None, help="fixture store (default: the repo's fixtures/)")
    c.add_argument("--live", action="store_true", help="regenerate with big_vision (BIG_VISION_DIR) first")
    c.add_argument("--report", default=None, help="write results.json, report.md, report.html and figures here")
    c.add_argument("--device", default="cpu", help="run the device-capable families (fast_paths' batched ops, "
                   "vit_forward) on this torch device, e.g. cuda")
    c.add_argument("--onednn", choices=("off", "on"), default="off", help="with --live: TensorFlow's oneDNN "
                   "mode in the reference (default off; see docs/portability.md)")
    c.set_defaults(fn=cmd_check)
    f = sub.add_parser("fixtures", help="generate or verify the recorded fixtures")
    f.add_argument("action", choices=["generate", "verify", "census"])
    f.add_argument("--family", action="append")
    f.add_argument("--fixtures", default=None)
    f.add_argument("--onednn", choices=("off", "on"), default="off", help="generate: TensorFlow's oneDNN mode in "
                   "the reference (default off, TF's Eigen kernels, the same on every x86-64 CPU; a family that "
                   "pins its own mode keeps it; see docs/portability.md)")
    f.set_defaults(fn=cmd_fixtures)
    g = sub.add_parser("grids", help="write the calibration grids as PNGs")
    g.add_argument("--out", required=True)
    g.set_defaults(fn=cmd_grids)
    for name, (module, help_) in EXTRA_COMMANDS.items():
        sp = sub.add_parser(name, help=help_, add_help=False)
        sp.set_defaults(fn=None, extra=(name, module))
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.fn is None:
        name, module = args.extra
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:
                raise SystemExit(f"parity {name}: not available in this version ({module} is missing)") from None
            raise
        sp = argparse.ArgumentParser(prog=f"parity {name}", description=EXTRA_COMMANDS[name][1])
        mod.add_arguments(sp)
        return mod.main(sp.parse_args(rest))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    from parity.preflight import UsageError
    try:
        return args.fn(args)
    except UsageError as e:
        print(f"parity {args.cmd}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""``python -m reference generate --family F --in DIR --out DIR`` and ``python -m reference info``.

Runs in its own process (never beside torch). Reads each request ``<in>/<name>.npz``, runs big_vision's
code on it, writes ``<out>/<name>.npz`` and ``<out>/provenance.json``.

``--onednn off|on`` (default off) pins TensorFlow's oneDNN mode *before* TF is imported: TF turns oneDNN
on by default on some x86-64 CPUs (AVX-512 VNNI/BF16, AMX; its log says "oneDNN custom operations are on")
and off on others, and oneDNN's depthwise convolution (big_vision's Sharpness) rounds differently from
TF's own (Eigen) kernel. Pinning makes a fixture depend on the recorded mode, not on the CPU; the mode,
the CPU model and flags and the library versions go into provenance.json (and the manifest).

JAX/XLA (vit_init, vit_forward, optimizer) never reads TF_ENABLE_ONEDNN_OPTS; XLA:CPU's arithmetic is
pinned separately, the same in both modes (``XLA_PINS``, recorded next to the oneDNN mode): on this
project's CPU its code for an AVX-512 host and for an AVX2-only one (``--xla_cpu_max_isa=AVX2``) differ in
427 of the 693 arrays of optimizer/trajectory, and multi-threaded vs single-threaded Eigen matmuls in 424
(docs/portability.md).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _read(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def pin_onednn(mode: str) -> None:
    """Set TF_ENABLE_ONEDNN_OPTS for this process; must run before tensorflow is imported."""
    import os
    if "tensorflow" in sys.modules:
        raise RuntimeError("reference: tensorflow was imported before the oneDNN mode was pinned")
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = {"off": "0", "on": "1"}[mode]


# XLA:CPU flags that make JAX's float arithmetic independent of the host CPU and its core count:
# - max ISA AVX2: LLVM emits the same instructions on AVX-512 and AVX2-only x86-64 CPUs;
# - single-threaded Eigen: the thread-pool contraction splits a matmul by the number of threads;
# - no platform-dependent math (its own description: "at the expense of consistent results across CPUs");
# - XLA's own oneDNN and XNNPACK off (oneDNN is off by default; XNNPACK picks microkernels per CPU at run
#   time): neither changes a bit of the fixtures here, pinned so a jaxlib default cannot.
XLA_PINS = ("--xla_cpu_max_isa=AVX2 --xla_cpu_multi_thread_eigen=false --xla_cpu_enable_platform_dependent_math=false "
            "--xla_cpu_use_onednn=false --xla_cpu_experimental_onednn_custom_call=false --xla_cpu_use_xnnpack=false")


def pin_xla() -> None:
    """Append XLA_PINS to XLA_FLAGS (later flags win); must run before jax is imported."""
    import os
    if "jax" in sys.modules:
        raise RuntimeError("reference: jax was imported before XLA's flags were pinned")
    os.environ["XLA_FLAGS"] = " ".join(f for f in (os.environ.get("XLA_FLAGS", ""), XLA_PINS) if f)


def cmd_generate(args) -> int:
    pin_onednn(args.onednn)
    pin_xla()
    from reference import big_vision, generators
    try:
        bv = big_vision.load()
    except big_vision.BigVisionNotFound as e:
        print(f"reference: {e}", file=sys.stderr)
        return 3
    gen = generators.get(args.family)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(p.stem for p in Path(args.inp).glob("*.npz"))
    if not names:
        print(f"reference: no request files (*.npz) in {args.inp}", file=sys.stderr)
        return 2
    for name in names:
        result = gen.generate(name, _read(Path(args.inp) / f"{name}.npz"), bv)
        np.savez_compressed(out / f"{name}.npz", **result)
        print(f"reference: {args.family}/{name}: {', '.join(sorted(result))}", file=sys.stderr)
    (out / "provenance.json").write_text(json.dumps(bv.provenance(), indent=1))
    return 0


def cmd_info(args) -> int:
    pin_onednn(args.onednn)
    pin_xla()
    from reference import big_vision
    try:
        bv = big_vision.load()
    except big_vision.BigVisionNotFound as e:
        print(f"reference: {e}", file=sys.stderr)
        return 3
    print(json.dumps(bv.provenance(), indent=1))
    return 0


def cmd_shim(args) -> int:
    """Apply the tfa shim's functions to an image, for the shim's own tests (no big_vision needed)."""
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from reference import tfa_shim
    image = tfa_shim.install()
    req = _read(Path(args.inp))
    calls = json.loads(str(req["spec"][()]))
    outs = {}
    for i, call in enumerate(calls):
        fn = getattr(image, call["fn"])
        outs[f"out_{i}"] = np.asarray(fn(req["image"], **call["args"]))
    np.savez(args.out, **outs)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m reference", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="run big_vision on request files")
    g.add_argument("--family", required=True)
    g.add_argument("--in", dest="inp", required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--onednn", choices=("off", "on"), default="off",
                   help="TensorFlow's oneDNN mode (TF_ENABLE_ONEDNN_OPTS), pinned before TF loads (default off)")
    g.set_defaults(fn=cmd_generate)
    i = sub.add_parser("info", help="print where big_vision is and the versions in use")
    i.add_argument("--onednn", choices=("off", "on"), default="off")
    i.set_defaults(fn=cmd_info)
    s = sub.add_parser("shim", help="run the tensorflow_addons.image shim on an image")
    s.add_argument("--in", dest="inp", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_shim)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())

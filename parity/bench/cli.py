"""``parity bench {pipeline,randaug,model,batched,decode,e2e}``: throughput benchmarks (see docs/performance.md), the
one entry point of ``parity/bench/`` (``parity/bench/gpu_session.sh`` runs the GPU ones in parts).

Every benchmark measures its baselines in the same run, on the same inputs and the same CPU core, and
prints img/s with the spread over repeats and the ratios of the medians.
"""
from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "pipeline": ("parity.bench.pipeline", "training input pipeline per core vs torchvision and big_vision"),
    "randaug": ("parity.bench.randaug_ops", "RandAugment17 per op vs torchvision"),
    "model": ("parity.bench.model", "ViT forward/backward img/s (CPU, or CUDA + bf16 + compile)"),
    "batched": ("parity.bench.batched", "batched per-sample crop + RandAugment17 on a device"),
    "decode": ("parity.bench.decode", "JPEG decode per core: big_vision's crop-window decode vs the previous "
                                      "decode, whole-image decoders and big_vision's tf.data; --device: the device decode"),
    "e2e": ("parity.bench.e2e", "the training loop on real JPEGs vs the model alone (CUDA)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", required=True)
    for name, (module, help_) in BENCHMARKS.items():
        sp = sub.add_parser(name, help=help_, description=importlib.import_module(module).__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        importlib.import_module(module).add_arguments(sp)


def main(args) -> int:
    return importlib.import_module(BENCHMARKS[args.benchmark][0]).main(args)

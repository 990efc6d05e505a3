"""(f) JPEG decode: on the device (nvjpeg, through torchvision.io.decode_jpeg) against the CPU paths.

Why: on a 16-core H100 machine the CPU input pipeline, not the model, bounds end-to-end training
(`parity bench e2e`, docs/performance.md), and decode is its largest stage. Decoding on the GPU would free
the CPU, but nvjpeg is not libjpeg-turbo: this benchmark reports both its speed and how far its pixels are
from big_vision's decode (TF's default fast-DCT libjpeg-turbo decode, which torch_impl.pp.jpeg
reproduces bit for bit: parity family fast_paths), so the trade is measured, not assumed.

Contenders on the same JPEGs (scikit-image photos at 500x375, q90): torch_impl.pp.jpeg.decode_jpeg_fast
(one pinned core), torchvision.io.decode_jpeg on the CPU (PIL-like accurate DCT, one pinned core), and
torchvision.io.decode_jpeg(device=...) on batches. Pixel differences are against decode_jpeg_fast.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from parity.bench import common


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=256, help="images per device decode call")
    p.add_argument("--n", type=int, default=64, help="images per CPU timing run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--core", type=int, default=None)
    p.add_argument("--json", default=None)


def main(args) -> int:
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    from parity import photos
    from torch_impl.pp.jpeg import decode_jpeg_fast
    jpegs = list(photos.imagenet_like_jpegs().values())
    raw = [torch.frombuffer(bytearray(j), dtype=torch.uint8) for j in jpegs]
    ref = [torch.from_numpy(decode_jpeg_fast(j)).permute(2, 0, 1) for j in jpegs]
    series = {}
    diffs = {}

    def diff(name, outs):
        d = [(o.cpu().to(torch.int16) - r.to(torch.int16)).abs() for o, r in zip(outs, ref)]
        diffs[name] = {"max": int(max(x.max() for x in d)), "mean": float(np.mean([x.float().mean() for x in d])),
                       "frac_nonzero": float(np.mean([(x > 0).float().mean() for x in d]))}

    import os
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    threads = torch.get_num_threads()
    core = common.pin_to_core(args.core if args.core is not None else common.default_core())
    cpu_runs = {"fast_pipeline.decode_jpeg_fast (cpu, 1 core)": lambda i: decode_jpeg_fast(jpegs[i % len(jpegs)]),
                "torchvision decode_jpeg (cpu, 1 core)": lambda i: decode_jpeg(raw[i % len(raw)], mode=ImageReadMode.RGB)}
    series.update(common.interleaved(cpu_runs, args.n, args.repeats, warmup=2))
    diff("torchvision decode_jpeg (cpu, 1 core)", [decode_jpeg(r, mode=ImageReadMode.RGB) for r in raw])
    if args.device != "cpu":
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise SystemExit("bench decode: --device cuda needs a CUDA device (none found)")
        # the device decode gets the whole machine back (nvjpeg does its Huffman decoding on host threads)
        if allowed is not None:
            os.sched_setaffinity(0, allowed)
        torch.set_num_threads(threads)
        batch = [raw[i % len(raw)] for i in range(args.batch)]
        name = f"torchvision decode_jpeg (device={args.device}, batches of {args.batch})"
        outs = decode_jpeg(batch, device=args.device, mode=ImageReadMode.RGB)
        torch.cuda.synchronize()
        s = common.Series(name)
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for _ in range(3):
                outs = decode_jpeg(batch, device=args.device, mode=ImageReadMode.RGB)
            torch.cuda.synchronize()
            s.rates.append(3 * args.batch / (time.perf_counter() - t0))
        series[name] = s
        diff(name, outs[:len(ref)])
    print(common.header("JPEG decode, 500x375 q90 (scikit-image photos)", core))
    print(common.table(series, baselines=(next(iter(series)),)))
    print("pixel differences against big_vision's decode (= decode_jpeg_fast, bit-exact):")
    for k, v in diffs.items():
        print(f"  {k}: max {v['max']}, mean {v['mean']:.3f}, {v['frac_nonzero']:.1%} of values differ")
    common.write_json(args.json, {"benchmark": "decode", "series": {k: s.rates for k, s in series.items()},
                                  "diffs": diffs})
    return 0

"""(d) Batched (GPU-style) augmentation: per-sample inception crop + flip + RandAugment17 on a uint8 batch.

Contenders on the same decoded images: ``batched_crop_resize`` + ``BatchedRandAugment17`` on a
(N, 3, H, W) batch (on --device), against the per-image loop (crop_resize + fast_randaugment) on the CPU.
Figures are images per second. On CUDA the batch lives on the device and timing synchronises per repeat.
"""
from __future__ import annotations

import argparse
import time

from parity.bench import common


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=2, help="batches per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--device", default="cpu")
    p.add_argument("--core", type=int, default=None)
    p.add_argument("--json", default=None)


def main(args) -> int:
    import torch

    from parity import photos
    from torch_impl.pp.backends.batched import BatchedRandAugment17, batched_crop_resize
    from torch_impl.pp.backends.numpy import fast_randaugment
    from torch_impl.pp.crop import sample_inception_boxes
    from torch_impl.pp.resize import resize_bilinear_tf
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("bench batched: --device cuda needs a CUDA device (none found)")
    core = common.pin_to_core(args.core if args.core is not None else common.default_core())
    dev = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    imgs = [torch.from_numpy(photos.photo(n, (375, 500))).permute(2, 0, 1) for n in ("astronaut", "chelsea", "coffee", "rocket")]
    batch_cpu = torch.stack([imgs[i % len(imgs)] for i in range(args.batch)]).contiguous()
    batch = batch_cpu.to(dev)
    ra = BatchedRandAugment17(2, 10, generator=g)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def batched_step():
        boxes = sample_inception_boxes(375, 500, args.batch, generator=g)
        flips = torch.randint(0, 2, (args.batch,), generator=g).bool()
        out = batched_crop_resize(batch, boxes, args.size, flips=flips)
        return ra(out)

    def loop_step():
        boxes = sample_inception_boxes(375, 500, args.batch, generator=g)
        outs = []
        for i in range(args.batch):
            t, l, h, w = boxes[i].tolist()
            x = resize_bilinear_tf(batch_cpu[i, :, t:t + h, l:l + w], args.size, flip=bool(torch.randint(0, 2, (1,), generator=g)))
            outs.append(fast_randaugment(x, 2, 10, generator=g))
        return torch.stack(outs)

    runs = {f"batched on {args.device}": batched_step, "per-image loop (fast, cpu)": loop_step}
    series = {k: common.Series(k) for k in runs}
    for fn in runs.values():
        fn()
    sync()
    for _ in range(args.repeats):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            sync()
            series[k].rates.append(args.steps * args.batch / (time.perf_counter() - t0))
    print(common.header(f"batched inception crop + flip + RandAugment17(2, 10), batch {args.batch}, "
                        f"375x500 -> {args.size}", core))
    print(common.table(series, baselines=("per-image loop (fast, cpu)",)))
    common.write_json(args.json, {"benchmark": "batched", "device": args.device,
                                  "series": {k: s.rates for k, s in series.items()}})
    return 0

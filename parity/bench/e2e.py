"""(e) End to end: `parity train`'s loop (torch_impl.train.loop.train) on real JPEGs, against the model alone.

Contenders, measured in the same run on the same device:
* model only: the same ViT, batch, bf16 autocast, compile and optimizer (big_vision's) on a random batch
  that already lives on the device: the ceiling for the whole loop;
* the training loop with RandAugment17 in the DataLoader workers (torch_impl.pp.pipelines.FastTrainPipeline per image);
* the training loop with RandAugment17 on the device (``runtime.device_augment``: the workers decode, crop,
  resize and flip; torch_impl.pp.backends.batched runs randaug + value_range on the batch);
* ``--augment split``: RandAugment17 for ``--device-fraction`` of the images on the device, the rest in the
  workers (``runtime.device_augment_fraction``), to balance a CPU-bound and a GPU-bound configuration;
* each input pipeline alone (the DataLoader iterated without training), which shows whether the loop is
  input-bound.

Data: an ImageFolder (``--data DIR`` with train/<class>/*.jpg) or, by default, ``--images`` JPEGs made from
the scikit-image photos at ImageNet's typical 500x375, quality 90 (parity.photos.imagenet_like_jpegs).
The loop's timing comes from its own metrics log (``img_per_sec_window``, one record per step) over the
steps after the warm-up (compilation and worker start-up excluded). The warm-up is at least the DataLoader's
prefetch depth (workers x prefetch_factor batches, + 5): the workers fill that queue during compilation, and
timing steps served from it would report the model's speed instead of the pipeline's (the first H100 runs,
with 10 warm-up steps, were partly inflated this way). Needs a CUDA device for meaningful
figures; runs on the CPU too (tiny settings) so the plumbing is tested.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from parity.bench import common


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=30, help="timed training steps per contender")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed first steps (compile, worker start-up, the prefetch queue; default: "
                        "workers x 4 + 5, the loader's prefetch depth plus a margin)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: CPU cores - 1)")
    p.add_argument("--data", default=None, help="ImageFolder root with train/<class>/*.jpg (default: made up)")
    p.add_argument("--images", type=int, default=4096, help="JPEGs to make when --data is not given")
    p.add_argument("--classes", type=int, default=16)
    p.add_argument("--augment", nargs="+", default=["loader", "device"],
                   choices=["loader", "device", "split", "device-decode"],
                   help="where RandAugment17 runs, one contender each; split: --device-fraction of the images "
                        "on the device, the rest in the workers; device-decode also decodes the JPEGs "
                        "on the device (nvjpeg: not big_vision's pixels, see docs/performance.md)")
    p.add_argument("--device-fraction", type=float, default=0.3,
                   help="runtime.device_augment_fraction for --augment split")
    p.add_argument("--variant", default="S/16")
    p.add_argument("--depth", type=int, default=None, help="override the depth (quick CPU runs)")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--skip-model-only", action="store_true")
    p.add_argument("--skip-loader-only", action="store_true")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="for MFU on CUDA (H100 SXM dense bf16: 989)")
    p.add_argument("--json", default=None)


def make_image_folder(root: Path, n: int, classes: int) -> Path:
    """n JPEGs (500x375, q90) in root/train/<class>/, the photos cycled over the classes."""
    from parity import photos
    jpegs = list(photos.imagenet_like_jpegs().values())
    for c in range(classes):
        (root / "train" / f"c{c:03d}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / "train" / f"c{i % classes:03d}" / f"img{i:06d}.jpg").write_bytes(jpegs[i % len(jpegs)])
    return root


def _config(args, classes: int, augment: str, workers: int, total: int):
    from torch_impl.config import get_config
    cfg = get_config("vit_s16_i1k")
    sets = {
        "total_epochs": None, "total_steps": total, "num_classes": classes, "input.batch_size": args.batch,
        "input.num_workers": workers, "input.data.split": "train", "input.pp.crop_size": args.image_size,
        "log_training_steps": 1, "ckpt_steps": 0, "evals.val.log_steps": 0, "evals.minival.log_steps": 0,
        "runtime.device": "cuda" if args.device.startswith("cuda") else "cpu",
        "runtime.compile": not args.no_compile, "runtime.tensorboard": False, "runtime.progress": False,
        "runtime.device_augment": augment in ("device", "device-decode"),
        "runtime.device_decode": augment == "device-decode",
        "runtime.device_augment_fraction": args.device_fraction if augment == "split" else 0.0,
        "model.variant": args.variant,
        "schedule.warmup_steps": min(10, total - 1),
    }
    if args.depth:
        sets["model.depth"] = args.depth
    for k, v in sets.items():
        cfg.set(k, v)
    return cfg


def loop_rate(cfg, splits, workdir: Path, warmup: int, name: str) -> tuple[common.Series, dict]:
    """Run the training loop; img/s over the steps after ``warmup`` from its per-step metrics records."""
    from torch_impl.train.loop import train
    r = train(cfg, splits, workdir, echo=lambda *a, **k: None)
    recs = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    recs = [x for x in recs if x.get("split", "train") == "train" and "img_per_sec_window" in x]
    timed = [x for x in recs if x["step"] > warmup]
    if not timed:
        raise SystemExit(f"bench e2e: no training steps after the {warmup} warm-up steps; raise --steps")
    B = cfg.input.batch_size
    seconds = [B / x["img_per_sec_window"] for x in timed]
    s = common.Series(name)
    # three equal slices of the timed steps give the spread; the median is over them
    k = max(1, len(seconds) // 3)
    for i in range(0, len(seconds) - k + 1, k):
        chunk = seconds[i:i + k]
        s.rates.append(len(chunk) * B / sum(chunk))
    info = {"steps": r.step, "peak_mem_gib": max((x.get("peak_mem_gib", 0.0) for x in recs), default=0.0),
            "final_loss": timed[-1]["training_loss"]}
    return s, info


def loader_rate(cfg, splits, steps: int, warmup: int, name: str, *, pool: bool = True) -> common.Series:
    """The DataLoader alone (same workers, batch, transforms), batches per second as img/s. Each batch is given
    back as soon as it arrives (data.batching.release, as the training loop does after its step).
    ``pool=False``: the workers start with VIT_PARITY_BATCH_POOL=0 (a fresh shared segment per batch)."""
    from torch_impl.data.batching import ENV_BATCH_POOL, release
    from torch_impl.data.loader import make_loader
    from torch_impl.data.sampling import StepSampler
    B = cfg.input.batch_size
    sampler = StepSampler(splits.train_size, B, seed=cfg.seed)
    from torch_impl.data.loader import collate_train
    saved = os.environ.get(ENV_BATCH_POOL)
    if not pool:
        os.environ[ENV_BATCH_POOL] = "0"
    try:
        it = iter(make_loader(splits.train, sampler, B, num_workers=cfg.input.num_workers, pin_memory=False,
                              collate_fn=collate_train if cfg.runtime.device_decode else None))
        release(next(it))   # (the workers start, with the environment of this moment, when iter() runs)
    finally:
        if saved is None:
            os.environ.pop(ENV_BATCH_POOL, None)
        else:
            os.environ[ENV_BATCH_POOL] = saved
    for _ in range(warmup):
        release(next(it))
    s = common.Series(name)
    k = max(1, steps // 3)
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(k):
            release(next(it))
        s.rates.append(k * B / (time.perf_counter() - t0))
    del it
    return s


def main(args) -> int:
    import torch

    from parity.bench.model import flops_per_image, make_step, measure
    from torch_impl.data.datasets import folder_splits
    from torch_impl.model import ViT
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("bench e2e: --device cuda needs a CUDA device (none found)")
    dev = torch.device(args.device)
    workers = args.workers if args.workers is not None else max(1, len(os.sched_getaffinity(0)) - 1)
    tmp = tempfile.TemporaryDirectory(prefix="parity-e2e-")
    if args.data:
        root = Path(args.data)
        classes = len([p for p in (root / "train").iterdir() if p.is_dir()])
    else:
        classes = args.classes
        root = make_image_folder(Path(tmp.name) / "data", args.images, classes)
    if args.warmup is None:
        from torch_impl.data.loader import PREFETCH_FACTOR
        args.warmup = workers * PREFETCH_FACTOR + 5
    total = args.warmup + args.steps
    series: dict[str, common.Series] = {}
    notes = {}
    if not args.skip_model_only:
        if dev.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        cfg = _config(args, classes, "loader", workers, total)
        from torch_impl.train.loop import build_model
        model = build_model(cfg).to(dev)
        if dev.type == "cuda" and cfg.runtime.channels_last_stem:      # as the training loop does
            model.embedding.to(memory_format=torch.channels_last)
        step, set_batch = make_step(model, device=dev, bf16=dev.type == "cuda", compile=not args.no_compile,
                                    optimizer="big_vision")
        set_batch(torch.randn(args.batch, 3, args.image_size, args.image_size, device=dev),
                  torch.randint(0, classes, (args.batch,), device=dev))
        name = "model only (batch on the device)"
        series[name] = measure(step, steps=max(1, args.steps // 3), repeats=3, warmup=min(args.warmup, 10),
                               batch=args.batch, device=dev, name=name)
        del model, step
    for augment in args.augment:
        cfg = _config(args, classes, augment, workers, total)
        splits = folder_splits(cfg, root)
        share = f"{args.device_fraction:.0%}"
        where = {"loader": "in the loader workers", "device": "on the device",
                 "split": f"split ({share} of the images on the device)",
                 "device-decode": "and decode on the device"}[augment]
        if not args.skip_loader_only:
            n = {"loader": "input pipeline alone (randaug in the workers)",
                 "device": "input pipeline alone (no randaug)",
                 "split": f"input pipeline alone (randaug in the workers for all but {share})",
                 "device-decode": "input pipeline alone (read files + draw crops only)"}[augment]
            series[n] = loader_rate(cfg, splits, args.steps, args.warmup, n)
            if augment == "loader":
                # the same without the workers' batch pool (a fresh shared segment per batch, as
                # default_collate does): what data.batching.BatchPool buys on this machine
                n = "input pipeline alone (randaug in the workers), no batch pool"
                series[n] = loader_rate(cfg, splits, args.steps, args.warmup, n, pool=False)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        n = f"training loop, randaug {where}"
        s, info = loop_rate(cfg, splits, Path(tmp.name) / f"run-{augment}", args.warmup, n)
        s.note = f"peak {info['peak_mem_gib']:.1f} GiB" if info["peak_mem_gib"] else ""
        series[n], notes[n] = s, info
    f = flops_per_image(ViT(1000, variant=args.variant, **({"depth": args.depth} if args.depth else {})),
                        args.image_size) * 3
    extra = {"gpu": torch.cuda.get_device_name(dev)} if dev.type == "cuda" else {}
    print(common.header(f"end to end: ViT-{args.variant} at {args.image_size}px, batch {args.batch}, "
                        f"{'compiled' if not args.no_compile else 'eager'}, {args.device}, {workers} loader workers "
                        f"on {len(os.sched_getaffinity(0))} CPU cores, {args.steps} timed steps", None, **extra))
    base = next(iter(series))
    print(common.table(series, baselines=(base,)))
    for k, s in series.items():
        if dev.type == "cuda" and k.startswith(("model", "training")):
            print(f"{k}: MFU {s.median * f / (args.peak_tflops * 1e12):.1%} of {args.peak_tflops:g} TFLOP/s")
    common.write_json(args.json, {"benchmark": "e2e", "device": args.device, "workers": workers, "batch": args.batch,
                                  "series": {k: s.rates for k, s in series.items()}, "loops": notes,
                                  "flops_per_image": f, **extra})
    tmp.cleanup()
    return 0

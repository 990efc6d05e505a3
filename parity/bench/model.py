"""(c) Model throughput: ViT forward + backward (+ Adam-style optimizer step), img/s.

CPU: float32, pinned to one core unless --threads is given. CUDA (--device cuda): bf16 autocast, SDPA,
optional torch.compile and channels-last stem, synchronising only at the end of each timed repeat.
Reports model-only img/s and, for --device cuda, MFU against --peak-tflops.
"""
from __future__ import annotations

import argparse
import time

from parity.bench import common


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", default="S/16")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--depth", type=int, default=None, help="override the depth (for quick runs)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (default on CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--forward-only", action="store_true")
    p.add_argument("--no-channels-last", action="store_true", help="keep the stem convolution NCHW on CUDA")
    p.add_argument("--optimizer", nargs="+", default=["big_vision"], choices=["big_vision", "adamw", "none"],
                   help="optimizer(s) to time after the backward pass (each its own row); big_vision = what "
                        "`parity train` runs, adamw = torch's fused AdamW (a speed reference), none = no update")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: 1, pinned to one core)")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="for MFU on CUDA (H100 SXM dense bf16: 989)")
    p.add_argument("--core", type=int, default=None)
    p.add_argument("--json", default=None)


def flops_per_image(model, image_size: int) -> float:
    """Forward FLOPs (2 per multiply-add) of a ViT encoder + head at this resolution."""
    n = (image_size // model.patch_size[0]) * (image_size // model.patch_size[1])
    d, m, L = model.width, model.mlp_dim, model.depth
    per_block = 2 * n * (4 * d * d + 2 * d * m) + 2 * 2 * n * n * d
    stem = 2 * n * d * 3 * model.patch_size[0] * model.patch_size[1]
    return float(L * per_block + stem + 2 * d * model.num_classes)


def make_step(model, *, device, bf16: bool, compile: bool, optimizer: str, forward_only: bool = False):
    """A no-argument callable running one training step of ``model`` on a fixed random batch set by the
    returned ``set_batch(x, y)``: bf16 autocast forward, float32 softmax cross-entropy, backward, optimizer.
    ``optimizer``: "big_vision" (torch_impl.optim.adam.build_optimizer, what `parity train` runs), "adamw"
    (torch.optim.AdamW, fused on CUDA: a speed reference) or "none"."""
    import torch

    from torch_impl.optim import build_optimizer
    step_model = torch.compile(model) if compile else model
    if forward_only or optimizer == "none":
        opt = None
    elif optimizer == "big_vision":
        opt, _ = build_optimizer(model, lr=1e-3, wd=1e-4, total_steps=10**6,
                                 schedule={"warmup_steps": 10, "decay_type": "cosine"}, grad_clip_norm=1.0,
                                 mu_dtype="bfloat16")
    elif optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    else:
        raise ValueError(f"optimizer must be big_vision, adamw or none, got {optimizer!r}")
    batch = {}

    def set_batch(x, y):
        batch["x"], batch["y"] = x, y

    def step():
        x, y = batch["x"], batch["y"]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            if forward_only:
                with torch.no_grad():
                    step_model(x)
                return
            logits, _ = step_model(x)
            loss = torch.nn.functional.cross_entropy(logits.float(), y)
        loss.backward()
        if opt is not None:
            opt.step()
            opt.zero_grad(set_to_none=True)
        else:
            model.zero_grad(set_to_none=True)
    return step, set_batch


def measure(step, *, steps: int, repeats: int, warmup: int, batch: int, device, name: str):
    """Series of img/s over ``repeats`` timed runs of ``steps`` steps (synchronising only at their ends)."""
    import torch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    s = common.Series(name)
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        s.rates.append(steps * batch / (time.perf_counter() - t0))
    return s


def main(args) -> int:
    import torch

    from torch_impl.model import ViT
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("bench model: --device cuda needs a CUDA device (none found)")
    core = None
    if args.device == "cpu":
        if args.threads:
            torch.set_num_threads(args.threads)
        else:
            core = common.pin_to_core(args.core if args.core is not None else common.default_core())
    dev = torch.device(args.device)
    bf16 = args.bf16 or dev.type == "cuda"
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    overrides = {"depth": args.depth} if args.depth else {}
    series = {}
    optimizers = ["none"] if args.forward_only else args.optimizer
    for opt_name in optimizers:
        model = ViT(1000, variant=args.variant, **overrides).to(dev)
        if dev.type == "cuda" and not args.no_channels_last:
            model.embedding = model.embedding.to(memory_format=torch.channels_last)
        step, set_batch = make_step(model, device=dev, bf16=bf16, compile=args.compile, optimizer=opt_name,
                                    forward_only=args.forward_only)
        set_batch(torch.randn(args.batch, 3, args.image_size, args.image_size, device=dev),
                  torch.randint(0, 1000, (args.batch,), device=dev))
        label = "forward" if args.forward_only else f"forward+backward+{opt_name} optimizer"
        s = measure(step, steps=args.steps, repeats=args.repeats, warmup=args.warmup, batch=args.batch, device=dev,
                    name=label)
        s.note = f"{'bf16' if bf16 else 'fp32'}{', compiled' if args.compile else ''}, batch {args.batch}"
        series[label] = s
        del model, step
    f = flops_per_image(ViT(1000, variant=args.variant, **overrides), args.image_size) * (1 if args.forward_only else 3)
    print(common.header(f"model throughput: ViT-{args.variant}" + (f" depth {args.depth}" if args.depth else "")
                        + f" at {args.image_size}px on {args.device}", core,
                        threads=torch.get_num_threads(),
                        **({"gpu": torch.cuda.get_device_name(dev)} if dev.type == "cuda" else {})))
    print(common.table(series, baselines=(next(iter(series)),)))
    out = {}
    for k, s in series.items():
        mfu = s.median * f / (args.peak_tflops * 1e12) if dev.type == "cuda" else None
        out[k] = {"rates": s.rates, "note": s.note, "mfu": mfu}
        print(f"{k}: {s.median * f / 1e12:.1f} TFLOP/s achieved"
              + (f", MFU {mfu:.1%} of {args.peak_tflops:g} TFLOP/s" if mfu else ""))
    common.write_json(args.json, {"benchmark": "model", "device": args.device, "flops_per_image": f, "series": out})
    return 0

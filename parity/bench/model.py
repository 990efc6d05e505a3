"""(c) Model throughput: ViT forward + backward (+ Adam-style optimizer step), img/s.

CPU: float32, pinned to one core unless --threads is given. CUDA (--device cuda): bf16 autocast, SDPA,
optional torch.compile and channels-last stem, synchronising only at the end of each timed repeat.
Reports model-only img/s and, for --device cuda, MFU against --peak-tflops.
"""
from __future__ import annotations

import argparse
import sys
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
    overrides = {"depth": args.depth} if args.depth else {}
    model = ViT(1000, variant=args.variant, **overrides).to(dev)
    if dev.type == "cuda":
        model.embedding = model.embedding.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if args.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=dev.type == "cuda") if not args.forward_only else None
    x = torch.randn(args.batch, 3, args.image_size, args.image_size, device=dev)
    y = torch.randint(0, 1000, (args.batch,), device=dev)

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            if args.forward_only:
                with torch.no_grad():
                    step_model(x)
                return
            logits, _ = step_model(x)
            loss = torch.nn.functional.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    sync()
    s = common.Series("forward" if args.forward_only else "forward+backward+AdamW")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        s.rates.append(args.steps * args.batch / (time.perf_counter() - t0))
    f = flops_per_image(model, args.image_size) * (1 if args.forward_only else 3)
    s.note = f"{'bf16' if bf16 else 'fp32'}{', compiled' if args.compile else ''}, batch {args.batch}"
    print(common.header(f"model throughput: ViT-{args.variant}" + (f" depth {args.depth}" if args.depth else "")
                        + f" at {args.image_size}px on {args.device}", core,
                        threads=torch.get_num_threads()))
    print(common.table({s.name: s}))
    mfu = s.median * f / (args.peak_tflops * 1e12) if dev.type == "cuda" else None
    print(f"achieved {s.median * f / 1e9:.1f} GFLOP/s" + (f", MFU {mfu:.1%} of {args.peak_tflops} TFLOP/s" if mfu else ""))
    common.write_json(args.json, {"benchmark": "model", "device": args.device, "rates": s.rates, "note": s.note,
                                  "flops_per_image": f, "mfu": mfu})
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    add_arguments(p)
    sys.exit(main(p.parse_args()))

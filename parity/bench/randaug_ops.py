"""(b) RandAugment17 alone, per op, on a 224x224 uint8 image (level 10, sign +1), one core.

Contenders per op: apply_op (the reference kernel), fast_apply_op (the fast CPU path), batched_apply_op
(per-sample kernel, a batch of --batch images, figure per image) and torchvision's nearest equivalent on the
same uint8 tensor (v2.functional; "-" where torchvision has none).
"""
from __future__ import annotations

import argparse

from parity.bench import common


def torchvision_equivalents():
    import torch
    from torchvision.transforms.v2 import functional as F
    I = F.InterpolationMode.NEAREST
    return {
        "AutoContrast": F.autocontrast, "Equalize": F.equalize, "Invert": F.invert,
        "Rotate": lambda x: F.rotate(x, 30.0, interpolation=I, fill=128),
        "Posterize": lambda x: F.posterize(x, 4), "Solarize": lambda x: F.solarize(x, 255),
        "Color": lambda x: F.adjust_saturation(x, 1.9), "Contrast": lambda x: F.adjust_contrast(x, 1.9),
        "Brightness": lambda x: F.adjust_brightness(x, 1.9), "Sharpness": lambda x: F.adjust_sharpness(x, 1.9),
        "ShearX": lambda x: F.affine(x, angle=0.0, translate=[0, 0], scale=1.0, shear=[16.7, 0.0], interpolation=I, fill=128),
        "ShearY": lambda x: F.affine(x, angle=0.0, translate=[0, 0], scale=1.0, shear=[0.0, 16.7], interpolation=I, fill=128),
        "TranslateX": lambda x: F.affine(x, angle=0.0, translate=[100, 0], scale=1.0, shear=[0.0, 0.0], interpolation=I, fill=128),
        "TranslateY": lambda x: F.affine(x, angle=0.0, translate=[0, 100], scale=1.0, shear=[0.0, 0.0], interpolation=I, fill=128),
        "Cutout": lambda x: F.erase(x, 72, 72, 80, 80, torch.tensor(128, dtype=torch.uint8)),
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=50, help="calls per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=16, help="batch for batched_apply_op")
    p.add_argument("--ops", nargs="*", default=None, help="only these ops")
    p.add_argument("--core", type=int, default=None)
    p.add_argument("--json", default=None)


def main(args) -> int:
    import torch

    from parity import photos
    from torch_impl.pp.backends.batched import batched_apply_op
    from torch_impl.pp.backends.numpy import fast_apply_op
    from torch_impl.pp.randaug import OPS, apply_op
    core = common.pin_to_core(args.core if args.core is not None else common.default_core())
    img = torch.from_numpy(photos.photo("astronaut", (args.size, args.size))).permute(2, 0, 1).contiguous()
    batch = img.unsqueeze(0).repeat(args.batch, 1, 1, 1)
    centers = torch.tensor([[args.size // 2, args.size // 2]] * args.batch)
    tv = torchvision_equivalents()
    ops = args.ops or list(OPS)
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        raise SystemExit(f"bench randaug: unknown op(s) {unknown}; known: {', '.join(OPS)}")
    c = (args.size // 2, args.size // 2)
    rows = [["op", "apply_op", "fast_apply_op", f"batched (N={args.batch})", "torchvision", "fast / torchvision"]]
    results = {}
    for op in ops:
        runs = {
            "apply_op": lambda i, op=op: apply_op(img, op, 10, cutout_center=c),
            "fast_apply_op": lambda i, op=op: fast_apply_op(img, op, 10, cutout_center=c),
            "batched": lambda i, op=op: batched_apply_op(batch, op, 10, cutout_center=centers),
        }
        if op in tv:
            runs["torchvision"] = lambda i, op=op: tv[op](img)
        s = common.interleaved(runs, args.n, args.repeats, warmup=2)
        s["batched"].rates = [r * args.batch for r in s["batched"].rates]
        results[op] = {k: v.rates for k, v in s.items()}
        tvm = s["torchvision"].median if "torchvision" in s else float("nan")
        rows.append([op, f"{s['apply_op'].median:.0f}", f"{s['fast_apply_op'].median:.0f}", f"{s['batched'].median:.0f}",
                     "-" if tvm != tvm else f"{tvm:.0f}",
                     "-" if tvm != tvm else f"{s['fast_apply_op'].median / tvm:.2f}"])
    print(common.header(f"RandAugment ops per core, img/s (median of {args.repeats}), {args.size}x{args.size} uint8, level 10",
                        core))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    print("\n".join(lines))
    common.write_json(args.json, {"benchmark": "randaug_ops", "core": core, "cpu": common.cpu_model(), "ops": results})
    return 0

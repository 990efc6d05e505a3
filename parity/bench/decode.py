"""(f) JPEG decode as big_vision's training op does it -- the crop window only -- on one pinned core, against
the previous decode, whole-image decoders and big_vision's own tf.data op (same run), plus the device decode.

Why: decode is the largest stage of the CPU input pipeline, which bounds end-to-end training on GPU machines
(`parity bench e2e`, docs/performance.md). big_vision decodes only the inception crop's window
(``tf.image.decode_and_crop_jpeg``); torch_impl.pp.tf_jpeg makes the same libjpeg-turbo calls (bit-exact:
parity families preprocess/fast_paths). This benchmark shows what that costs against the alternatives.

CPU contenders, same JPEGs (scikit-image photos at 500x375, q90) and the same inception windows (drawn once
with big_vision's distribution), one pinned core, interleaved repeats:
  crop window (ours)              pp.jpeg.decode_crop_hwc: tf_jpeg's decode_and_crop_jpeg
  crop window + box (ours)        the same plus the box draw from the header, as the fast path draws it
                                  (what big_vision's op does too)
  crop window + resize 224 (ours, one C call)
                                  tf_jpeg.decode_resize: the same decode, then resize(224) + flip + value_range
                                  in the same C call (the fast training path's per-image step, without the box)
  old: rows + slice (ours)        the previous decode: fast-DCT rows down to the window's bottom, full width
  whole image (simplejpeg)        decode_jpeg_fast: TF's default decode_jpeg of the whole image
  torchvision decode_jpeg (cpu)   whole image, accurate DCT
  big_vision tf.data              its ``decode_jpeg_and_inception_crop`` (no resize) in tf.data, in the reference
                                  subprocess (BIG_VISION_DIR set), timed right after the torch contenders
With ``--device cuda``: ``runtime.device_decode``'s decoder (TorchCodec, else torchvision) on batches, and
its pixel difference from big_vision's decode.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from parity.bench import common


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="also time the device decode there (e.g. cuda)")
    p.add_argument("--batch", type=int, default=256, help="images per device decode call")
    p.add_argument("--n", type=int, default=192, help="images per CPU timing run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--core", type=int, default=None)
    p.add_argument("--no-big-vision", action="store_true", help="skip big_vision even if BIG_VISION_DIR is set")
    p.add_argument("--json", default=None)


def _big_vision(jpegs, *, n, repeats, core) -> tuple[list[float], list[float]]:
    from parity.bench.pipeline import BATCH, _reference_cmd
    with tempfile.TemporaryDirectory(prefix="bench-jpegs-") as tmp:
        for i, data in enumerate(jpegs):
            Path(tmp, f"{i:03d}.jpg").write_bytes(data)
        cmd, env = _reference_cmd(tmp, pp="decode_jpeg_and_inception_crop", n=max(n, BATCH), repeats=repeats,
                                  warmup=BATCH, core=core, serve=False)
        cmd[cmd.index("--batch") + 1] = "1"     # windows differ in shape: tf.data batches of one
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"big_vision decode benchmark failed (exit {proc.returncode}):\n"
                           + "\n".join(proc.stderr.strip().splitlines()[-15:]))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["rates"], out.get("cpu_ms", [])


def main(args) -> int:
    import os

    import torch
    import torchvision.io as tio

    from parity import photos
    from parity.reference_runner import big_vision_dir
    from torch_impl.pp import tf_jpeg
    from torch_impl.pp.backends.batched import device_jpeg_decoder
    from torch_impl.pp.crop import sample_inception_box, sample_inception_box1
    from torch_impl.pp.jpeg import decode_crop_hwc, decode_jpeg_fast, jpeg_shape
    jpegs = list(photos.imagenet_like_jpegs().values())
    raw = [torch.frombuffer(bytearray(j), dtype=torch.uint8) for j in jpegs]
    g = torch.Generator().manual_seed(0)
    boxes = [tuple(int(v) for v in sample_inception_box(*jpeg_shape(jpegs[i % len(jpegs)]), generator=g))
             for i in range(64)]
    nj, nb = len(jpegs), len(boxes)
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    threads = torch.get_num_threads()
    core = common.pin_to_core(args.core if args.core is not None else common.default_core())
    gb = torch.Generator().manual_seed(1)

    def with_box(i):
        data = jpegs[i % nj]
        h, w = jpeg_shape(data)
        return decode_crop_hwc(data, sample_inception_box1(h, w, (0.05, 1.0), generator=gb))   # the fast path's

    def tv_cpu(i):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return tio.decode_jpeg(raw[i % nj], mode=tio.ImageReadMode.RGB)

    cpu_runs = {"crop window (ours)": lambda i: decode_crop_hwc(jpegs[i % nj], boxes[i % nb]),
                "crop window + box (ours)": with_box,
                "old: rows + slice (ours)": lambda i: decode_crop_hwc(jpegs[i % nj], boxes[i % nb], exact=False),
                "whole image (simplejpeg)": lambda i: decode_jpeg_fast(jpegs[i % nj]),
                "torchvision decode_jpeg (cpu)": tv_cpu}
    if tf_jpeg.available() and tf_jpeg.c_resize_enabled():
        # the fast path's whole per-image C call: the same window decode, then resize(224) + flip + value_range
        out224 = np.empty((3, 224, 224), np.float32)
        cpu_runs["crop window + resize 224 (ours, one C call)"] = lambda i: tf_jpeg.decode_resize(
            jpegs[i % nj], boxes[i % nb], 224, flip=bool(i & 1), value_range=True, out=out224)
    series = common.interleaved(cpu_runs, args.n, args.repeats, warmup=8)
    if big_vision_dir() and not args.no_big_vision:
        s = common.Series("big_vision tf.data")
        s.rates, s.cpu_ms = _big_vision(jpegs, n=args.n, repeats=args.repeats, core=core)
        series[s.name] = s
    diffs = {}
    if args.device != "cpu":
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise SystemExit("bench decode: --device cuda needs a CUDA device (none found)")
        # the device decode gets the whole machine back (nvjpeg does its Huffman decoding on host threads)
        if allowed is not None:
            os.sched_setaffinity(0, allowed)
        torch.set_num_threads(threads)
        dname, decode = device_jpeg_decoder()
        dev = torch.device(args.device)
        batch = [raw[i % nj] for i in range(args.batch)]
        outs = decode(batch, dev)
        torch.cuda.synchronize()
        name = f"{dname} (device={args.device}, whole images, batches of {args.batch})"
        s = common.Series(name)
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for _ in range(3):
                outs = decode(batch, dev)
            torch.cuda.synchronize()
            s.rates.append(3 * args.batch / (time.perf_counter() - t0))
        series[name] = s
        ref = [torch.from_numpy(decode_jpeg_fast(j)).permute(2, 0, 1) for j in jpegs]
        d = [(o.cpu().to(torch.int16) - r.to(torch.int16)).abs() for o, r in zip(outs[:nj], ref)]
        diffs[name] = {"max": int(max(x.max() for x in d)), "mean": float(np.mean([x.float().mean() for x in d])),
                       "frac_nonzero": float(np.mean([(x > 0).float().mean() for x in d]))}
    st = tf_jpeg.status()
    print(common.header("JPEG decode per core: big_vision's crop-window decode vs the alternatives", core,
                        images=f"{nj} JPEGs 500x375 q90, {nb} inception windows, {args.n} per repeat, "
                               f"{args.repeats} repeats",
                        crop_decoder=(f"tf_jpeg on libjpeg-turbo {st.version}" if st.available
                                      else f"UNAVAILABLE ({st.reason}): the crop rows show the fallback")))
    base = ("big_vision tf.data",) if "big_vision tf.data" in series else ()
    print(common.table(series, baselines=("old: rows + slice (ours)",) + base))
    print("\nCPU time per image (time.process_time of each contender's pinned process; the device row has none):")
    print(common.cpu_table(series, baselines=("old: rows + slice (ours)",) + base))
    for k, v in diffs.items():
        print(f"pixel difference of {k} from big_vision's decode: max {v['max']}, mean {v['mean']:.3f}, "
              f"{v['frac_nonzero']:.1%} of values differ")
    common.write_json(args.json, {"benchmark": "decode", "series": {k: s.rates for k, s in series.items()},
                                  "diffs": diffs, "cpu": common.cpu_model(), "core": core,
                                  "crop_decoder": st.as_dict(),
                                  "cpu_ms": {k: s.cpu_ms for k, s in series.items() if s.cpu_ms},
                                  "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None})
    return 0

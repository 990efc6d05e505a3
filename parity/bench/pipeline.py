"""(a) The training input pipeline per CPU core: JPEG bytes -> float (3, 224, 224) batches.

Contenders, same JPEGs (parity.photos.imagenet_like_jpegs: 500x375, quality 90), same core, same run:
  fast (ours)            torch_impl.pp.pipelines.FastTrainPipeline: big_vision's crop-window decode
                         (decode_and_crop_jpeg, pp.tf_jpeg), resize + flip (+ value_range without RandAugment)
                         in the same C call (tf_jpeg.decode_resize), RandAugment17 on uint8 (numba kernels);
                         each image written into its row of the batch by data.batching.fill_batch, the code
                         ImageFiles.__getitems__ runs in a training DataLoader worker, into a reused
                         shared-memory segment (data.batching.BatchPool), as the worker does
  fast, fresh shared batches  the same, each batch in a new shared-memory segment (what default_collate
                         allocates in a worker; the training loader before BatchPool)
  fast, numba resize     the previous fast path: the same decode, the resize in the numba kernel, batches
                         stacked (torch.stack), to show what the C resize and the in-place batch buy
  fast, old decode       the same as fast (ours) with the previous decode (fast-DCT rows down to the window's
                         bottom at full width, then a slice; crop_decode=False), batches stacked
  fast, numpy kernels    neither C resize nor numba (the numpy fallback; same bits), batches stacked
  reference path (ours)  DecodeJpegAndInceptionCrop(224) (the crop-window decode) -> flip_lr -> RandAugment17
                         -> value_range
  torchvision v2         PIL decode -> v2.RandomResizedCrop(224) -> RandomHorizontalFlip -> v2.RandAugment(2, 9)
                         -> PILToTensor -> ToDtype(float32, scale) -> Normalize (the usual torchvision recipe)
  big_vision tf.data     big_vision's pp string in tf.data, in the reference subprocess (needs BIG_VISION_DIR),
                         default tf.data options, timed right after the torch contenders; with
                         --interleave-big-vision one repeat at a time between theirs (read-ahead still on;
                         its CPU time counts the background read-ahead, its img/s are not comparable)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from parity.bench import common

BATCH = 32


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=160, help="images per repeat and contender")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=16)
    p.add_argument("--core", type=int, default=None, help="CPU core to pin to (default: the last allowed one)")
    p.add_argument("--no-randaug", action="store_true", help="drop RandAugment from every contender")
    p.add_argument("--no-big-vision", action="store_true", help="skip big_vision even if BIG_VISION_DIR is set")
    p.add_argument("--interleave-big-vision", action="store_true",
                   help="time big_vision one repeat at a time between the torch repeats (same load for all), "
                        "with tf.data's default options (read-ahead on, as big_vision runs it); its background "
                        "read-ahead between repeats is charged to the next repeat's CPU time, so compare CPU "
                        "time, not img/s")
    p.add_argument("--only", action="append", help="run only these torch contenders (repeatable)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")


def _batched(fn):
    """Per-image fn -> a callable(i) that also stacks every BATCH outputs into a batch, like a loader."""
    import torch
    pending = []

    def run(i):
        pending.append(fn(i))
        if len(pending) == BATCH:
            torch.stack(pending)
            pending.clear()
    return run


def _filled(fn, alloc=None):
    """Per-image fn(i, out) -> a callable(i) that writes every BATCH images into one batch tensor with
    data.batching.fill_batch, as ImageFiles.__getitems__ does in a training DataLoader worker: by default in a
    shared-memory segment of a data.batching.BatchPool (the worker's pool), given back right after (as the
    training loop does after its step); ``alloc``: another batch allocator (e.g. a fresh segment per batch)."""
    from torch_impl.data.batching import WORKER_POOL_SLOTS, BatchPool, fill_batch
    pool = BatchPool(WORKER_POOL_SLOTS, shared=True) if alloc is None else None
    pending = []

    def run(i):
        pending.append(i)
        if len(pending) == BATCH:
            idx = list(pending)
            pending.clear()
            batch = fill_batch(BATCH, lambda k, out: fn(idx[k], out),
                               alloc=pool.new_batch if pool is not None else alloc,
                               abandon=pool.give_back if pool is not None else None)
            if pool is not None:
                pool.give_back(batch)
    run.filled = True
    return run


def _switched(fn, backend: str):
    """fn run with the fast path's resize backend forced (backends.numpy.forced_resize_backend) for each call."""
    from torch_impl.pp.backends.numpy import forced_resize_backend

    def run(i):
        with forced_resize_backend(backend):
            return fn(i)
    return run


def contenders(jpegs: list[bytes], randaug: bool, seed: int = 0) -> dict:
    import io

    import torch
    from PIL import Image
    from torchvision.transforms import v2

    from torch_impl.data.batching import fresh_batch
    from torch_impl.pp import pipelines as FP
    n = len(jpegs)
    out = {}
    filled = {}
    fast = FP.FastTrainPipeline(224, randaug=(2, 10) if randaug else None,
                                generator=torch.Generator().manual_seed(seed))
    filled["fast (ours)"] = lambda i, o: fast(jpegs[i % n], out=o)
    # the same, each batch in a new shared-memory segment (what default_collate allocates in a worker; the
    # training loader's batches before data.batching.BatchPool)
    fresh = FP.FastTrainPipeline(224, randaug=(2, 10) if randaug else None,
                                 generator=torch.Generator().manual_seed(seed))
    fresh_shared = (lambda i, o: fresh(jpegs[i % n], out=o)), (lambda m, like: fresh_batch(m, like, shared=True))
    from torch_impl.pp import tf_jpeg
    from torch_impl.pp.backends import numba as NK
    if NK.available() and tf_jpeg.c_resize_enabled():
        # the previous fast path (numba resize, stacked batches), same bits
        fast_nb = FP.FastTrainPipeline(224, randaug=(2, 10) if randaug else None,
                                       generator=torch.Generator().manual_seed(seed))
        out["fast, numba resize"] = _switched(lambda i: fast_nb(jpegs[i % n]), "numba")
    fast_old = FP.FastTrainPipeline(224, randaug=(2, 10) if randaug else None, crop_decode=False,
                                    generator=torch.Generator().manual_seed(seed))
    out["fast, old decode"] = lambda i: fast_old(jpegs[i % n])
    if NK.enabled() or tf_jpeg.c_resize_enabled():
        # The same pipeline on the numpy kernels (same bits), to show what the compiled kernels buy.
        fast_np = FP.FastTrainPipeline(224, randaug=(2, 10) if randaug else None,
                                       generator=torch.Generator().manual_seed(seed))
        out["fast, numpy kernels"] = _switched(lambda i: fast_np(jpegs[i % n]), "numpy")

    try:
        from torch_impl.pp.geometry import flip_lr
        from torch_impl.pp.tf_math import value_range
        from torch_impl.pp.transforms import DecodeJpegAndInceptionCrop, RandAugment17
        g = torch.Generator().manual_seed(seed)
        crop = DecodeJpegAndInceptionCrop(224, generator=g)
        ra = RandAugment17(2, 10, generator=g) if randaug else None

        def ref(i):
            x = flip_lr(crop(jpegs[i % n]), generator=g)
            if ra is not None:
                x = ra(x)
            return value_range(x, -1, 1)
        out["reference path (ours)"] = ref
    except ImportError as e:  # a piece not available in this checkout
        print(f"bench: reference path skipped ({e})", file=sys.stderr)

    steps = [v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip()]
    if randaug:
        steps.append(v2.RandAugment(num_ops=2, magnitude=9))
    steps += [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.5] * 3)]
    tv = v2.Compose(steps)

    def torchvision_pipeline(i):
        with Image.open(io.BytesIO(jpegs[i % n])) as im:
            return tv(im.convert("RGB"))
    out["torchvision v2"] = torchvision_pipeline
    runs = {k: _filled(f) for k, f in filled.items()}
    runs["fast, fresh shared batches"] = _filled(*fresh_shared)
    runs.update({k: _batched(f) for k, f in out.items()})
    return runs


def _reference_cmd(folder: str, *, pp: str, n: int, repeats: int, warmup: int, core, serve: bool):
    cmd = [sys.executable, "-m", "reference.bench_pipeline", "--jpegs", folder, "--pp", pp, "--n", str(n),
           "--repeats", str(repeats), "--warmup", str(warmup), "--batch", str(BATCH)]
    if core is not None:
        cmd += ["--core", str(core)]
    if serve:
        cmd.append("--serve")
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return cmd, env


def _pp(randaug: bool) -> str:
    from reference.bench_pipeline import DEFAULT_PP  # plain module: imports no TF at module level
    return DEFAULT_PP if randaug else DEFAULT_PP.replace("|randaug(2,10)", "")


def big_vision(jpegs: list[bytes], *, n: int, repeats: int, warmup: int, core,
               randaug: bool) -> tuple[list[float], list[float]]:
    """Run reference/bench_pipeline.py in its own process on the same JPEG files; returns (img/s, CPU ms per
    image) per repeat."""
    with tempfile.TemporaryDirectory(prefix="bench-jpegs-") as tmp:
        for i, data in enumerate(jpegs):
            Path(tmp, f"{i:03d}.jpg").write_bytes(data)
        cmd, env = _reference_cmd(tmp, pp=_pp(randaug), n=n, repeats=repeats, warmup=warmup, core=core, serve=False)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"big_vision benchmark failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                           + "\n".join(proc.stderr.strip().splitlines()[-15:]))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["rates"], out.get("cpu_ms", [])


class BigVisionServer:
    """big_vision's pipeline warmed up in its subprocess, timing one repeat per ``run()`` call, so its repeats
    interleave with the torch contenders' (same load for all).

    tf.data keeps its default options (prefetch injection, map+batch fusion, autotune), as big_vision runs it,
    so between ``run()`` calls it keeps filling its read-ahead buffers in the background, on the same pinned
    core as this process. The subprocess charges that CPU work to the next repeat (reference.bench_pipeline
    CpuLedger): ``run()``'s CPU ms per image and ``cpu_total_ms`` (all its CPU time since the end of its
    warm-up / all images consumed, the figure to quote) count everything TF did. Its img/s do not: a repeat
    starts on a full read-ahead buffer, and the idle prefetching slows the torch contenders' wall clock."""

    def __init__(self, jpegs: list[bytes], *, n: int, warmup: int, core, randaug: bool, read_ahead: bool = True):
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-jpegs-")
        for i, data in enumerate(jpegs):
            Path(self._tmp.name, f"{i:03d}.jpg").write_bytes(data)
        cmd, env = _reference_cmd(self._tmp.name, pp=_pp(randaug), n=n, repeats=1, warmup=warmup, core=core,
                                  serve=True)
        if not read_ahead:
            cmd.append("--no-read-ahead")
        self._cmd = cmd
        self.cpu_total_ms: float | None = None   # all CPU ms since its warm-up / images consumed
        self.images_total = 0
        self._errf = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._errf, text=True)
        self.info = self._read()  # the "ready" line, after TF import and warm-up

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=60)
            self._errf.seek(0)
            tail = "\n".join(self._errf.read().strip().splitlines()[-15:])
            raise RuntimeError(f"big_vision benchmark failed (exit {self.proc.returncode}): {' '.join(self._cmd)}\n{tail}")
        return json.loads(line)

    def run(self) -> tuple[float, float | None]:
        """One repeat: (img/s, CPU ms per image charged to it: the repeat's own work plus the read-ahead done
        since the previous repeat ended)."""
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        out = self._read()
        self.cpu_total_ms = out.get("cpu_total_ms")
        self.images_total = out.get("images_total", 0)
        return float(out["rate"]), out.get("cpu_ms")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)
        self._errf.close()
        self._tmp.cleanup()

    @staticmethod
    def paired_cpu_ratios(base: list[float], ours: list[float]) -> list[float]:
        """Per-repeat ratios base CPU ms / ours CPU ms (> 1: ours faster), repeat r against repeat r. In
        interleaved mode repeat r of both runs within seconds, so each pair sees the same machine speed: the
        median of these ratios is robust to the VM's speed drifting (+-30% over minutes here), which the ratio
        of the two medians is not."""
        if len(base) != len(ours):
            raise ValueError(f"unpaired series: {len(base)} vs {len(ours)} repeats")
        return [b / o for b, o in zip(base, ours)]


def main(args) -> int:
    from parity import photos
    core = common.pin_to_core(args.core if args.core is not None else common.default_core())
    jpegs = list(photos.imagenet_like_jpegs().values())
    randaug = not args.no_randaug
    runs = contenders(jpegs, randaug)
    if args.only:
        unknown = [o for o in args.only if o not in runs]
        if unknown:
            raise SystemExit(f"bench pipeline: unknown contender(s) {unknown}; known: {list(runs)}")
        runs = {k: v for k, v in runs.items() if k in args.only}
    n = args.n if args.n < BATCH else (args.n // BATCH) * BATCH
    from parity.reference_runner import big_vision_dir
    server = None
    with_bv = bool(big_vision_dir()) and not args.no_big_vision
    if with_bv and args.interleave_big_vision:
        server = BigVisionServer(jpegs, n=n, warmup=args.warmup, core=core, randaug=randaug)
    try:
        # Interleaved repeats: each torch contender, then big_vision's, per repeat (same load for all).
        series = common.interleaved(runs, n, 0, args.warmup)
        if server is not None:
            series["big_vision tf.data"] = common.Series("big_vision tf.data")
        for _ in range(args.repeats):
            for k, fn in runs.items():
                rate, cpu_ms = common.timed(fn, n)
                series[k].rates.append(rate)
                series[k].cpu_ms.append(cpu_ms)
            if server is not None:
                rate, cpu_ms = server.run()
                series["big_vision tf.data"].rates.append(rate)
                if cpu_ms is not None:
                    series["big_vision tf.data"].cpu_ms.append(cpu_ms)
    finally:
        if server is not None:
            server.close()
    if with_bv and server is None:
        # Default: big_vision's pipeline with tf.data's default options (as big_vision runs it), timed in its
        # process right after the torch contenders (same run, core and images; a later time window).
        s = common.Series("big_vision tf.data")
        s.rates, s.cpu_ms = big_vision(jpegs, n=n, repeats=args.repeats, warmup=args.warmup, core=core,
                                       randaug=randaug)
        series[s.name] = s
    what = "decode + inception crop + flip" + (" + RandAugment(2, 10)" if randaug else "") + " + to float"
    print(common.header(f"input pipeline per core: {what}", core,
                        images=f"{len(jpegs)} JPEGs 500x375 q90, {n} per repeat, {args.repeats} repeats"))
    print(common.table(series, baselines=("torchvision v2", "big_vision tf.data")))
    if server is not None:
        print("(interleaved: big_vision's img/s are not comparable -- tf.data's read-ahead fills its buffers on the "
              "pinned core between repeats, so each of its repeats starts ahead and the torch repeats share the "
              "core with it; compare the CPU times below)")
    # CPU time per image of each process (all its threads on the pinned core): on a shared machine the
    # wall-clock rates above swing with other jobs' load, the CPU time much less.
    print("\nCPU time per image (time.process_time of each contender's process"
          + ("; big_vision's includes its background read-ahead between repeats; THE figures to compare):"
             if server is not None else "):"))
    print(common.cpu_table(series, baselines=("torchvision v2", "big_vision tf.data")))
    if with_bv and server is None:
        print("(big_vision ran after the torch contenders, in its own time window: where the machine's speed drifts "
              "(a shared VM: +-25% within minutes here), --interleave-big-vision pairs each of its repeats with "
              "ours and gives the robust ratio)")
    extra = {}
    if server is not None and server.cpu_total_ms is not None:
        # The figure to quote for big_vision: all its CPU time since the end of its warm-up / all images
        # consumed. Edges (each bounded by tf.data's read-ahead buffers): what was already read ahead when the
        # warm-up ended is never charged, what is left in the buffers at the end is charged but not consumed.
        bv = series["big_vision tf.data"]
        extra["big_vision_cpu_total_ms"] = server.cpu_total_ms
        print(f"\nbig_vision tf.data, all CPU since its warm-up / all {server.images_total} images: "
              f"{server.cpu_total_ms:.3f} ms/image")
        ours = series.get("fast (ours)")
        if ours is not None and ours.cpu_ms and len(ours.cpu_ms) == len(bv.cpu_ms):
            ours_total = sum(ours.cpu_ms) / len(ours.cpu_ms)   # same n images every repeat
            paired = BigVisionServer.paired_cpu_ratios(bv.cpu_ms, ours.cpu_ms)
            med = statistics.median(paired)
            extra["fast_vs_big_vision"] = {"total_cpu_ratio": server.cpu_total_ms / ours_total,
                                           "paired_cpu_ratios": paired, "paired_cpu_ratio_median": med}
            print(f"fast (ours) vs big_vision tf.data, CPU time: totals {server.cpu_total_ms / ours_total:.2f}x; "
                  f"median of the paired per-repeat ratios {med:.2f}x "
                  f"({', '.join(f'{r:.2f}' for r in paired)}; robust to the machine's speed drift)")
    common.write_json(args.json, {"benchmark": "pipeline", "randaug": randaug, "core": core, "cpu": common.cpu_model(),
                                  "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                                  "interleaved_big_vision": server is not None,
                                  "series": {k: s.rates for k, s in series.items()},
                                  "cpu_ms": {k: s.cpu_ms for k, s in series.items() if s.cpu_ms}, **extra})
    return 0

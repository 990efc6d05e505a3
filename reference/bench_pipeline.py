"""big_vision's own training input pipeline, timed: ``python -m reference.bench_pipeline --jpegs DIR ...``.

Runs in its own process (TensorFlow never shares a process with torch). The pp string is big_vision's ViT
training preprocessing (``decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2,10)|value_range(-1,1)``,
op names as registered in big_vision/pp/ops_image.py, ops_general.py and pp/archive/randaug.py), mapped
over the JPEG bytes with tf.data as big_vision's input pipeline does, pinned to one core with TF's intra-
and inter-op pools and tf.data's private pool at one thread. Prints one JSON object on stdout.

tf.data keeps its default options (prefetch injection, map+batch fusion, autotune: as big_vision runs it)
unless ``--no-read-ahead``. So in ``--serve`` mode the pipeline keeps working in the background between
timed repeats (filling its read-ahead buffers while the caller's own contenders run); CpuLedger charges
that work to the next repeat, so TF's CPU time per image counts all the CPU work it does.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DEFAULT_PP = "decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2,10)|value_range(-1,1)"


class CpuLedger:
    """This process's CPU time (``time.process_time``: every thread, tf.data's background ones included),
    charged to the repeats that consume the images.

    ``start()`` marks the clock once, at the end of the warm-up (main() calls it there, before the "ready"
    line of --serve, so that the read-ahead done while the caller warms up and runs its first repeat is charged
    to the first timed repeat, which consumes it); ``charge(images)`` at the end of each repeat charges all the
    CPU time since the previous mark (the previous repeat's end, or the start), so read-ahead tf.data did in
    the background between repeats -- while the caller's other contenders ran -- is charged to the next
    repeat, which consumes those images. Two edges, each bounded by tf.data's read-ahead buffers (a few
    batches): what was already read ahead when the warm-up ended is consumed but never charged, and what is
    still in the buffers at the last repeat's end is charged but not consumed. ``total_ms`` (all CPU since the first mark / all images) is the figure to
    quote; the per-repeat figures also carry the between-repeat work, so they scatter more.
    """

    def __init__(self, clock=time.process_time):
        self._clock = clock
        self._first: float | None = None
        self._mark: float | None = None
        self.images = 0
        self.cpu_ms: list[float] = []   # CPU ms per image charged to each repeat

    def start(self) -> None:
        if self._mark is None:
            self._first = self._mark = self._clock()

    def charge(self, images: int) -> float:
        if self._mark is None:
            raise RuntimeError("CpuLedger.charge() before start()")
        if images <= 0:
            raise ValueError("a repeat must consume at least one image")
        now = self._clock()
        cpu_s, self._mark = now - self._mark, now
        self.images += images
        self.cpu_ms.append(cpu_s * 1e3 / images)
        return self.cpu_ms[-1]

    @property
    def total_ms(self) -> float | None:
        """All CPU time since the first mark per image consumed (None before any repeat)."""
        if not self.images:
            return None
        return (self._mark - self._first) * 1e3 / self.images


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m reference.bench_pipeline", description=__doc__)
    p.add_argument("--jpegs", required=True, help="folder of .jpg files (the same images the torch side uses)")
    p.add_argument("--pp", default=DEFAULT_PP)
    p.add_argument("--n", type=int, default=200, help="images per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--core", type=int, default=None)
    p.add_argument("--serve", action="store_true", help="after warm-up, time one repeat per 'run' line on stdin "
                   "(tf.data's default options; its background read-ahead between repeats is charged to the next)")
    p.add_argument("--no-read-ahead", action="store_true", help="turn off tf.data's prefetch injection, map+batch "
                   "fusion and autotune (not big_vision's configuration; to compare with the default one)")
    args = p.parse_args(argv)
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from reference import big_vision
    try:
        bv = big_vision.load()
    except big_vision.BigVisionNotFound as e:
        print(f"reference.bench_pipeline: {e}", file=sys.stderr)
        return 3
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from reference.pp import preprocess_fn
    if "randaug" in args.pp:
        bv.module("pp.archive.randaug")  # registers preprocess_ops.randaug
    fn = preprocess_fn(bv, args.pp)
    files = sorted(Path(args.jpegs).glob("*.jpg"))
    if not files:
        print(f"reference.bench_pipeline: no .jpg files in {args.jpegs}", file=sys.stderr)
        return 2
    data = [f.read_bytes() for f in files]
    opts = tf.data.Options()
    opts.threading.private_threadpool_size = 1
    opts.threading.max_intra_op_parallelism = 1
    opts.deterministic = True
    if args.no_read_ahead:
        # Opt-in only: no background read-ahead (tf.data would otherwise inject a prefetch buffer and fuse
        # map+batch into an op that batches ahead on a thread). big_vision runs with the defaults, so --serve
        # keeps them too and CpuLedger charges the read-ahead done between repeats.
        opts.autotune.enabled = False
        opts.experimental_optimization.inject_prefetch = False
        opts.experimental_optimization.map_parallelization = False
        opts.experimental_optimization.map_and_batch_fusion = False
        opts.experimental_optimization.apply_default_optimizations = False
    ds = (tf.data.Dataset.from_tensor_slices(tf.constant(data)).repeat()
          .map(lambda b: fn({"image": b})["image"]).batch(args.batch).with_options(opts))
    it = iter(ds)
    batches = max(1, args.n // args.batch)
    for _ in range(max(1, args.warmup // args.batch)):
        next(it).numpy()
    ledger = CpuLedger()
    ledger.start()   # from here on tf.data's work (background read-ahead included) serves the timed repeats
    info = {"pp": args.pp, "images": batches * args.batch, "core": args.core, "tensorflow": tf.__version__,
            "big_vision_commit": bv.commit, "read_ahead": not args.no_read_ahead}

    def one_repeat() -> float:
        # CPU time per image (CpuLedger: every thread of this process, all pinned to the one core, tf.data's
        # and TF's pools included, background read-ahead between repeats charged to the next repeat), which a
        # busy shared machine disturbs far less than wall-clock time.
        t0 = time.perf_counter()
        for _ in range(batches):
            next(it).numpy()
        wall = time.perf_counter() - t0
        ledger.charge(batches * args.batch)
        return batches * args.batch / wall

    if args.serve:
        # Interleaved mode: the caller sends "run" for each repeat (between its own contenders' repeats, so
        # all of them see the same machine load) and "quit" at the end. Between repeats tf.data keeps filling
        # its read-ahead buffers on the same pinned core (competing with the caller for it), so the wall-clock
        # rate of a repeat is not comparable with the caller's; the CPU time is.
        print(json.dumps({"ready": True, **info}), flush=True)
        for line in sys.stdin:
            if line.strip() != "run":
                break
            rate = one_repeat()
            print(json.dumps({"rate": rate, "cpu_ms": ledger.cpu_ms[-1], "cpu_total_ms": ledger.total_ms,
                              "images_total": ledger.images}), flush=True)
        return 0
    rates = [one_repeat() for _ in range(args.repeats)]
    print(json.dumps({"rates": rates, "cpu_ms": ledger.cpu_ms, "cpu_total_ms": ledger.total_ms, **info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

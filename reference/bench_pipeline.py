"""big_vision's own training input pipeline, timed: ``python -m reference.bench_pipeline --jpegs DIR ...``.

Runs in its own process (TensorFlow never shares a process with torch). The pp string is big_vision's ViT
training preprocessing (``decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2,10)|value_range(-1,1)``,
op names as registered in big_vision/pp/ops_image.py, ops_general.py and pp/archive/randaug.py), mapped
over the JPEG bytes with tf.data as big_vision's input pipeline does, pinned to one core with TF's intra-
and inter-op pools and tf.data's private pool at one thread. Prints one JSON object on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DEFAULT_PP = "decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2,10)|value_range(-1,1)"


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
                   "(implies --no-read-ahead)")
    p.add_argument("--no-read-ahead", action="store_true", help="turn off tf.data's prefetch injection and "
                   "map+batch fusion (what --serve needs; to compare with the default configuration)")
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
    if args.serve or args.no_read_ahead:
        # No background read-ahead: between timed repeats (--serve) the pipeline must sit idle, so that each
        # image is produced inside the timed window (tf.data would otherwise inject a prefetch buffer, or fuse
        # map+batch into an op that batches ahead on a thread).
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
    info = {"pp": args.pp, "images": batches * args.batch, "core": args.core, "tensorflow": tf.__version__,
            "big_vision_commit": bv.commit}

    cpu_ms: list[float] = []

    def one_repeat() -> float:
        # Also the process's CPU time per image (every thread of it, all pinned to the one core: tf.data's
        # and TF's pools included), which a busy shared machine disturbs far less than wall-clock time.
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(batches):
            next(it).numpy()
        wall = time.perf_counter() - t0
        cpu_ms.append((time.process_time() - c0) * 1e3 / (batches * args.batch))
        return batches * args.batch / wall

    if args.serve:
        # Interleaved mode: the caller sends "run" for each repeat (between its own contenders' repeats, so
        # all of them see the same machine load) and "quit" at the end; idle, this process only waits.
        print(json.dumps({"ready": True, **info}), flush=True)
        for line in sys.stdin:
            if line.strip() != "run":
                break
            rate = one_repeat()
            print(json.dumps({"rate": rate, "cpu_ms": cpu_ms[-1]}), flush=True)
        return 0
    rates = [one_repeat() for _ in range(args.repeats)]
    print(json.dumps({"rates": rates, "cpu_ms": cpu_ms, **info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

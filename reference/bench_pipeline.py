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
    ds = (tf.data.Dataset.from_tensor_slices(tf.constant(data)).repeat()
          .map(lambda b: fn({"image": b})["image"]).batch(args.batch).with_options(opts))
    it = iter(ds)
    batches = max(1, args.n // args.batch)
    for _ in range(max(1, args.warmup // args.batch)):
        next(it).numpy()
    rates = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(batches):
            next(it).numpy()
        rates.append(batches * args.batch / (time.perf_counter() - t0))
    print(json.dumps({"pp": args.pp, "rates": rates, "images": batches * args.batch, "core": args.core,
                      "tensorflow": tf.__version__, "big_vision_commit": bv.commit}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

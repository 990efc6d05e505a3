"""``python -m reference.dynamics --recipe parity/dynamics/recipe.json --data DIR --out DIR --seeds 0-7``

Runs each seed through big_vision's own train.py (resumable: finished seeds are skipped), then writes
``<out>/reference.npz`` and, unless ``--no-store``, records it as ``fixtures/dynamics/reference.npz``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reference.dynamics", description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default=None, help="recipe JSON (default parity/dynamics/recipe.json)")
    ap.add_argument("--data", required=True, help="ImageFolder root (train/<class>/*, val/<class>/*)")
    ap.add_argument("--out", required=True, help="work folder (per-seed logs, resumable)")
    ap.add_argument("--seeds", default=None, help="e.g. 0-7 or 0,2,5 (default: 0..recipe seeds-1)")
    ap.add_argument("--jobs", type=int, default=1, help="seeds run at once (each on one core)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per seed (1: pinned single-thread)")
    ap.add_argument("--nice", type=int, default=10)
    ap.add_argument("--total-steps", type=int, default=None, help="override (short test runs only)")
    ap.add_argument("--eval-every", type=int, default=None, help="override (short test runs only)")
    ap.add_argument("--no-verify-data", action="store_true",
                    help="skip the generated-data digest check (needed for Imagenette or other folders)")
    ap.add_argument("--store", default=None, help="fixture store root (default: fixtures/ of this checkout)")
    ap.add_argument("--no-store", action="store_true", help="write only <out>/reference.npz")
    ap.add_argument("--combine-only", action="store_true",
                    help="run nothing: combine the seeds already finished in --out (e.g. by several processes)")
    args = ap.parse_args(argv)

    from reference import big_vision
    from reference.dynamics import run

    recipe = run.recipe_with_big_vision(args.recipe, "reference.dynamics")
    if recipe is None:
        return 2
    if args.total_steps:
        # Short test runs keep the schedule's shape: warmup scaled with the run (big_vision asserts
        # warmup_steps < total_steps).
        o = recipe["optimizer"]
        o["warmup_steps"] = int(o["warmup_steps"]) * args.total_steps // int(recipe["total_steps"])
        recipe["total_steps"] = args.total_steps
    if args.eval_every:
        recipe["eval_every_steps"] = args.eval_every
    seeds = run.parse_seeds(args.seeds) if args.seeds else list(range(int(recipe["seeds"])))
    data, out = Path(args.data).resolve(), Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    data_digest = None
    if not args.no_verify_data:
        from parity.dynamics import data as dyn_data
        try:
            data_digest = dyn_data.verify(data, recipe)
        except (FileNotFoundError, dyn_data.DataDigestError) as e:
            print(f"reference.dynamics: {e}\n(pass --no-verify-data for a folder that is not the generated "
                  "dataset, e.g. Imagenette)", file=sys.stderr)
            return 2
    try:
        classes, n_train = run.prepare_jsonl(data, out)
    except FileNotFoundError as e:
        print(f"reference.dynamics: {e}", file=sys.stderr)
        return 2
    if len(classes) != int(recipe["data"]["classes"]):
        print(f"reference.dynamics: {data}/train has {len(classes)} class folders but the recipe's data.classes is "
              f"{recipe['data']['classes']}; use a recipe whose data.classes matches the folder", file=sys.stderr)
        return 2
    print(f"reference.dynamics: {len(seeds)} seeds x {recipe['total_steps']} steps, {n_train} train images, "
          f"{len(classes)} classes, {args.jobs} at once -> {out}", flush=True)

    t0 = time.time()
    say = lambda s: print(s, flush=True)
    if args.combine_only:
        recs = run.finished(out, seeds, recipe)
        if not recs:
            print(f"reference.dynamics: no finished seeds of this recipe in {out}/seeds", file=sys.stderr)
            return 2
        missing = sorted(set(seeds) - {r["seed"] for r in recs})
        if missing:
            print(f"reference.dynamics: combining {len(recs)} finished seeds; not finished: {missing}")
        seeds = [r["seed"] for r in recs]
    else:
        with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
            futs = [pool.submit(run.run_seed, s, recipe, data, out, n_train, threads=args.threads,
                                nice=args.nice, say=say) for s in seeds]
            try:
                recs = [f.result() for f in futs]
            except RuntimeError as e:
                print(f"reference.dynamics: {e}", file=sys.stderr)
                return 1
    arrays = run.combine(out, seeds)
    # the mixup coefficient of every update (train.py does not log it; a pure function of the seed)
    from reference.dynamics import mixup
    arrays["mixup_a"] = np.stack([mixup.draws(int(s), len(arrays["step"]), float(recipe["mixup"]["p"]))
                                  for s in arrays["seeds"]]).astype(np.float32)
    bv = {"big_vision_commit": os.environ.get("BIG_VISION_COMMIT") or big_vision._commit(big_vision.locate(),
                                                                                          os.environ),
          "big_vision_source_sha256": big_vision.source_digest(big_vision.locate())}
    prov = run.provenance(recipe, data, data_digest, classes, recs, bv)
    from parity.store import encode_spec
    arrays["provenance"] = encode_spec(prov)
    from parity.store import save_npz
    save_npz(out / "reference.npz", arrays)
    print(f"reference.dynamics: {len(seeds)} seeds in {time.time() - t0:.0f} s -> {out / 'reference.npz'}")
    if not args.no_store:
        from parity.store import FixtureStore
        store = FixtureStore(args.store)
        written = store.write_family("dynamics", {"reference": arrays}, provenance=prov,
                                     generator_args={"reference": prov["generator_args"]})
        print(f"reference.dynamics: recorded {', '.join(written)} in {store.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

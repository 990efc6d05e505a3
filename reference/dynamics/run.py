"""Run the recipe's seeds through big_vision/train.py (one subprocess each), then combine the curves.

Layout under ``--out``:
    jsonl/train.jsonl, jsonl/val.jsonl      big_vision's jsonl DataSource rows for the ImageFolder
    seeds/seed<S>/bv_config.json            the translated config this seed ran
    seeds/seed<S>/train.log                 train.py's absl log (the source of every number)
    seeds/seed<S>/curves.npz                that seed's arrays (reference.dynamics.metrics.curves)
    seeds/seed<S>/DONE.json                 written last: recipe digest, wall time (a rerun skips the seed)
    reference.npz                           all seeds combined (also written into the fixture store)
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from reference.dynamics import config as bvcfg
from reference.dynamics import metrics

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def recipe_with_big_vision(path, prog: str) -> dict | None:
    """The recipe, once BIG_VISION_DIR is known to be a checkout; None after printing one line naming the
    problem (a bad recipe file, no big_vision)."""
    from parity.dynamics import RecipeError, load_recipe
    from reference import big_vision
    try:
        recipe = load_recipe(path)
        big_vision.locate()
    except (RecipeError, big_vision.BigVisionNotFound) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return None
    return recipe


def parse_seeds(text: str) -> list[int]:
    """'0-7' -> [0..7]; '0,3,5' -> [0, 3, 5]; '2' -> [2]."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            seeds += list(range(int(a), int(b) + 1))
        elif part:
            seeds.append(int(part))
    if not seeds:
        raise ValueError(f"--seeds {text!r}: no seeds (use e.g. 0-7 or 0,1,2)")
    return seeds


from parity.dynamics import recipe_digest  # noqa: E402  (one definition: the torch side compares against it)


def cpu_info() -> dict:
    info = {"machine": platform.machine(), "processor": platform.processor(), "cpu_count": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            key, _, val = line.partition(":")
            key = key.strip()
            if key == "model name" and "model" not in info:
                info["model"] = val.strip()
            elif key == "flags" and "flags" not in info:
                info["flags"] = val.strip()
    except OSError:
        pass
    return info


def env_for_seed(threads: int) -> dict:
    env = dict(os.environ)
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"        # pinned and recorded (DESIGN: oneDNN rounds differently)
    env["JAX_PLATFORMS"] = "cpu"
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    if threads == 1:
        # One core per seed: XLA's CPU backend without its Eigen thread pool, TF with one op thread.
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                            " intra_op_parallelism_threads=1").strip()
        env["TF_NUM_INTRAOP_THREADS"] = "1"
        env["TF_NUM_INTEROP_THREADS"] = "1"
    # Python's per-process hash randomisation can change the order in which TF random ops are created (and
    # so their eager op seeds); two runs of one seed without this differed from step 1 (notes).
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


ENV_KEYS = ("TF_ENABLE_ONEDNN_OPTS", "XLA_FLAGS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
            "JAX_PLATFORMS", "PYTHONHASHSEED")


def prepare_jsonl(data: Path, out: Path) -> tuple[list[str], int]:
    classes, rows = bvcfg.image_folder(data)
    d = out / "jsonl"
    d.mkdir(parents=True, exist_ok=True)
    bvcfg.write_jsonl(rows["train"], d / "train.jsonl")
    bvcfg.write_jsonl(rows["val"], d / "val.jsonl")
    return classes, len(rows["train"])


def run_seed(seed: int, recipe: dict, data: Path, out: Path, n_train: int, *, threads: int = 1,
             nice: int = 0, say=print) -> dict:
    """Run one seed (skipped when its DONE.json matches the recipe); returns its DONE record."""
    wd = out / "seeds" / f"seed{seed}"
    done = wd / "DONE.json"
    digest = recipe_digest(recipe)
    if done.exists():
        rec = json.loads(done.read_text())
        if rec.get("recipe_sha256") == digest and (wd / "curves.npz").exists():
            say(f"[seed {seed}] already done ({rec['wall_s']:.0f} s), skipped")
            return rec
    if wd.exists():                            # an interrupted or outdated seed starts over (train.py would
        for p in sorted(wd.rglob("*"), reverse=True):   # otherwise resume from a checkpoint it finds)
            p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
    wd.mkdir(parents=True, exist_ok=True)
    cfg = bvcfg.translate(recipe, seed=seed, train_jsonl=str(out / "jsonl" / "train.jsonl"),
                          val_jsonl=str(out / "jsonl" / "val.jsonl"), data_root=str(data), n_train=n_train)
    (wd / "bv_config.json").write_text(json.dumps(cfg, indent=1))
    cmd = [sys.executable, "-m", "reference.dynamics.launch", "--seed", str(seed),
           "--config", f"{HERE / 'bv_config.py'}:{wd / 'bv_config.json'}", "--workdir", str(wd / "bv")]
    if nice:
        cmd = ["nice", "-n", str(nice)] + cmd
    total = int(recipe["total_steps"])
    t0 = time.time()
    with open(wd / "train.log", "w") as log:
        env = env_for_seed(threads)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO))
        last_shown = 0
        for line in proc.stderr:
            log.write(line)
            row = metrics.parse_log(line)
            for step, vals in row.items():
                if "training_loss" in vals and (step - last_shown >= max(total // 10, 1) or step == total):
                    last_shown = step
                    say(f"[seed {seed}] step {step}/{total} loss {vals['training_loss']:.4f} "
                        f"({time.time() - t0:.0f} s)")
                if "val/prec@1" in vals:
                    say(f"[seed {seed}] step {step} eval prec@1 {vals['val/prec@1']:.4f}")
        rc = proc.wait()
    wall = time.time() - t0
    if rc != 0:
        tail = (wd / "train.log").read_text().splitlines()[-15:]
        raise RuntimeError(f"seed {seed}: big_vision/train.py exited with {rc} after {wall:.0f} s; "
                           f"log {wd / 'train.log'}:\n" + "\n".join(tail))
    rows = metrics.parse_log((wd / "train.log").read_text())
    arrays = metrics.curves(rows, total_steps=total, eval_every=int(recipe["eval_every_steps"]),
                            lr=float(recipe["optimizer"]["lr"]))
    np.savez_compressed(wd / "curves.npz", **arrays)
    rec = {"seed": seed, "recipe_sha256": digest, "wall_s": wall, "threads": threads,
           "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "final_eval_prec1": float(arrays["val/prec@1"][-1]),
           "env": {k: env.get(k) for k in ENV_KEYS}}
    done.write_text(json.dumps(rec, indent=1))
    say(f"[seed {seed}] done in {wall:.0f} s, final eval prec@1 {rec['final_eval_prec1']:.4f}")
    return rec


def finished(out: Path, seeds: list[int], recipe: dict) -> list[dict]:
    """DONE records of the seeds (of this recipe) already finished in ``out``."""
    recs = []
    for s in seeds:
        done = out / "seeds" / f"seed{s}" / "DONE.json"
        if done.exists() and (out / "seeds" / f"seed{s}" / "curves.npz").exists():
            rec = json.loads(done.read_text())
            if rec.get("recipe_sha256") == recipe_digest(recipe):
                recs.append(rec)
    return recs


KEYMAP = {"training_loss": "train_loss", "l2_grads": "grad_norm", "l2_params": "param_norm",
          "l2_updates": "update_norm", "global_schedule": "schedule", "lr": "lr",
          "val/prec@1": "eval_accuracy", "val/loss": "eval_loss"}


def combine(out: Path, seeds: list[int]) -> dict[str, np.ndarray]:
    """Stack the per-seed curves into [K, steps] / [K, evals] arrays (fixture key names: KEYMAP)."""
    per = []
    for s in seeds:
        with np.load(out / "seeds" / f"seed{s}" / "curves.npz") as z:
            per.append({k: z[k] for k in z.files})
    arrays = {"seeds": np.asarray(seeds, np.int64), "step": per[0]["step"].astype(np.int64),
              "eval_step": per[0]["eval_step"].astype(np.int64)}
    for src, dst in KEYMAP.items():
        arrays[dst] = np.stack([p[src] for p in per]).astype(np.float32 if dst != "lr" else np.float64)
    return arrays


def versions() -> dict:
    from importlib import metadata
    out = {"python": sys.version.split()[0]}
    for dist in ("tensorflow-cpu", "tensorflow", "jax", "jaxlib", "flax", "optax", "numpy", "clu",
                 "ml-collections", "pillow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def provenance(recipe: dict, data: Path, data_digest: str | None, classes: list[str], recs: list[dict],
               bv: dict) -> dict:
    """What ran: recipe (whole, and its sha256), big_vision commit, versions, CPU, pinned env, data."""
    # The environment the seeds actually ran with (recorded per seed since PYTHONHASHSEED was pinned; older
    # records: the same pins without PYTHONHASHSEED).
    env = recs[0].get("env") if recs and recs[0].get("env") else {
        **{k: env_for_seed(1).get(k) for k in ENV_KEYS}, "PYTHONHASHSEED": None}
    return {
        **bv,
        "versions": versions(),
        "recipe": recipe,
        "recipe_sha256": recipe_digest(recipe),
        "cpu": cpu_info(),
        "env": env,
        # In the parity.store format; the seed processes ran with the variable pinned to 0 (their log has no
        # "oneDNN custom operations are on" line).
        "onednn": {"TF_ENABLE_ONEDNN_OPTS": env.get("TF_ENABLE_ONEDNN_OPTS"),
                   "mode": "off" if env.get("TF_ENABLE_ONEDNN_OPTS") == "0" else "unknown"},
        "data": {"path": str(data), "sha256": data_digest, "classes": classes},
        "seconds_per_seed": {str(r["seed"]): round(r["wall_s"], 1) for r in recs},
        "trainer": "big_vision/train.py, unchanged, via reference.dynamics.launch",
        "generator_args": {"recipe_version": recipe.get("version"), "recipe_sha256": recipe_digest(recipe),
                           "seeds": [r["seed"] for r in recs], "data_sha256": data_digest,
                           "TF_ENABLE_ONEDNN_OPTS": env.get("TF_ENABLE_ONEDNN_OPTS")},
    }

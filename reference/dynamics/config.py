"""recipe.json -> big_vision config (a plain dict; ``bv_config.get_config`` wraps it in a ConfigDict).

The structure is configs/vit_s16_i1k.py's, key for key: the same pp ops in the same order, onehot +
keep, ``archive.randaug`` in pp_modules, scale_by_adam with a bf16 first moment, clip 1.0, kernel-only wd
(big_vision's default ``wd_mults``), warmup + cosine, mixup p, and the classification evaluator. What
differs is size (recipe) and data source: big_vision's jsonl DataSource reading our ImageFolder.

Two input keys are not in vit_s16_i1k.py and only pin what train.py leaves nondeterministic:
``num_parallel_calls=1`` (a parallel tf.data map draws its stateful random ops in thread-scheduling order;
one call at a time makes the draws follow the seeded order) and ``shuffle_buffer_size`` = the dataset size.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

# vit_s16_i1k.py lists ["ops_general", "ops_image", "ops_text", "archive.randaug"]; ops_text only registers
# text ops (none in this pp) and imports sentencepiece, so it is left out.
PP_MODULES = ["ops_general", "ops_image", "archive.randaug"]


def pp_strings(recipe: dict) -> tuple[str, str]:
    """(train pp, eval pp) in big_vision's syntax, from the recipe's pp fields."""
    pp, n = recipe["pp"], int(recipe["data"]["classes"])
    lo, hi = pp["value_range"]
    area_min = round(float(pp["inception_area_min"]) * 100, 6)   # big_vision's op takes percent
    area = f", area_min={area_min:g}" if area_min != 5 else ""
    common = f'|value_range({lo:g}, {hi:g})|onehot({n}, key="label", key_result="labels")|keep("image", "labels")'
    train = f"decode_jpeg_and_inception_crop({int(pp['crop_size'])}{area})"
    if pp.get("flip_lr", True):
        train += "|flip_lr"
    if int(pp.get("randaug_magnitude", 0)):
        train += f"|randaug({int(pp['randaug_num_layers'])},{int(pp['randaug_magnitude'])})"
    ev = f"decode|resize_small({int(pp['eval_resize_small'])})|central_crop({int(pp['eval_central_crop'])})"
    return train + common, ev + common


def translate(recipe: dict, *, seed: int, train_jsonl: str, val_jsonl: str, data_root: str,
              n_train: int) -> dict:
    """The big_vision config for one seed of the recipe."""
    m, o = recipe["model"], recipe["optimizer"]
    train_pp, eval_pp = pp_strings(recipe)
    src = lambda fname: {"name": "bv:jsonl", "fname": str(fname), "fopen_keys": {"image": str(data_root)}}
    p = int(m["patch_size"])
    return {
        "seed": int(seed),
        "total_steps": int(recipe["total_steps"]),
        "num_classes": int(recipe["data"]["classes"]),
        "loss": o["loss"],
        "input": {
            "data": src(train_jsonl),
            "batch_size": int(recipe["batch_size"]),
            "cache_raw": True,
            "shuffle_buffer_size": int(n_train),
            "num_parallel_calls": 1,
            "pp": train_pp,
        },
        "pp_modules": list(PP_MODULES),
        "log_training_steps": int(recipe.get("log_every_steps", 1)),
        "model_name": m["name"],
        "model": {
            "width": int(m["width"]), "depth": int(m["depth"]), "mlp_dim": int(m["mlp_dim"]),
            "num_heads": int(m["num_heads"]), "patch_size": [p, p],
            "rep_size": m["rep_size"], "pool_type": m["pool_type"], "posemb": m["posemb"],
            "head_zeroinit": bool(m["head_zeroinit"]), "dropout": float(m.get("dropout", 0.0)),
        },
        "grad_clip_norm": float(o["grad_clip_norm"]),
        "optax_name": o["optax_name"],
        "optax": {"mu_dtype": o["mu_dtype"]},
        "lr": float(o["lr"]),
        "wd": float(o["wd"]),
        "schedule": {"warmup_steps": int(o["warmup_steps"]), "decay_type": o["decay_type"]},
        "mixup": {"p": float(recipe["mixup"]["p"]), "fold_in": None},
        "evals": {
            "val": {
                "type": "classification",
                "data": src(val_jsonl),
                "pp_fn": eval_pp,
                "loss_name": o["loss"],
                "log_steps": int(recipe["eval_every_steps"]),
                "batch_size": int(recipe.get("eval_batch_size", recipe["batch_size"])),
            },
        },
    }


def image_folder(root: str | Path) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """List an ImageFolder (train/<class>/*, val/<class>/*): sorted class names (= label order, as
    torchvision's ImageFolder and torch_impl's folder listing) and per split the sorted (path, label)."""
    root = Path(root)
    exts = (".jpg", ".jpeg", ".png", ".JPEG", ".JPG")
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise FileNotFoundError(f"{root}: expected an ImageFolder with train/<class>/*.jpg and val/<class>/*.jpg "
                                "(generate one with `parity dynamics data --out DIR`)")
    classes = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
    out = {}
    for split in ("train", "val"):
        rows = []
        for label, c in enumerate(classes):
            d = root / split / c
            files = sorted(f for f in d.iterdir() if f.suffix in exts) if d.is_dir() else []
            rows += [(f.relative_to(root).as_posix(), label) for f in files]
        if not rows:
            raise FileNotFoundError(f"{root}/{split}: no images")
        out[split] = rows
    return classes, out


def write_jsonl(rows, path: Path) -> None:
    """Atomically (several seed processes may share one --out folder and read it while another writes)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps({"image": rel, "label": lab}) + "\n" for rel, lab in rows))
    os.replace(tmp, path)

"""reference/dynamics: recipe -> big_vision config, the absl-log parser (on a recorded train.py log),
and (live) a short seed of big_vision's own train.py, run twice to show it is reproducible."""
from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parity.dynamics import load_recipe
from reference.dynamics import config as bvcfg
from reference.dynamics import metrics
from reference.dynamics.run import parse_seeds

DATA = Path(__file__).parent / "data" / "dynamics"
REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------- config translation
def translated(recipe=None, seed=3):
    return bvcfg.translate(recipe or load_recipe(), seed=seed, train_jsonl="/d/train.jsonl",
                           val_jsonl="/d/val.jsonl", data_root="/data", n_train=3000)


def test_pp_strings_follow_vit_s16_i1k():
    r = load_recipe()
    train, ev = bvcfg.pp_strings(r)
    crop, n = r["pp"]["crop_size"], r["data"]["classes"]
    common = ["value_range(-1, 1)", f'onehot({n}, key="label", key_result="labels")', 'keep("image", "labels")']
    # vit_s16_i1k.py: decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2,10) + pp_common
    assert train.split("|") == [f"decode_jpeg_and_inception_crop({crop})", "flip_lr", "randaug(2,10)"] + common
    # vit_s16_i1k.py eval: decode|resize_small(256)|central_crop(224) + pp_common
    assert ev.split("|") == [f"decode", f"resize_small({r['pp']['eval_resize_small']})",
                             f"central_crop({r['pp']['eval_central_crop']})"] + common
    r2 = copy.deepcopy(r)
    r2["pp"].update(inception_area_min=0.08, randaug_magnitude=0, flip_lr=False)
    assert bvcfg.pp_strings(r2)[0].split("|")[0] == f"decode_jpeg_and_inception_crop({crop}, area_min=8)"
    assert "randaug" not in bvcfg.pp_strings(r2)[0] and "flip_lr" not in bvcfg.pp_strings(r2)[0]


def test_translate_maps_every_recipe_field():
    r = load_recipe()
    c = translated(r)
    o, m = r["optimizer"], r["model"]
    assert c["seed"] == 3 and c["total_steps"] == r["total_steps"] and c["num_classes"] == r["data"]["classes"]
    assert c["input"]["batch_size"] == r["batch_size"]
    assert c["input"]["data"] == {"name": "bv:jsonl", "fname": "/d/train.jsonl", "fopen_keys": {"image": "/data"}}
    assert c["evals"]["val"]["data"]["fname"] == "/d/val.jsonl"
    assert c["evals"]["val"]["type"] == "classification" and c["evals"]["val"]["log_steps"] == r["eval_every_steps"]
    # the optax chain of vit_s16_i1k.py
    assert (c["optax_name"], c["optax"], c["grad_clip_norm"]) == ("scale_by_adam", {"mu_dtype": "bfloat16"}, 1.0)
    assert (c["lr"], c["wd"]) == (o["lr"], o["wd"])
    assert "wd_mults" not in c            # big_vision's default wd_mults: kernels only ('.*/kernel$')
    assert c["schedule"] == {"warmup_steps": o["warmup_steps"], "decay_type": "cosine"}
    assert c["mixup"] == {"p": r["mixup"]["p"], "fold_in": None}
    assert c["model"]["patch_size"] == [m["patch_size"]] * 2
    for k in ("width", "depth", "mlp_dim", "num_heads", "pool_type", "posemb", "rep_size", "head_zeroinit"):
        assert c["model"][k] == m[k], k
    assert c["log_training_steps"] == 1      # every step's loss / grad norm / lr is recorded
    assert c["input"]["num_parallel_calls"] == 1   # seeded pp draws happen in a fixed order
    assert "archive.randaug" in c["pp_modules"]
    json.dumps(c)                            # what bv_config.get_config reads back


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("0,2, 5-6") == [0, 2, 5, 6]
    with pytest.raises(ValueError, match="no seeds"):
        parse_seeds(",")


# ------------------------------------------------------------------------- metric log parser
def recorded():
    """A recorded 20-step train.py run (warmup 2, eval every 10 steps, lr 0.001)."""
    return metrics.parse_log((DATA / "train_log_20steps.txt").read_text())


def test_parser_reads_every_step_and_eval_from_the_log():
    rows = recorded()
    c = metrics.curves(rows, total_steps=20, eval_every=10, lr=0.001)
    assert list(c["step"]) == list(range(1, 21))
    assert list(c["eval_step"]) == [0, 10, 20]
    assert np.all(np.isfinite(c["training_loss"])) and np.all(c["l2_grads"] > 0)
    # Step-0 eval of a zero-init head: uniform logits, loss ln(10), accuracy 1/10.
    assert c["val/loss"][0] == pytest.approx(math.log(10), rel=1e-6)
    assert c["val/prec@1"][0] == pytest.approx(0.1)
    # Update s uses schedule(count=s-1): warmup from 0 over 2 steps, then cosine to 0 at step 20.
    sched = c["global_schedule"]
    assert sched[0] == 0.0 and sched[1] == 0.5 and sched[2] == 1.0
    expect = [0.5 * (1 + math.cos(math.pi * (s - 1 - 2) / (20 - 2))) for s in range(3, 21)]
    np.testing.assert_allclose(sched[2:], expect, atol=2e-7)
    np.testing.assert_array_equal(c["lr"], 0.001 * sched)


def test_metrics_file_has_the_documented_quirks():
    """Why the parser reads the log: big_vision_metrics.txt drops the step-0 eval, labels some rows with
    the next step's number, and writes the last row twice (BigVisionMetricWriter at this commit)."""
    rows = recorded()
    file_rows = metrics.metrics_file_rows(DATA / "big_vision_metrics_20steps.txt")
    assert not any(r["step"] == 0 for r in file_rows)                      # step-0 eval never written
    assert file_rows[-1] == file_rows[-2]                                    # last row written twice
    steps_in_file = [r["step"] for r in file_rows[:-1]]
    assert steps_in_file != list(range(1, 21))                              # some rows carry the next step
    # The rows are in step order, so their values are the log's, step for step:
    assert [r["training_loss"] for r in file_rows[:-1]] == [rows[s]["training_loss"] for s in range(1, 21)]


def test_parser_negative_controls():
    rows = recorded()
    del rows[7]["training_loss"]
    with pytest.raises(metrics.IncompleteRun, match="training_loss missing at 1 training steps"):
        metrics.curves(rows, total_steps=20, eval_every=10, lr=0.001)
    with pytest.raises(metrics.IncompleteRun, match="eval steps"):
        metrics.curves(recorded(), total_steps=20, eval_every=5, lr=0.001)
    assert metrics.parse_log("I1202 x.py:1] [3] shape_thing = (3, 4)\nnot a metric line") == {}


# ------------------------------------------------------------------------- live: big_vision's train.py
def _short_run(data, out, env, seed=0):
    cmd = [sys.executable, "-m", "reference.dynamics", "--data", str(data), "--out", str(out), "--seeds",
           str(seed), "--total-steps", "4", "--eval-every", "2", "--no-verify-data", "--no-store", "--nice", "0"]
    subprocess.run(cmd, check=True, cwd=REPO, env=env, timeout=900)
    with np.load(out / "reference.npz") as z:
        return {k: z[k] for k in z.files if k != "provenance"}


def _tiny_data(tmp_path):
    from parity.dynamics import data
    recipe = copy.deepcopy(load_recipe())
    recipe["data"].update(train_per_class=8, val_per_class=2)
    return data.generate(tmp_path / "data", recipe, check=False)


@pytest.mark.live
@pytest.mark.slow
def test_live_short_seed_runs(tmp_path, big_vision_env):
    a = _short_run(_tiny_data(tmp_path), tmp_path / "a", big_vision_env)
    assert a["train_loss"].shape == (1, 4) and list(a["eval_step"]) == [0, 2, 4]
    assert a["train_loss"][0, 0] == pytest.approx(math.log(10), rel=1e-5)      # zero-init head
    assert np.all(np.isfinite(a["grad_norm"])) and np.all(a["grad_norm"] > 0)


@pytest.mark.live
@pytest.mark.slow
def test_live_short_seed_is_reproducible(tmp_path, big_vision_env):
    """Two runs of one seed are bit-identical: np.random, tf.random, PYTHONHASHSEED seeded, one pp thread,
    single-threaded XLA/TF, and the inception crop's box sampler given an op seed (big_vision calls it with
    seed=0, which TF seeds from the OS; before that pin two runs differed from step 1's gradient norm)."""
    root = _tiny_data(tmp_path)
    a = _short_run(root, tmp_path / "a", big_vision_env)
    b = _short_run(root, tmp_path / "b", big_vision_env)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{k} differs between two runs of seed 0")


def test_cli_bad_input_is_one_clear_line(tmp_path, monkeypatch, capsys):
    from reference.dynamics.__main__ import main
    monkeypatch.delenv("BIG_VISION_DIR", raising=False)
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "BIG_VISION_DIR is not set" in capsys.readouterr().err
    fake = tmp_path / "bv"
    (fake / "big_vision" / "pp").mkdir(parents=True)
    (fake / "big_vision" / "pp" / "autoaugment.py").write_text("")
    monkeypatch.setenv("BIG_VISION_DIR", str(fake))
    assert main(["--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "o")]) == 2
    assert "generated images missing" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "o"), "--no-verify-data"]) == 2
    assert "expected an ImageFolder" in capsys.readouterr().err
    bad = tmp_path / "r.json"
    bad.write_text("{")
    assert main(["--recipe", str(bad), "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_box_sampler_pin_passes_a_nonzero_op_seed():
    """reference.box_sampler.pin (launch pins seed + 1): big_vision's unseeded calls get the pinned op seed, a caller's own seed is
    kept, and 0 (TF's "seed from the OS") is refused."""
    from types import SimpleNamespace

    from reference import box_sampler
    seen = []
    tf = SimpleNamespace(image=SimpleNamespace(sample_distorted_bounding_box=lambda *a, seed=0, **k: seen.append(seed)))
    restore = box_sampler.pin(tf, 8)
    tf.image.sample_distorted_bounding_box("shape", "boxes", area_range=(0.05, 1))
    tf.image.sample_distorted_bounding_box("shape", "boxes", seed=3)
    assert seen == [8, 3]
    with pytest.raises(ValueError):
        box_sampler.pin(tf, 0)
    restore()
    tf.image.sample_distorted_bounding_box('shape', 'boxes')
    assert seen == [8, 3, 0]


@pytest.mark.live
@pytest.mark.slow
def test_live_mixup_draws_are_train_py_s(tmp_path, big_vision_env):
    """reference.dynamics.mixup.draws (recorded as mixup_a) = the coefficients train.py drew, logged inside its
    jitted update (u.get_mixup wrapped from outside big_vision). Bar 2**-20 (8 ulp of 1.0): the same float32
    Beta sampler compiled in another fusion (jit+vmap here, jit+shard_map there) may round its log/exp chain
    differently; a wrong key derivation is off by ~0.1 on most steps."""
    from reference.dynamics import mixup
    root = _tiny_data(tmp_path)
    _short_run(root, tmp_path / "a", big_vision_env)        # writes the seed's bv_config.json
    cfg = tmp_path / "a" / "seeds" / "seed0" / "bv_config.json"
    out = tmp_path / "a_logged.npy"
    env = dict(big_vision_env, PYTHONPATH=str(REPO), TF_ENABLE_ONEDNN_OPTS="0", JAX_PLATFORMS="cpu",
               PYTHONHASHSEED="0")
    subprocess.run([sys.executable, str(REPO / "tests" / "live_mixup_child.py"), "0",
                    f"{REPO / 'reference' / 'dynamics' / 'bv_config.py'}:{cfg}", str(tmp_path / "wd"), str(out)],
                   check=True, cwd=REPO, env=env, timeout=900)
    logged = np.load(out)
    p = float(load_recipe()["mixup"]["p"])
    assert logged.size == 4
    np.testing.assert_allclose(mixup.draws(0, 4, p), logged, rtol=0, atol=2.0 ** -20)
    assert np.abs(mixup.draws(1, 4, p) - logged).max() > 1e-3      # another seed's draws are not these

"""Config overrides and `parity train` (the parity gate, --skip-parity, --print-config)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from parity import cli
from torch_impl import config as C


def test_config_has_big_vision_fields_and_values():
    cfg = C.get_config("vit_s16_i1k")
    assert (cfg.input.batch_size, cfg.total_epochs, cfg.lr, cfg.wd, cfg.grad_clip_norm) == (1024, 90, 0.001, 0.0001, 1.0)
    assert (cfg.schedule.warmup_steps, cfg.schedule.decay_type, cfg.optax.mu_dtype) == (10_000, "cosine", "bfloat16")
    assert (cfg.mixup.p, cfg.input.pp.randaug_num_layers, cfg.input.pp.randaug_magnitude) == (0.2, 2, 10)
    assert (cfg.input.pp.inception_area_min, cfg.model.rep_size, cfg.model.pool_type, cfg.model.posemb) == \
        (0.05, False, "gap", "sincos2d")
    assert cfg.train_fraction() == 0.99 and cfg.input.data.split == "train[:99%]"


def test_overrides_are_typed():
    cfg = C.apply_overrides(C.get_config("vit_s16_i1k"),
                            ["lr=3e-3", "--config.input.batch_size=4_096", "model.rep_size=true",
                             "config.mixup.fold_in=none", "total_steps=10", "input.data.split=train"])
    assert cfg.lr == 0.003 and cfg.input.batch_size == 4096 and cfg.model.rep_size is True
    assert cfg.mixup.fold_in is None and cfg.total_steps == 10 and cfg.train_fraction() == 1.0
    C.set_key(cfg, "model.rep_size", "768")
    assert cfg.model.rep_size == 768


@pytest.mark.parametrize("override, message", [
    ("schedule.warmup_step=5", "Did you mean: schedule.warmup_steps"),
    ("warmup_steps=5", "schedule.warmup_steps"),
    ("input.batchsize=5", "input.batch_size"),
    ("lr=fast", "'lr' expects float"),
    ("input.batch_size=1.5", "expects int"),
    ("runtime.compile=maybe", "expects bool"),
    ("schedule=3", "is a section"),
    ("input.data.split=validation", "train[:P%]"),
    ("optax.mu_dtype=float16", "bfloat16 or float32"),
    ("lr", "key=value"),
])
def test_bad_overrides_are_clear_errors(override, message):
    with pytest.raises(C.ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        C.apply_overrides(C.get_config("vit_s16_i1k"), [override])


def test_print_config_and_cli_errors(capsys):
    assert cli.main(["train", "--data", "/x", "--print-config", "--set", "lr=0.002", "--config.seed", "7"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["lr"] == 0.002 and d["seed"] == 7 and d["input"]["batch_size"] == 1024 and d["total_epochs"] == 90
    assert cli.main(["train", "--print-config", "--set", "schedule.warmup=1"]) == 2
    assert "Did you mean: schedule.warmup_steps" in capsys.readouterr().err
    assert C.config_from_dict(C.get_config("vit_s16_i1k").to_dict()) == C.get_config("vit_s16_i1k")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_folder")
    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("val", 2)):
        for c in range(2):
            (root / split / f"c{c}").mkdir(parents=True)
            for j in range(n):
                img = np.clip(np.full((20, 20, 3), 60 + 120 * c) + rng.normal(0, 20, (20, 20, 3)), 0, 255)
                Image.fromarray(img.astype(np.uint8)).save(root / split / f"c{c}" / f"{j}.JPEG", format="JPEG")
    return root


TINY = ["--set", "num_classes=2", "--set", "total_epochs=none", "--set", "total_steps=3", "--set", "schedule.warmup_steps=1",
        "--set", "input.batch_size=4", "--set", "input.num_workers=0", "--set", "input.data.split=train[:80%]",
        "--set", "input.pp.crop_size=16", "--set", "input.pp.eval_resize_small=18",
        "--set", "model.width=16", "--set", "model.depth=1", "--set", "model.mlp_dim=16",
        "--set", "model.num_heads=2", "--set", "model.patch_size=8", "--set", "runtime.progress=false",
        "--set", "runtime.tensorboard=false", "--set", "evals.val.log_steps=3", "--set", "evals.minival.log_steps=3"]


def test_gate_failure_refuses_to_train_and_prints_the_rows(folder, tmp_path, capsys):
    empty = tmp_path / "no_fixtures"
    empty.mkdir()
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--data", str(folder), "--workdir", str(tmp_path / "w"), "--fixtures", str(empty),
                  "--gate-family", "optimizer", *TINY])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "REFUSING TO TRAIN" in err and "optimizer" in err and "--skip-parity" in err
    assert not (tmp_path / "w").exists()
    # --skip-parity: trains anyway, warns loudly, and the metadata says so
    rc = cli.main(["train", "--data", str(folder), "--workdir", str(tmp_path / "w"), "--fixtures", str(empty),
                   "--gate-family", "optimizer", "--skip-parity", *TINY])
    assert rc == 0
    err = capsys.readouterr().err
    assert "WARNING: --skip-parity" in err
    meta = json.loads((tmp_path / "w" / "metadata.json").read_text())
    gate = meta["runs"][-1]["parity_gate"]
    assert gate["skip_parity"] is True and gate["status"].startswith("FAILED")


def test_gate_pass_then_train_and_resume_through_the_cli(folder, tmp_path, capsys):
    args = ["train", "--data", str(folder), "--workdir", str(tmp_path / "w"), "--gate-family", "vit_forward", *TINY]
    assert cli.main(args) == 0
    out = capsys.readouterr()
    assert "parity gate passed" in out.err
    summary = json.loads(out.out)
    assert summary["steps"] == 3 and summary["checkpoint"].endswith("ckpt_00000003.pt")
    assert set(summary["evals"]) == {"val@3", "minival@3"}
    meta = json.loads((tmp_path / "w" / "metadata.json").read_text())
    assert meta["runs"][-1]["parity_gate"]["status"] == "passed"
    # resume with more steps continues from step 3
    assert cli.main(args + ["--resume", "--set", "total_steps=4"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 4


def test_gate_fails_on_a_partial_store(tmp_path):
    """The gate collects like `parity check` (runner.collect): a declared fixture that is missing is a failing
    row, never a family that silently shrinks to what is left."""
    import shutil

    from parity.store import FixtureStore
    from parity.train_cli import run_gate
    src = FixtureStore().root
    store = tmp_path / "fixtures"
    shutil.copytree(src, store)
    ok, full = run_gate(["vit_forward"], fixtures=str(store), progress=False)
    assert ok and full
    victim = sorted((store / "vit_forward").glob("*.npz"))[0]
    victim.unlink()                                    # the file AND its manifest entry: a store that shrank
    manifest = json.loads((store / "manifest.json").read_text())
    del manifest["files"][f"vit_forward/{victim.name}"]
    (store / "manifest.json").write_text(json.dumps(manifest))
    ok, partial = run_gate(["vit_forward"], fixtures=str(store), progress=False)
    assert not ok
    bad = [r for r in partial if not r.ok]
    assert bad and any(victim.name in r.detail or victim.stem in r.case for r in bad), bad[:3]

"""The training loop runs the update the optimizer family checks against big_vision (optim.step.update), and
logs what it did per step (loss, grad_norm before clipping, the lr used) to metrics.jsonl.

The loop's trajectory is replayed outside it: the same initial parameters, the same (mixed) batches it
fed its model, and N calls of loss_and_grad + update must give its final parameters bit for bit. A loop
that re-implemented the update (e.g. the schedule stepped before the optimizer) would differ; the test
shows it does by replaying that mistake too.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

from torch_impl.config import apply_overrides, get_config
from torch_impl.data.datasets import synthetic_splits
from torch_impl.optim.schedule import big_vision_lr
from torch_impl.optim.step import loss_and_grad, update
from torch_impl.train import loop

STEPS = 4


def _cfg():
    return apply_overrides(get_config("vit_s16_i1k"), {
        "total_epochs": None, "total_steps": STEPS, "num_classes": 4, "seed": 3,
        "input.batch_size": 8, "input.num_workers": 0, "input.data.split": "train",
        "input.pp.crop_size": 16, "input.pp.eval_resize_small": 18, "input.pp.inception_area_min": 0.5,
        "input.pp.randaug_magnitude": 5, "runtime.device": "cpu",
        "model.variant": "Ti/4", "model.width": 16, "model.depth": 1, "model.mlp_dim": 32, "model.num_heads": 2,
        "lr": 0.02, "schedule.warmup_steps": 2, "mixup.p": 0.2, "grad_clip_norm": 0.05,
        "log_training_steps": 2, "ckpt_steps": 0, "runtime.progress": False, "runtime.tensorboard": False,
        "evals.val.log_steps": 0, "evals.minival.log_steps": 0,
    })


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One loop run with its model's inputs, its loss targets and its initial parameters recorded."""
    cfg = _cfg()
    seen = {"x": [], "y": [], "init": None}
    mp = pytest.MonkeyPatch()
    orig_build, orig_xent = loop.build_model, loop.softmax_xent

    def build_model(c):
        m = orig_build(c)
        seen["init"] = {k: v.clone() for k, v in m.state_dict().items()}
        m.register_forward_pre_hook(lambda mod, args: seen["x"].append(args[0].detach().clone()))
        return m

    def softmax_xent(logits, labels, **kw):
        seen["y"].append(labels.detach().clone())
        return orig_xent(logits, labels, **kw)

    mp.setattr(loop, "build_model", build_model)
    mp.setattr(loop, "softmax_xent", softmax_xent)
    try:
        splits = synthetic_splits(cfg, n_train=64, n_val=8, seed=cfg.seed)
        workdir = tmp_path_factory.mktemp("loop")
        result = loop.train(cfg, splits, workdir, echo=lambda *a, **k: None)
    finally:
        mp.undo()
    final = torch.load(result.checkpoint, map_location="cpu", weights_only=False)["model"]
    records = [json.loads(ln) for ln in (workdir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    return cfg, seen, final, records, result


def _replay(cfg, seen, *, schedule_first: bool = False):
    model = loop.build_model(cfg)
    model.load_state_dict(seen["init"])
    optimizer, scheduler = loop.build_optimizer(cfg, model, STEPS)
    model.train()
    for x, y in zip(seen["x"], seen["y"]):
        loss_and_grad(model, x, y)
        if schedule_first:          # the porting mistake: the schedule advanced before the update
            scheduler.step()
            optimizer.step()
        else:
            update(optimizer, scheduler)
    return model.state_dict()


def test_the_loop_trajectory_is_n_calls_of_the_checked_update(recorded):
    cfg, seen, final, _, result = recorded
    assert len(seen["x"]) == len(seen["y"]) == STEPS and result.step == STEPS
    replay = _replay(cfg, seen)
    for name, value in final.items():
        assert torch.equal(value, replay[name]), name


def test_a_swapped_schedule_and_optimizer_order_is_seen(recorded):
    cfg, seen, final, _, _ = recorded
    swapped = _replay(cfg, seen, schedule_first=True)
    assert any(not torch.equal(final[n], swapped[n]) for n in final)


def test_the_loop_logs_loss_grad_norm_and_the_lr_used_per_step(recorded):
    cfg, _, _, records, result = recorded
    steps = {r["step"]: r for r in records if r["split"] == "train_step"}
    assert sorted(steps) == list(range(1, STEPS + 1))
    for s, r in steps.items():
        # update s uses the schedule value of s - 1: 0 at the first update (warmup from 0)
        want = big_vision_lr(s - 1, total_steps=STEPS, base=cfg.lr, warmup_steps=cfg.schedule.warmup_steps,
                             decay_type=cfg.schedule.decay_type)
        assert math.isclose(r["lr"], want, rel_tol=1e-6, abs_tol=1e-12), (s, r["lr"], want)
        assert r["loss"] == result.losses[s]
        assert math.isfinite(r["grad_norm"]) and r["grad_norm"] > 0
    assert steps[1]["lr"] == 0.0
    periodic = [r for r in records if r["split"] == "train"]
    assert periodic and all("grad_norm" in r and r["lr"] == steps[r["step"]]["lr"] for r in periodic)

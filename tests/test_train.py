"""The training loop end to end on CPU: tiny ViT, tiny generated ImageFolder (seconds per test)."""
from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch
from PIL import Image

from torch_impl.train import checkpoint as C
from torch_impl.config import ConfigError, apply_overrides, get_config, validate
from torch_impl.data.datasets import Splits, folder_splits, synthetic_splits
from torch_impl.train.loop import TrainingDiverged, train
from torch_impl.train.metrics import read_jsonl

from fp_bounds import gamma

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 220), (230, 220, 40)]


def tiny_cfg(**extra):
    over = {
        "total_epochs": None, "total_steps": 30, "num_classes": 4, "seed": 0,
        "input.batch_size": 8, "input.num_workers": 0, "input.data.split": "train[:90%]",
        "input.pp.crop_size": 16, "input.pp.eval_resize_small": 18, "input.pp.inception_area_min": 0.5,
        "input.pp.randaug_magnitude": 0,   # colour classes: Invert/Solarize would relabel them
        "model.variant": "Ti/4", "model.width": 16, "model.depth": 1, "model.mlp_dim": 32, "model.num_heads": 2,
        "lr": 0.02, "schedule.warmup_steps": 3, "mixup.p": 0.2,
        "log_training_steps": 1, "ckpt_steps": 10, "runtime.progress": False, "runtime.tensorboard": False,
        "evals.val.log_steps": 15, "evals.minival.log_steps": 15,
        "evals.val.batch_size": 16, "evals.minival.batch_size": 16,
    }
    over.update(extra)
    return apply_overrides(get_config("vit_s16_i1k"), over)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/ and val/ with 4 colour classes (JPEG and PNG files, noisy, 20..28 px)."""
    return _make_folder(tmp_path_factory.mktemp("imagefolder"))


def _make_folder(root, **jpeg_kw):
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 4)):
        for c, col in enumerate(COLOURS):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True)
            for j in range(n):
                h, w = rng.integers(20, 29, size=2)
                img = np.clip(np.array(col)[None, None] + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)
                fmt = "PNG" if j % 4 == 3 else "JPEG"
                Image.fromarray(img).save(d / f"{split}_{c}_{j}.{'png' if fmt == 'PNG' else 'JPEG'}", format=fmt,
                                          **(jpeg_kw if fmt == "JPEG" else {}))
    return root


def _quiet(*a, **k):
    pass


def test_end_to_end_loss_falls_eval_runs_checkpoint_written(folder, tmp_path):
    cfg = tiny_cfg(**{"runtime.tensorboard": True})
    splits = folder_splits(cfg, folder)
    assert len(splits.minival) == 5 and len(splits.train) == 43 and len(splits.val) == 16
    r = train(cfg, splits, tmp_path / "run", echo=_quiet)
    losses = [r.losses[s] for s in sorted(r.losses)]
    assert len(losses) == 30 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3, losses
    assert abs(losses[0] - np.log(4)) < 1e-5          # zero-init head: uniform logits at step 1
    assert {"val@15", "minival@15", "val@30", "minival@30"} <= set(r.evals)
    assert r.evals["val@30"]["n"] == 16 and r.evals["minival@30"]["n"] == 5
    assert r.evals["val@30"]["prec@1"] >= 0.5
    ck = C.last_checkpoint(tmp_path / "run" / "checkpoints")
    assert ck is not None and ck.name == "ckpt_00000030.pt" and ck == r.checkpoint
    assert not list((tmp_path / "run" / "checkpoints").glob("*.tmp"))
    state = C.load_checkpoint(ck)
    assert state["step"] == 30 and "rng" in state and state["config"]["lr"] == 0.02
    # the bf16 first moment is stored as bf16 in the checkpoint
    dtypes = {v.dtype for s in state["optimizer"]["state"].values() for v in s.values() if torch.is_tensor(v)}
    assert torch.bfloat16 in dtypes
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert {r_["split"] for r_ in rows} == {"train", "train_step", "val", "minival"}
    assert [r_["step"] for r_ in rows if r_["split"] == "train_step"] == list(range(1, 31))   # every update
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    meta = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert meta["total_steps"] == 30 and meta["config"]["model"]["width"] == 16


KILLER = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[3])
import torch
from test_train import tiny_cfg, RESUME_OVERRIDES
from torch_impl.data.datasets import Splits, folder_splits
from torch_impl.train.loop import train

class KillAt(torch.utils.data.Dataset):   # SIGKILLs this process while it loads the batch of step 7
    def __init__(self, inner, at):
        self.inner, self.at, self.n = inner, at, 0
    def __len__(self):
        return len(self.inner)
    def __getitem__(self, item):
        self.n += 1
        if self.n > self.at:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner[item]

cfg = tiny_cfg(**RESUME_OVERRIDES)
sp = folder_splits(cfg, sys.argv[1])
train(cfg, Splits(KillAt(sp.train, 6 * cfg.input.batch_size), sp.minival, sp.val, 4, "killed"), sys.argv[2])
"""
RESUME_OVERRIDES = {"total_steps": 12, "ckpt_steps": 4, "evals.val.log_steps": 0, "evals.minival.log_steps": 0}


def test_kill_and_resume_is_bit_identical(folder, tmp_path):
    """A run SIGKILLed during step 7 (last checkpoint: step 4), resumed, equals an uninterrupted run."""
    import subprocess
    import sys
    cfg = tiny_cfg(**RESUME_OVERRIDES)
    full = train(cfg, folder_splits(cfg, folder), tmp_path / "a", echo=_quiet)
    p = subprocess.run([sys.executable, "-c", KILLER, str(folder), str(tmp_path / "b"), os.path.dirname(__file__)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, p.stderr[-2000:]
    assert C.last_checkpoint(tmp_path / "b" / "checkpoints").name == "ckpt_00000004.pt"
    logged = {r["step"]: r["training_loss"] for r in read_jsonl(tmp_path / "b" / "metrics.jsonl")
              if r["split"] == "train"}
    assert max(logged) == 6 and all(logged[s] == full.losses[s] for s in logged)
    res = train(cfg, folder_splits(cfg, folder), tmp_path / "b", resume=True, echo=_quiet)
    assert sorted(res.losses) == list(range(5, 13))
    for s in range(5, 13):
        assert res.losses[s] == full.losses[s], (s, res.losses[s], full.losses[s])   # bit-identical
    a = C.load_checkpoint(C.last_checkpoint(tmp_path / "a" / "checkpoints"))
    b = C.load_checkpoint(C.last_checkpoint(tmp_path / "b" / "checkpoints"))
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k, st in a["optimizer"]["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v):
                assert torch.equal(v, b["optimizer"]["state"][k][name]), (k, name)
    # the JSONL log of the resumed run has each step once (steps 5, 6 of the killed run were dropped)
    steps = [r["step"] for r in read_jsonl(tmp_path / "b" / "metrics.jsonl") if r["split"] == "train"]
    assert steps == list(range(1, 13))


def test_stop_after_step_then_resume(folder, tmp_path):
    cfg = tiny_cfg(**{**RESUME_OVERRIDES, "total_steps": 6, "ckpt_steps": 2})
    full = train(cfg, folder_splits(cfg, folder), tmp_path / "a", echo=_quiet)
    part = train(cfg, folder_splits(cfg, folder), tmp_path / "b", stop_after_step=3, echo=_quiet)
    assert part.step == 3 and part.checkpoint.name == "ckpt_00000002.pt"
    res = train(cfg, folder_splits(cfg, folder), tmp_path / "b", resume=True, echo=_quiet)
    assert [res.losses[s] for s in range(3, 7)] == [full.losses[s] for s in range(3, 7)]


def test_device_augment_without_randaug_equals_the_loader_path(folder, tmp_path):
    """runtime.device_augment moves value_range (and randaug) out of the workers: with randaug off the
    trajectory must be bit-identical to the loader-side pipeline (same crops, flips and floats)."""
    base = {"total_steps": 4, "evals.val.log_steps": 0, "evals.minival.log_steps": 0}
    loader = train(tiny_cfg(**base), folder_splits(tiny_cfg(**base), folder), tmp_path / "l", echo=_quiet)
    cfg = tiny_cfg(**base, **{"runtime.device_augment": True})
    sp = folder_splits(cfg, folder)
    assert sp.train[(0, 0)]["image"].dtype == torch.uint8      # the workers now ship uint8 crops
    dev = train(cfg, sp, tmp_path / "d", echo=_quiet)
    assert dev.losses == loader.losses


def test_dataloader_workers_train_exactly_as_the_main_process(folder, tmp_path, monkeypatch):
    """The training loop with DataLoader workers (batches written in the workers' reused shared-memory
    segments, data.batching.BatchPool, given back by the loop after each backward) follows the same trajectory
    as with the loader in the main process, bit for bit: a segment rewritten while the step still read it
    would change the losses or the parameters."""
    import torch_impl.train.loop as L
    base = {"total_steps": 8, "evals.val.log_steps": 0, "evals.minival.log_steps": 0,
            "input.pp.randaug_magnitude": 10, "runtime.grad_accum_steps": 2}
    main = train(tiny_cfg(**base), folder_splits(tiny_cfg(**base), folder), tmp_path / "main", echo=_quiet)
    given_back = []
    real_release = L.release

    def counting_release(batch):
        given_back.append("slot" in batch)
        real_release(batch)
    monkeypatch.setattr(L, "release", counting_release)
    cfg = tiny_cfg(**base, **{"input.num_workers": 2})
    workers = train(cfg, folder_splits(cfg, folder), tmp_path / "workers", echo=_quiet)
    assert len(given_back) == 16 and all(given_back)      # every micro-batch came in a pooled segment
    assert workers.losses == main.losses
    a = C.load_checkpoint(C.last_checkpoint(tmp_path / "main" / "checkpoints"))["model"]
    b = C.load_checkpoint(C.last_checkpoint(tmp_path / "workers" / "checkpoints"))["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_device_value_range_equals_the_loader_path(folder, tmp_path):
    """runtime.device_value_range: RandAugment stays in the workers, which ship uint8; the loop runs
    value_range on the device. The trajectory must be bit-identical to value_range in the workers."""
    base = {"total_steps": 4, "evals.val.log_steps": 0, "evals.minival.log_steps": 0,
            "input.pp.randaug_magnitude": 10, "runtime.device_value_range": False}
    loader = train(tiny_cfg(**base), folder_splits(tiny_cfg(**base), folder), tmp_path / "l", echo=_quiet)
    cfg = tiny_cfg(**{**base, "runtime.device_value_range": True})
    sp = folder_splits(cfg, folder)
    assert sp.train[(0, 0)]["image"].dtype == torch.uint8
    assert folder_splits(tiny_cfg(**base), folder).train[(0, 0)]["image"].dtype == torch.float32
    dev = train(cfg, sp, tmp_path / "d", echo=_quiet)
    assert dev.losses == loader.losses


def test_device_augment_fraction_splits_by_sample_and_resumes(folder, tmp_path):
    """runtime.device_augment_fraction: the samples picked by their seed skip RandAugment in the workers
    (same crop and flip) and the loop augments them; 1.0 is exactly device_augment, and a split run resumes
    bit-identically."""
    base = {"total_steps": 4, "evals.val.log_steps": 0, "evals.minival.log_steps": 0,
            "input.pp.randaug_magnitude": 10}
    dev_cfg = tiny_cfg(**base, **{"runtime.device_augment": True})
    dev = train(dev_cfg, folder_splits(dev_cfg, folder), tmp_path / "d", echo=_quiet)
    all_cfg = tiny_cfg(**base, **{"runtime.device_augment_fraction": 1.0})
    assert train(all_cfg, folder_splits(all_cfg, folder), tmp_path / "a", echo=_quiet).losses == dev.losses

    cfg = tiny_cfg(**{**base, "total_steps": 6, "ckpt_steps": 2, "runtime.device_augment_fraction": 0.5})
    sp = folder_splits(cfg, folder)
    plain = folder_splits(tiny_cfg(**{**base, "input.pp.randaug_magnitude": 0, "runtime.device_value_range": True}),
                          folder).train
    loader = folder_splits(tiny_cfg(**{**base, "runtime.device_value_range": True}), folder).train
    flags = []
    for i in range(12):
        item = sp.train[(i, 1000 + 7919 * i)]
        flags.append(item["augment_on_device"])
        ref = (plain if item["augment_on_device"] else loader)[(i, 1000 + 7919 * i)]["image"]
        assert item["image"].dtype == torch.uint8 and torch.equal(item["image"], ref), i
    assert 0 < sum(flags) < len(flags)
    full = train(cfg, sp, tmp_path / "s", echo=_quiet)
    assert full.losses[5] != train(tiny_cfg(**{**base, "total_steps": 6, "runtime.device_value_range": True}),
                                   folder_splits(cfg, folder), tmp_path / "w", echo=_quiet).losses[5]
    train(cfg, folder_splits(cfg, folder), tmp_path / "b", stop_after_step=3, echo=_quiet)
    res = train(cfg, folder_splits(cfg, folder), tmp_path / "b", resume=True, echo=_quiet)
    assert [res.losses[s] for s in range(3, 7)] == [full.losses[s] for s in range(3, 7)]
    with pytest.raises(ConfigError, match="device_augment_fraction"):
        validate(tiny_cfg(**{"runtime.device_augment_fraction": 1.5}))


def test_device_augment_randaug_resumes_bit_identically(folder, tmp_path):
    over = {"total_steps": 6, "ckpt_steps": 2, "evals.val.log_steps": 0, "evals.minival.log_steps": 0,
            "runtime.device_augment": True, "input.pp.randaug_magnitude": 10}
    cfg = tiny_cfg(**over)
    full = train(cfg, folder_splits(cfg, folder), tmp_path / "a", echo=_quiet)
    off = train(tiny_cfg(**{**over, "input.pp.randaug_magnitude": 0}), folder_splits(cfg, folder), tmp_path / "o",
                echo=_quiet)
    assert full.losses[4] != off.losses[4]     # randaug ran (zero-init head + warmup from 0: steps 1-2 are ln 4)
    train(cfg, folder_splits(cfg, folder), tmp_path / "b", stop_after_step=3, echo=_quiet)
    res = train(cfg, folder_splits(cfg, folder), tmp_path / "b", resume=True, echo=_quiet)
    assert [res.losses[s] for s in range(3, 7)] == [full.losses[s] for s in range(3, 7)]


def test_device_decode_with_an_exact_decoder_equals_the_loader_path(tmp_path, monkeypatch):
    """runtime.device_decode: the workers ship (jpeg, box, flip) for JPEGs (PNGs are decoded there); with
    the decoder swapped for big_vision's (the fast-DCT CPU decode) the trajectory is bit-identical to the
    exact loader path, so only the decoder itself differs (nvjpeg on CUDA, torchvision's CPU decode here).
    The JPEGs are 4:4:4: the loader decodes only the crop window (decode_and_crop_jpeg), the device path
    whole images then the window, and only without chroma subsampling are the two the same pixels (on
    4:2:0 the window's edge columns are upsampled differently, see docs/preprocessing.md)."""
    import torchvision.io as tio

    from torch_impl.pp import jpeg as FP
    folder = _make_folder(tmp_path / "data444", subsampling=0, quality=90)
    base = {"total_steps": 4, "evals.val.log_steps": 0, "evals.minival.log_steps": 0,
            "input.pp.randaug_magnitude": 10, "runtime.device_augment": True}
    ref = train(tiny_cfg(**base), folder_splits(tiny_cfg(**base), folder), tmp_path / "r", echo=_quiet)
    cfg = tiny_cfg(**base, **{"runtime.device_decode": True})
    sp = folder_splits(cfg, folder)
    kinds = {type(sp.train[(i, i)]["image"]).__name__ for i in range(len(sp.train))}
    assert kinds == {"dict", "Tensor"}                      # JPEGs deferred, PNGs decoded in the worker
    real = train(cfg, sp, tmp_path / "d", echo=_quiet)       # torchvision's CPU decoder (accurate DCT)
    assert all(np.isfinite(list(real.losses.values())))

    def exact(jpegs, device, mode=None):
        return [torch.from_numpy(FP.decode_jpeg_fast(j.numpy().tobytes())).permute(2, 0, 1) for j in jpegs]
    monkeypatch.setattr(tio, "decode_jpeg", exact)
    same = train(cfg, folder_splits(cfg, folder), tmp_path / "e", echo=_quiet)
    assert same.losses == ref.losses


def _recorded_train(cfg, folder, workdir, monkeypatch):
    """Run the loop, recording every micro-batch (images, labels) it feeds the model, keyed (step, k)."""
    import torch_impl.train.loop as L
    seen, real = {}, L._prepare_batch

    def record(batch, cfg_, d, plan, aug_gen, step, k, mixup, a):
        x, y = real(batch, cfg_, d, plan, aug_gen, step, k, mixup, a)
        seen[(step, k)] = (x.clone(), y.clone())
        return x, y
    monkeypatch.setattr(L, "_prepare_batch", record)
    result = train(cfg, folder_splits(cfg, folder), workdir, echo=_quiet)
    monkeypatch.setattr(L, "_prepare_batch", real)
    return result, seen


def _replay_with_train_step(cfg, seen, steps, accum):
    """The same updates through the checked functions: the seeded model and optimizer the loop builds, then
    optim.step.train_step (loss_and_grad's accumulation + update) on each step's recorded micro-batches."""
    import torch_impl.train.loop as L
    from torch_impl.optim.step import train_step
    model, optimizer, scheduler = L._build_state(cfg, L.Dist(), steps)
    losses = {}
    for s in range(1, steps + 1):
        x = torch.cat([seen[(s, k)][0] for k in range(accum)])
        y = torch.cat([seen[(s, k)][1] for k in range(accum)])
        losses[s] = train_step(model, optimizer, scheduler, x, y, accum_steps=accum)
    return losses, model.state_dict()


def test_gradient_accumulation_equals_the_whole_batch(folder, tmp_path, monkeypatch):
    """runtime.grad_accum_steps=2 runs the update of the whole batch, checked without a tolerance:

    1. the two micro-batches of each step are exactly the whole-batch run's images and labels (same bits);
    2. the loop's micro-stepping (each micro-batch loss / accum, backward, one update) gives bit for bit the
       losses and parameters of ``optim.step.train_step(accum_steps=2)`` on those batches. Exact, not
       approximate: with accum a power of two, (g1 / 2) + (g2 / 2) == (g1 + g2) / 2 in floating point
       (halving commutes with rounding), and both run the same kernels on the same micro-batch shapes.
    That train_step's accumulation equals the whole batch's gradient, to within what regrouping the batch
    reductions can change, is the derived-bound test tests/test_optim.py::
    test_gradient_accumulation_equals_one_big_batch (float64, so the bar is the float32 bound of the
    regrouped reduction). Comparing the float32 loop runs directly needs a tolerance that no bound gives:
    a matmul's float32 rows depend on its row count, and Adam turns a last-bit gradient difference on a
    noise-level gradient into an O(lr) step. A loop that forgets the / accum is the negative control."""
    steps = 4
    base = {"total_steps": steps, "evals.val.log_steps": 0, "evals.minival.log_steps": 0, "mixup.p": 0.0,
            "ckpt_steps": steps}
    whole_cfg = tiny_cfg(**base)
    _, whole = _recorded_train(whole_cfg, folder, tmp_path / "one", monkeypatch)
    acc_cfg = tiny_cfg(**base, **{"runtime.grad_accum_steps": 2})
    acc, micro = _recorded_train(acc_cfg, folder, tmp_path / "two", monkeypatch)
    assert sorted(micro) == [(s, k) for s in range(1, steps + 1) for k in range(2)]
    for s in range(1, steps + 1):
        assert micro[(s, 0)][0].shape[0] == micro[(s, 1)][0].shape[0] == whole[(s, 0)][0].shape[0] // 2
        for i in (0, 1):    # images, labels
            assert torch.equal(torch.cat([micro[(s, 0)][i], micro[(s, 1)][i]]), whole[(s, 0)][i]), (s, i)

    losses, params = _replay_with_train_step(acc_cfg, micro, steps, accum=2)
    assert [acc.losses[s] for s in range(1, steps + 1)] == [losses[s] for s in range(1, steps + 1)]
    trained = C.load_checkpoint(C.last_checkpoint(tmp_path / "two" / "checkpoints"))["model"]
    assert trained.keys() == params.keys()
    for name in params:
        assert torch.equal(trained[name], params[name]), name

    # negative controls, each must fail the comparison above: (a) the loop without the / accum (the sum of the
    # micro-batch losses; the parameters cannot show it here: clipping to norm 1 and Adam are scale invariant,
    # hence the loss comparison), (b) the second micro-batch's gradient lost (its loss counted, zero gradient)
    import torch_impl.train.loop as L
    real_xent = L.softmax_xent
    monkeypatch.setattr(L, "softmax_xent", lambda logits, y: real_xent(logits, y) * 2)
    doubled, _ = _recorded_train(acc_cfg, folder, tmp_path / "doubled", monkeypatch)
    assert [doubled.losses[s] for s in range(1, steps + 1)] != [losses[s] for s in range(1, steps + 1)]
    calls = iter(range(10 ** 6))

    def lose_second(logits, y):
        loss = real_xent(logits, y)
        return loss if next(calls) % 2 == 0 else loss.detach() + 0 * loss
    monkeypatch.setattr(L, "softmax_xent", lose_second)
    _recorded_train(acc_cfg, folder, tmp_path / "lost", monkeypatch)
    lost = C.load_checkpoint(C.last_checkpoint(tmp_path / "lost" / "checkpoints"))["model"]
    assert any(not torch.equal(lost[n], params[n]) for n in params)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, folder, workdir, overrides, out):
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world),
                       "RANK": str(rank), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    cfg = tiny_cfg(**overrides)
    r = train(cfg, folder_splits(cfg, folder), workdir, echo=_quiet)
    if rank == 0:
        torch.save({"losses": r.losses, "evals": r.evals}, out)


def _single_params(cfg, folder, tmp_path, *, seed):
    cfg = apply_overrides(cfg, {"seed": seed})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, folder_splits(cfg, folder), tmp_path / f"single_seed{seed}", echo=_quiet)
    finally:
        torch.set_num_threads(threads)
    return C.load_checkpoint(C.last_checkpoint(tmp_path / f"single_seed{seed}" / "checkpoints"))["model"]


@pytest.mark.slow
def test_ddp_two_gloo_processes_equal_one_process_same_global_batch(folder, tmp_path):
    import torch.multiprocessing as mp
    over = {"total_steps": 6, "ckpt_steps": 6, "evals.val.log_steps": 6, "evals.minival.log_steps": 0}
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(folder), str(tmp_path / "ddp"), over,
                                str(tmp_path / "ddp.pt")), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "ddp.pt")
    # one process, the same global batch of 8 as 2 micro-batches of 4 (each DDP process runs one of them:
    # the same images, the same per-micro-batch mixup roll), with 1 intra-op thread like each DDP worker
    # (the thread count changes how a reduction is split, hence its rounding)
    cfg = tiny_cfg(**over, **{"runtime.grad_accum_steps": 2})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = train(cfg, folder_splits(cfg, folder), tmp_path / "single", echo=_quiet)
    finally:
        torch.set_num_threads(threads)
    a = C.load_checkpoint(C.last_checkpoint(tmp_path / "ddp" / "checkpoints"))
    b = C.load_checkpoint(C.last_checkpoint(tmp_path / "single" / "checkpoints"))
    assert a["world_size"] == 2 and len(a["rng"]) == 2
    # Parameters bit-identical after 6 updates, not within a tolerance: each micro-batch runs the same
    # kernels on the same rows in both runs; the loop's loss / accum and DDP's gradient average are exact
    # halvings, and a sum of two float32 gradients is the same in either order. (A tolerance could not be
    # derived anyway: Adam turns a last-bit difference on a rounding-noise gradient into an O(lr) step.)
    for k in b["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    # negative control: the same single-process run with another seed (other init, order, mixup) is not
    assert not all(torch.equal(a["model"][k], v) for k, v in _single_params(cfg, folder, tmp_path, seed=1).items())
    # The logged training losses: DDP logs the float64 mean of the ranks' float32 losses, one process the
    # float32 sum of the two halves (one rounding), so they differ by at most u32 * |loss| <= gamma_2 |loss|.
    for s in range(1, 7):
        assert abs(ddp["losses"][s] - single.losses[s]) <= gamma(2) * abs(single.losses[s]), s
    # Evaluation: both sharded and summed over all 16 images. Its loss is not compared: a rank evaluates
    # batches of 8 and one process of 16, and a float32 forward's rounding depends on the batch shape, with
    # no bound derived here; the count rides in the same all_reduce as the loss sum.
    assert ddp["evals"]["val@6"]["n"] == single.evals["val@6"]["n"] == 16
    assert ddp["evals"]["val@6"]["skipped"] == single.evals["val@6"]["skipped"] == 0


class _NaNAfter(torch.utils.data.Dataset):
    def __init__(self, inner, bad_from):
        self.inner, self.bad_from = inner, bad_from

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, item):
        out = dict(self.inner[item])
        if self.bad_from <= 0:
            out["image"] = torch.full_like(out["image"], float("nan"))
        return out


def test_nan_guard_stops_and_names_the_last_good_checkpoint(tmp_path):
    cfg = tiny_cfg(**{"total_steps": 10, "ckpt_steps": 2, "evals.val.log_steps": 0, "evals.minival.log_steps": 0})
    sp = synthetic_splits(cfg, n_train=64, n_val=8)
    r = train(cfg, sp, tmp_path / "ok", echo=_quiet, stop_after_step=3)
    assert r.checkpoint.name == "ckpt_00000002.pt"
    bad = Splits(_NaNAfter(sp.train, 0), sp.minival, sp.val, sp.num_classes, "nan")
    with pytest.raises(TrainingDiverged, match=r"non-finite training loss .* step 3.*ckpt_00000002\.pt"):
        train(cfg, bad, tmp_path / "ok", resume=True, echo=_quiet)
    # the bad update was not applied and no checkpoint was written after it
    assert C.last_checkpoint(tmp_path / "ok" / "checkpoints").name == "ckpt_00000002.pt"


def test_total_steps_follow_big_vision_rounding():
    from torch_impl.train.loop import resolve_total_steps
    cfg = get_config("vit_s16_i1k")
    assert resolve_total_steps(cfg, 1_281_167) == 112_603      # train (100%)
    assert resolve_total_steps(cfg, 1_268_355) == 111_477      # train[:99%], what big_vision trains on


@pytest.mark.gpu
def test_gpu_bf16_autocast_steps(tmp_path):
    cfg = tiny_cfg(**{"total_steps": 20, "runtime.device": "cuda", "evals.val.log_steps": 20,
                      "evals.minival.log_steps": 0})
    sp = synthetic_splits(cfg, n_train=256, n_val=32)
    r = train(cfg, sp, tmp_path / "gpu", echo=_quiet)
    assert all(np.isfinite(list(r.losses.values())))
    assert r.evals["val@20"]["n"] == 32


@pytest.mark.gpu
def test_gpu_compiled_loop_with_device_augment(tmp_path):
    """The CUDA path as the 90-epoch run uses it: bf16 autocast, torch.compile, randaug on the GPU."""
    cfg = tiny_cfg(**{"total_steps": 12, "runtime.device": "cuda", "runtime.compile": True,
                      "runtime.device_augment": True, "input.pp.randaug_magnitude": 10, "input.num_workers": 2,
                      "evals.val.log_steps": 12, "evals.minival.log_steps": 0})
    sp = synthetic_splits(cfg, n_train=256, n_val=32)
    r = train(cfg, sp, tmp_path / "gpu", echo=_quiet)
    assert len(r.losses) == 12 and all(np.isfinite(list(r.losses.values())))
    assert r.evals["val@12"]["n"] == 32

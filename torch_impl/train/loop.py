"""The training loop: big_vision's train.py in torch terms, trained by steps.

One global step = one optimizer update on ``input.batch_size`` images, whatever the number of processes
(DDP through ``torchrun``) and of gradient-accumulation micro-steps: the global batch is cut into
``world_size * accum`` micro-batches; each process runs ``accum`` of them (DDP averages the gradients of
the processes; each micro-batch loss is divided by ``accum``), so the update is the one of the whole batch.

What is matched from big_vision and how:
* mixup (torch_impl.optim.objective): one coefficient per step, ``a ~ Beta(p, p)``, ``a = max(a, 1 - a)``, drawn from
  a generator seeded with (seed, step) (big_vision: ``fold_in(rng, step)``) so it is the same on every
  process and after a resume; the batch is rolled by one inside each micro-batch (big_vision rolls inside
  each device's shard, so with 8 devices x 128 it rolls within 128-image slices; micro-batches play the
  devices' role here).
* loss: torch_impl.optim.objective.softmax_xent on (mixed) one-hot labels, mean over the micro-batch.
* optimizer, clipping, weight decay, schedule: torch_impl.optim.adam.build_optimizer (see there).
* evaluation: top-1 and softmax_xent on val and minival every ``evals.<split>.log_steps`` and at the end.

Resuming (``resume=True``) restores model, optimizer (bf16 first moments included, as stored), scheduler,
the data stream position (= the step; see torch_impl.data.sampling.StepSampler) and every RNG, so the losses after a
resume are bit-identical to an uninterrupted run on the same hardware and process count.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from tqdm import tqdm

from torch_impl.config import TrainConfig, uses_cuda
from torch_impl.data.batching import release
from torch_impl.data.datasets import BAD_REASONS, Splits
from torch_impl.data.loader import assemble_batch, collate_train, make_loader
from torch_impl.data.placement import DEVICE, SPLIT, placement_for
from torch_impl.data.sampling import ShardSampler, StepSampler, mix_seed
from torch_impl.model.vit import ViT
from torch_impl.optim.adam import build_optimizer as _build
from torch_impl.optim.objective import mixup as _mixup
from torch_impl.optim.objective import sample_mixup_coefficient, softmax_xent
from torch_impl.optim.schedule import big_vision_steps
from torch_impl.optim.step import update as apply_update
from torch_impl.pp import tf_jpeg
from torch_impl.pp.backends.batched import randaugment_on_device
from torch_impl.pp.backends.numpy import resize_backend, to_value_range
from torch_impl.train import checkpoint as ckpt
from torch_impl.train.metrics import MetricsLog
from torch_impl.train.signals import StopOnSignal, TrainingAborted  # noqa: F401 - TrainingAborted re-exported


class TrainingDiverged(RuntimeError):
    """A non-finite loss or parameter; the message names the step and the last good checkpoint."""


class WorkdirInUse(ValueError):
    """A new run (neither resume nor restart) in a workdir that holds one; the message names both ways out."""


# ---------------------------------------------------------------------------- distributed
@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialized_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> Dist:
    """torchrun sets RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT; init with env://, nccl on CUDA,
    gloo on CPU. Without torchrun: one process."""
    use_cuda = uses_cuda(device)
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("runtime.device=cuda but torch sees no CUDA device")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    here = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
        here = True
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return Dist(rank, world, local, dev, here)


def _all_reduce_sum(t: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.world_size > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


# ---------------------------------------------------------------------------- pieces composed here
def build_model(cfg: TrainConfig) -> torch.nn.Module:
    m = cfg.model
    overrides = {k: getattr(m, k) for k in ("width", "depth", "mlp_dim", "num_heads", "patch_size")
                 if getattr(m, k) is not None}
    g = torch.Generator().manual_seed(cfg.seed)
    return ViT(cfg.num_classes, variant=m.variant, pool_type=m.pool_type, posemb=m.posemb, rep_size=m.rep_size,
               head_zeroinit=m.head_zeroinit, dropout=m.dropout, generator=g, **overrides)


def resolve_total_steps(cfg: TrainConfig, train_size: int) -> int:
    """big_vision ``u.steps("total", config, ntrain_img, batch_size)``: total_steps if set, else
    ``round(total_epochs * train_size / batch_size)``."""
    if cfg.total_steps is not None:
        return int(cfg.total_steps)
    return int(big_vision_steps(cfg.total_epochs, train_size, cfg.input.batch_size))


def build_optimizer(cfg: TrainConfig, model: torch.nn.Module, total_steps: int):
    return _build(model, lr=cfg.lr, wd=cfg.wd, total_steps=total_steps,
                  schedule={"warmup_steps": cfg.schedule.warmup_steps, "decay_type": cfg.schedule.decay_type},
                  grad_clip_norm=cfg.grad_clip_norm, mu_dtype=cfg.optax.mu_dtype)


def mixup_coefficient(seed: int, step: int, p: float) -> float:
    """big_vision draws the mixup coefficient from its rng folded with the step; we seed a generator with
    (seed, step): the same on every process, and after a resume."""
    return sample_mixup_coefficient(p, torch.Generator().manual_seed(mix_seed(seed, 4, step)))


def accumulation(cfg: TrainConfig, world: int) -> tuple[int, int]:
    """(accum_steps, micro_batch) per process so that world * accum * micro == input.batch_size."""
    B, rt = cfg.input.batch_size, cfg.runtime
    if rt.grad_accum_steps > 0:
        accum = rt.grad_accum_steps
    elif rt.micro_batch_size > 0:
        if B % (world * rt.micro_batch_size):
            raise ValueError(f"input.batch_size={B} is not divisible by {world} processes x "
                             f"runtime.micro_batch_size={rt.micro_batch_size}")
        accum = B // (world * rt.micro_batch_size)
    else:
        accum = 1
    if B % (world * accum):
        raise ValueError(f"input.batch_size={B} is not divisible by {world} processes x {accum} accumulation "
                         "steps; change runtime.grad_accum_steps / runtime.micro_batch_size")
    return accum, B // (world * accum)


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):   # no git, not a checkout, too slow
        return None


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model, dataset, *, batch_size: int, d: Dist, amp: torch.dtype | None, num_workers: int = 0,
             max_examples: int | None = None, seed: int = 0) -> dict:
    """top-1 accuracy and mean softmax_xent over ``dataset`` (sharded over the processes, summed exactly)."""
    n = len(dataset) if max_examples is None else min(len(dataset), max_examples)
    sampler = ShardSampler(n, rank=d.rank, world_size=d.world_size, seed=seed)
    per_rank = max(1, batch_size // d.world_size)
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=d.device)  # correct, loss, count, skipped
    for batch in make_loader(dataset, sampler, per_rank, num_workers=num_workers, pin_memory=d.device.type == "cuda"):
        x = batch["image"].to(d.device, non_blocking=True)
        y = batch["label"].to(d.device)
        with _autocast(d, amp):
            out = model(x)
        logits = (out[0] if isinstance(out, tuple) else out).float()
        onehot = F.one_hot(y, logits.shape[-1]).float()
        # rows of unreadable files (ImageFiles(on_bad="skip")) carry valid=False: not evaluated, counted
        ok = batch["valid"].to(d.device) if "valid" in batch else torch.ones_like(y, dtype=torch.bool)
        sums[0] += ((logits.argmax(-1) == y) & ok).sum().double()
        sums[1] += torch.where(ok, softmax_xent(logits, onehot, reduction=False), 0.0).sum().double()
        sums[2] += ok.sum().double()
        sums[3] += (~ok).sum().double()
        release(batch)      # done reading it: its worker may write the next batch into its segment
    _all_reduce_sum(sums, d)
    model.train()
    c, loss, cnt, skipped = sums.tolist()
    return {"prec@1": c / max(cnt, 1), "loss": loss / max(cnt, 1), "n": int(cnt), "skipped": int(skipped)}


def _autocast(d: Dist, amp: torch.dtype | None):
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=d.device.type, dtype=amp)


# ---------------------------------------------------------------------------- the loop
@dataclass
class Result:
    step: int
    total_steps: int
    losses: dict[int, float]
    evals: dict[str, dict]
    checkpoint: Path | None
    bad_images: int
    workdir: Path
    stopped: str | None = None      # "SIGINT" / "SIGTERM": stopped early by that signal, after a checkpoint
    stopped_signum: int = 0


def train(cfg: TrainConfig, splits: Splits, workdir: str | os.PathLike, *, resume: bool = False,
          restart: bool = False, metadata: dict | None = None, stop_after_step: int | None = None,
          echo=None) -> Result:
    """Train ``cfg`` on ``splits`` into ``workdir`` (checkpoints/, metrics.jsonl, tensorboard/, metadata.json).

    A workdir that holds a run needs ``resume`` (continue it) or ``restart`` (move it into
    ``workdir/archive-<time>/`` and start over); otherwise WorkdirInUse. The first SIGINT/SIGTERM finishes
    the step, writes a checkpoint and returns (``Result.stopped``); a second one raises TrainingAborted
    (torch_impl.train.signals). ``stop_after_step`` ends the process's work early (as if killed) without a
    final checkpoint: used by the resume tests. Raises TrainingDiverged on a non-finite loss.
    """
    workdir = Path(workdir)
    echo = echo or _stderr
    if resume and restart:
        raise ValueError("resume and restart exclude each other: continue the run, or archive it and start over")
    held = ckpt.describe_run(workdir)
    if held and not (resume or restart):
        raise WorkdirInUse(f"{workdir} already holds a run ({held}); resume it (--resume) or move it aside and "
                           "start over (--restart: into archive-<time>/, nothing is deleted)")
    d = setup_distributed(cfg.runtime.device)
    try:
        if held and restart and d.main:
            metadata = {**(metadata or {}), "archived_previous_run": str(ckpt.archive_run(workdir))}
            echo(f"train: --restart: the previous run ({held}) was moved into {metadata['archived_previous_run']}")
        if d.world_size > 1:
            dist.barrier()          # the archive is in place before any rank writes
        with StopOnSignal() as stop:
            return _train(cfg, splits, workdir, d, resume, metadata or {}, stop_after_step, echo, stop)
    finally:
        if d.initialized_here:
            dist.destroy_process_group()


def _build_state(cfg: TrainConfig, d: Dist, total: int):
    """The model (seeded, on the device) and big_vision's optimizer + schedule for ``total`` steps."""
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    model = build_model(cfg).to(d.device)
    if d.device.type == "cuda" and cfg.runtime.channels_last_stem:
        model.embedding.to(memory_format=torch.channels_last)
    optimizer, scheduler = build_optimizer(cfg, model, total)
    return model, optimizer, scheduler


def _prepare_batch(batch, cfg: TrainConfig, d: Dist, plan, aug_gen, step: int, k: int, mixup, a):
    """The stages of micro-batch ``k`` of ``step`` that data.placement put on the device: the assembly (and
    device decode), RandAugment for all or the flagged rows, value_range of uint8 batches; then one-hot labels
    and mixup. Returns (images, labels) for the forward pass."""
    x = assemble_batch(batch, d.device)    # (runtime.device_decode: decode + crop + flip happen here)
    if aug_gen is not None:
        # seeded by (seed, step, rank, micro-step): the same draws after a resume
        aug_gen.manual_seed(mix_seed(cfg.seed, 6, step, d.rank, k))
        ra = {"num_ops": cfg.input.pp.randaug_num_layers, "magnitude": cfg.input.pp.randaug_magnitude,
              "generator": aug_gen}
        if plan.randaug == DEVICE:
            x = randaugment_on_device(x, **ra)
        elif "augment_on_device" in batch:     # runtime.device_augment_fraction: the flagged rows
            rows = batch["augment_on_device"].nonzero().flatten().to(d.device, non_blocking=True)
            x = x.index_copy(0, rows, randaugment_on_device(x.index_select(0, rows), **ra))
    if x.dtype == torch.uint8:   # the workers shipped uint8 (device_value_range / device_augment)
        x = to_value_range(x)
    y = F.one_hot(batch["label"].to(d.device), cfg.num_classes).float()
    if mixup:
        x, y = mixup(x, y, a)
    return x, y


def _log_progress(cfg: TrainConfig, d: Dist, splits: Splits, mlog, pbar, say, losses, step, start, total, step_loss,
                  upd, bad_images, started, last_record):
    """The progress bar and, every log_training_steps, the "train" record (loss and its window mean, lr and
    grad_norm of this update, img/s overall and since the last record). Returns the new (time, step) of the
    last record."""
    B = cfg.input.batch_size
    (t0, s0), (t_log, s_log) = started, last_record
    if pbar:
        pbar.update(1)
        rate = (step - s0) * B / max(time.perf_counter() - t0, 1e-9)
        pbar.set_postfix(loss=f"{step_loss:.4f}", img_s=f"{rate:.0f}", refresh=False)
    if cfg.log_training_steps and (step % cfg.log_training_steps == 0 or step == total or step == 1):
        elapsed = time.perf_counter() - t0
        rate = (step - s0) * B / max(elapsed, 1e-9)
        window = [losses[k] for k in range(max(start + 1, step - cfg.log_training_steps + 1), step + 1)]
        avg = sum(window) / len(window)
        now = time.perf_counter()
        # img_per_sec: since this process started training (compile and warm-up included);
        # img_per_sec_window: since the previous record (the current speed).
        rec = {"training_loss": step_loss, "training_loss_avg": avg, "lr": upd.lr, "grad_norm": upd.grad_norm,
               "img_per_sec": rate, "img_per_sec_window": (step - s_log) * B / max(now - t_log, 1e-9),
               "epoch": step * B / splits.train_size, "bad_images": bad_images}
        if d.device.type == "cuda":
            rec["peak_mem_gib"] = torch.cuda.max_memory_allocated(d.device) / 2**30
        mlog.write(step, "train", rec)
        t_log, s_log = now, step
        if not pbar:
            eta = (total - step) * elapsed / max(step - s0, 1)
            say(f"step {step}/{total}: loss {step_loss:.4f} (mean of the last {len(window)}: {avg:.4f})  "
                f"{rate:.0f} img/s  ETA {eta / 60:.1f} min")
    return t_log, s_log


def _resume(cfg: TrainConfig, d: Dist, ckpt_dir: Path, model, optimizer, scheduler, say):
    """Restore model, optimizer, schedule and RNGs from the newest checkpoint; returns (start step,
    bad images so far, the checkpoint path), or (0, 0, None) when there is none."""
    start, bad_images, resumed_from = 0, 0, None
    # LAST's checkpoint; a missing or unreadable one falls back to the newest readable earlier one
    found = ckpt.load_latest(ckpt_dir, warn=lambda m: say(f"train: WARNING: {m}"))
    if found is None:
        say(f"train: --resume but no checkpoint in {ckpt_dir}; starting from step 0")
    else:
        resumed_from, state = found
        _check_compatible(cfg, state, resumed_from)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, bad_images = int(state["step"]), int(state.get("bad_images", 0))
        rngs = state["rng"]
        ckpt.set_rng_state(rngs[d.rank] if len(rngs) == d.world_size else rngs[0])
        say(f"train: resumed from {resumed_from} at step {start}")
    return start, bad_images, resumed_from


def _run_evals(cfg: TrainConfig, splits: Splits, fwd, d: Dist, amp, step: int, total: int, evals: dict,
               mlog, pbar, say) -> None:
    """The val and minival evaluations due at ``step`` (every evals.<split>.log_steps, and at the end)."""
    for name, ds in (("val", splits.val), ("minival", splits.minival)):
        ecfg = getattr(cfg.evals, name)
        if ds is None or not ecfg.log_steps or not (step % ecfg.log_steps == 0 or step == total):
            continue
        r = evaluate(fwd, ds, batch_size=ecfg.batch_size, d=d, amp=amp, num_workers=cfg.input.num_workers,
                     max_examples=ecfg.max_examples, seed=cfg.seed)
        evals[f"{name}@{step}"] = r
        mlog.write(step, name, r)
        msg = (f"eval {name} @ {step}: prec@1 {r['prec@1']:.4f}  loss {r['loss']:.4f}  ({r['n']} images"
               + (f"; {r['skipped']} unreadable, skipped" if r.get("skipped") else "") + ")")
        (pbar.write(msg) if pbar else say(msg))


def _train(cfg, splits, workdir, d: Dist, resume, metadata, stop_after_step, echo, stop=None) -> Result:
    say = echo if d.main else (lambda *a, **k: None)
    stop = stop or StopOnSignal()
    ckpt_dir = workdir / "checkpoints"
    accum, micro = accumulation(cfg, d.world_size)
    B = cfg.input.batch_size
    total = resolve_total_steps(cfg, splits.train_size)
    amp = torch.bfloat16 if (d.device.type == "cuda" and cfg.runtime.amp_dtype == "bfloat16") else None
    if d.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    model, optimizer, scheduler = _build_state(cfg, d, total)

    start = 0
    bad_images = 0
    bad_reasons = torch.zeros(len(BAD_REASONS), dtype=torch.float64)   # this start's skips, by reason
    resumed_from = None
    if resume:
        start, bad_images, resumed_from = _resume(cfg, d, ckpt_dir, model, optimizer, scheduler, say)

    fwd = torch.compile(model) if cfg.runtime.compile else model   # evaluation uses this (no DDP)
    net = fwd
    if d.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        net = DDP(net, device_ids=[d.device.index] if d.device.type == "cuda" else None)

    if d.main:
        workdir.mkdir(parents=True, exist_ok=True)
        _write_metadata(workdir, cfg, d, splits, total, accum, micro, metadata, resumed_from, start)
    mlog = MetricsLog(workdir, enabled=d.main, tensorboard=cfg.runtime.tensorboard, wandb=cfg.runtime.wandb,
                      resume_step=start if resume else None, config=cfg.to_dict())

    plan = placement_for(cfg)   # where each pp stage runs (the workers' half is in splits.train)
    sampler = StepSampler(splits.train_size, B, seed=cfg.seed, rank=d.rank, world_size=d.world_size,
                          accum_steps=accum, start_step=start)
    loader = make_loader(splits.train, sampler, micro, num_workers=cfg.input.num_workers,
                         pin_memory=d.device.type == "cuda",
                         collate_fn=collate_train if plan.decode == DEVICE else None)
    batches = iter(loader)
    mixup = _mixup if cfg.mixup.p > 0 else None
    aug_gen = torch.Generator() if plan.randaug in (DEVICE, SPLIT) else None
    say(f"train: {splits.description}")
    say(f"train: {total} steps of {B} images ({d.world_size} process(es) x {accum} accumulation x {micro}), "
        f"device {d.device}, autocast {amp}, compile {cfg.runtime.compile}, workdir {workdir}")

    losses: dict[int, float] = {}
    evals: dict[str, dict] = {}
    last_good = stop.last_good = resumed_from
    stopped_by = 0          # the signal number all ranks agreed to stop on
    pbar = None
    if d.main and cfg.runtime.progress and sys.stderr.isatty():
        pbar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, desc="train", file=sys.stderr)
    t0, s0 = time.perf_counter(), start
    t_log, s_log = t0, start
    step = start
    net.train()
    while step < total:
        step += 1
        if stop_after_step is not None and step > stop_after_step:
            break
        stop.step = step
        a = mixup_coefficient(cfg.seed, step, cfg.mixup.p) if mixup else None
        loss_sum = torch.zeros((), device=d.device)
        bad = 0
        optimizer.zero_grad(set_to_none=True)
        for k in range(accum):
            batch = next(batches)
            bad += int(batch["bad"].sum())
            if "bad_reasons" in batch:
                bad_reasons += batch["bad_reasons"].sum(0).double()
            x, y = _prepare_batch(batch, cfg, d, plan, aug_gen, step, k, mixup, a)
            sync = contextlib.nullcontext() if (d.world_size == 1 or k == accum - 1) else net.no_sync()
            with sync:
                with _autocast(d, amp):
                    out = net(x)
                logits = out[0] if isinstance(out, tuple) else out
                loss = softmax_xent(logits.float(), y) / accum
                loss.backward()
            # done reading this batch (on the CPU device x may be the worker's shared segment itself, read
            # until the backward): its worker may write a later batch into it (data.batching.BatchPool)
            release(batch)
            loss_sum += loss.detach()
        # the loss of the global batch (mean over processes), checked before the update is applied; the
        # stop flag (a SIGINT/SIGTERM on any rank) rides on the same all_reduce: every rank stops after this step
        stats = torch.stack([loss_sum, torch.tensor(float(bad), device=d.device),
                             torch.tensor(float(stop.requested), device=d.device)]).double()
        _all_reduce_sum(stats, d)
        step_loss = float(stats[0]) / d.world_size
        bad_images += int(stats[1])
        if stats[2] > 0 and not stopped_by:
            stopped_by = _agreed_signal(stop, d)
            say(f"train: {signal.Signals(stopped_by).name} received: finishing step {step}, writing its checkpoint, "
                "then exiting (a second Ctrl-C/SIGTERM aborts at once)")
        if not math.isfinite(step_loss):
            if pbar:
                pbar.close()
            mlog.close()
            raise TrainingDiverged(
                f"non-finite training loss ({step_loss}) at step {step}; the update was NOT applied. "
                + (f"Last good checkpoint: {last_good} (`--resume` continues from it; lower lr or check the "
                   "data first)." if last_good else "No checkpoint was written yet (ckpt_steps="
                   f"{cfg.ckpt_steps}); lower lr or check the data and start again."))
        # optim.step.update: the one optimizer-then-schedule step, the one the optimizer family checks
        upd = apply_update(optimizer, scheduler, step_loss)
        losses[step] = step_loss
        mlog.write(step, "train_step", {"loss": step_loss, "grad_norm": upd.grad_norm, "lr": upd.lr})

        t_log, s_log = _log_progress(cfg, d, splits, mlog, pbar, say, losses, step, start, total, step_loss,
                                     upd, bad_images, (t0, s0), (t_log, s_log))
        saved = False
        if stopped_by:    # the checkpoint first: the eval below may outlast a scheduler's grace period
            last_good = stop.last_good = _save(model, optimizer, scheduler, cfg, d, ckpt_dir, step, bad_images)
            saved = True
        _run_evals(cfg, splits, fwd, d, amp, step, total, evals, mlog, pbar, say)
        if not saved and ((cfg.ckpt_steps and step % cfg.ckpt_steps == 0) or step == total):
            last_good = _save(model, optimizer, scheduler, cfg, d, ckpt_dir, step, bad_images) or last_good
            stop.last_good = last_good
        if stopped_by:
            break
    if pbar:
        pbar.close()
    mlog.close()
    del batches
    reasons = bad_reasons.to(d.device)
    _all_reduce_sum(reasons, d)
    summary = bad_images_summary(dict(zip(BAD_REASONS, (int(v) for v in reasons.tolist()))), total=bad_images)
    if summary:
        say(summary)
    done = max(losses) if losses else start
    name = signal.Signals(stopped_by).name if stopped_by else None
    return Result(done, total, losses, evals, last_good, bad_images, workdir, name, stopped_by)


def _agreed_signal(stop: StopOnSignal, d: Dist) -> int:
    """The signal to report once the ranks agreed to stop: this rank's, else the largest number any rank got
    (all ranks call this at the same step, so the extra collective is matched)."""
    sig = torch.tensor(float(stop.signum or 0), device=d.device)
    if d.world_size > 1:
        dist.all_reduce(sig, op=dist.ReduceOp.MAX)
    return stop.signum or int(sig)


def bad_images_summary(reasons: dict[str, int], *, total: int | None = None) -> str | None:
    """The run summary line for skipped training images, by reason (torch_impl.data.datasets.BAD_REASONS);
    ``total`` also counts skips before a resume (the reasons are this start's). None when nothing was skipped."""
    n = sum(reasons.values())
    total = n if total is None else total
    if not total:
        return None
    why = {"truncated": "truncated (big_vision's decode_and_crop_jpeg fails: the crop needs rows past the "
                        "end of the file)",
           "corrupt": "corrupt (the JPEG decoder rejects the data)", "not_an_image": "not an image",
           "unreadable": "unreadable (I/O error)"}
    parts = [f"{v} {why.get(k, k)}" for k, v in reasons.items() if v]
    since = "" if total == n else f"; {n} since this start:"
    return (f"train: {total} image(s) skipped and replaced by the next file{since or ':'} " + ", ".join(parts) +
            " (each named in a warning above)")


def jpeg_decoder_info() -> dict:
    """Which crop-window JPEG decode this run uses (recorded in metadata.json): big_vision's own
    (torch_impl.pp.tf_jpeg), or the decode-then-slice fallback and why (also warned about, loudly)."""
    st = tf_jpeg.status()
    if st.available:
        return {"crop_window_decode": "exact (TF's decode_and_crop_jpeg)", "libjpeg_turbo": st.version,
                "library": st.library, "resize": resize_backend()}
    tf_jpeg.warn_fallback()
    return {"crop_window_decode": "FALLBACK: decode-then-slice (differs from big_vision at window edges)",
            "reason": st.reason, "resize": resize_backend()}


def _stderr(*args, **kw):
    print(*args, file=sys.stderr, flush=True, **kw)


def _save(model, optimizer, scheduler, cfg, d: Dist, ckpt_dir: Path, step: int, bad_images: int) -> Path | None:
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise TrainingDiverged(f"parameter {name} is non-finite at step {step}; not writing a checkpoint. "
                                   f"Last good checkpoint: {ckpt.last_checkpoint(ckpt_dir)}")
    rng = ckpt.rng_state()
    if d.world_size > 1:
        gathered = [None] * d.world_size
        dist.all_gather_object(gathered, rng)
    else:
        gathered = [rng]
    path = None
    if d.main:
        path = ckpt.save_checkpoint({
            "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": gathered, "bad_images": bad_images,
            "config": cfg.to_dict(), "world_size": d.world_size,
        }, ckpt_dir, step, keep=cfg.runtime.keep_checkpoints)
    if d.world_size > 1:
        dist.barrier()
    return path or ckpt.ckpt_path(ckpt_dir, step)


def _check_compatible(cfg: TrainConfig, state: dict, path: Path) -> None:
    old = state.get("config", {})
    changed = []
    for key in ("seed", "input.batch_size", "model.variant", "num_classes", "lr", "wd"):
        a, b = old, cfg.to_dict()
        for part in key.split("."):
            a, b = a.get(part) if isinstance(a, dict) else None, b.get(part) if isinstance(b, dict) else None
        if a is not None and a != b:
            changed.append(f"{key}: checkpoint {a!r}, now {b!r}")
    if changed:
        print(f"train: WARNING: resuming {path} with a different config ({'; '.join(changed)}); the run will "
              "not be identical to an uninterrupted one", file=sys.stderr)


def _write_metadata(workdir: Path, cfg, d: Dist, splits: Splits, total, accum, micro, metadata, resumed_from,
                    start) -> None:
    path = workdir / "metadata.json"
    # the run history is appended to (a resume, a --resume that found no checkpoint); --restart archived
    # the previous run's metadata.json with the rest of it
    runs = json.loads(path.read_text()).get("runs", []) if path.exists() else []
    runs.append({
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "start_step": start,
        "resumed_from": str(resumed_from) if resumed_from else None, "argv": sys.argv,
        "world_size": d.world_size, "accum_steps": accum, "micro_batch": micro, "device": str(d.device),
        "device_name": torch.cuda.get_device_name(d.device) if d.device.type == "cuda" else platform.processor(),
        "torch": torch.__version__, "python": platform.python_version(), "git_commit": _git_commit(),
        "jpeg_decoder": jpeg_decoder_info(),
        **metadata,
    })
    ckpt.atomic_write_text(json.dumps({"config": cfg.to_dict(), "total_steps": total, "data": splits.description,
                                       "runs": runs}, indent=1, default=str), path)

"""Training checkpoints, the run files of a workdir, and the RNG states a bit-identical resume needs.

What is guaranteed (docs/training.md, "What survives what"):

* ``ckpt_<step>.pt`` is written as ``<name>.tmp``, flushed and fsynced, then ``os.replace``d into place and
  the folder fsynced; only then is ``LAST`` (big_vision's ``-LAST`` convention) replaced the same way. A
  crash at any point leaves ``LAST`` naming a complete checkpoint (or the previous one).
* Pruning keeps ``keep`` older checkpoints besides the one ``LAST`` names, chosen by the step number in the
  file name; it never deletes the file ``LAST`` names, nor one with a later step.
* :func:`load_latest` reads the checkpoint ``LAST`` names; when that file is missing or unreadable it falls
  back, with a warning, to the newest readable earlier one.
* :func:`describe_run` says whether a workdir holds a run (the loop refuses to start a new one over it),
  :func:`archive_run` moves that run aside into ``archive-<UTC time>/`` (nothing is deleted).
"""
from __future__ import annotations

import os
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

CKPT_NAME = re.compile(r"^ckpt_(\d+)\.pt$")
ARCHIVE_PREFIX = "archive-"
# the files that make a workdir "hold a run" (tensorboard/ alone does not: it has no state to lose)
RUN_FILES = ("metrics.jsonl", "metadata.json")


class CheckpointError(RuntimeError):
    """No readable checkpoint where one is needed; the message names the folder and what was tried."""


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX: the directory entry is only on disk after this)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:      # e.g. a platform without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Callable) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return path


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    return _atomic_write(Path(path), lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    _atomic_write(Path(path), lambda f: f.write(text.encode()))


def ckpt_path(ckpt_dir: str | os.PathLike, step: int) -> Path:
    return Path(ckpt_dir) / f"ckpt_{step:08d}.pt"


def checkpoint_files(ckpt_dir: str | os.PathLike) -> dict[int, Path]:
    """``{step: path}`` of the ``ckpt_<step>.pt`` files in ``ckpt_dir`` (the step read from the name)."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return {}
    out = {}
    for p in d.iterdir():
        m = CKPT_NAME.match(p.name)
        if m and p.is_file():
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def _last_name(ckpt_dir: Path) -> str | None:
    marker = ckpt_dir / "LAST"
    try:
        name = marker.read_text().strip()
    except OSError:
        return None
    return name or None


def _warn(msg: str) -> None:
    print(f"train: WARNING: {msg}", file=sys.stderr, flush=True)


def last_checkpoint(ckpt_dir: str | os.PathLike, *, warn: Callable[[str], None] = _warn) -> Path | None:
    """The checkpoint ``LAST`` names; if ``LAST`` is missing or names a missing file, the newest
    ``ckpt_<step>.pt`` by step (with a warning). None when there is no checkpoint."""
    d = Path(ckpt_dir)
    files = checkpoint_files(d)
    name = _last_name(d)
    if name is not None and (d / name).is_file():
        return d / name
    if not files:
        return None
    newest = files[max(files)]
    warn(f"{d / 'LAST'} " + (f"names {name}, which does not exist" if name else "is missing")
         + f"; using the newest checkpoint by step, {newest.name}")
    return newest


def _readable(path: Path) -> dict:
    state = load_checkpoint(path)
    m = CKPT_NAME.match(path.name)
    if not isinstance(state, dict) or not {"step", "model", "optimizer"} <= set(state):
        raise CheckpointError(f"{path}: not a training checkpoint (no step/model/optimizer)")
    if m and int(state["step"]) != int(m.group(1)):
        raise CheckpointError(f"{path}: holds step {state['step']}, its name says {int(m.group(1))}")
    return state


def load_latest(ckpt_dir: str | os.PathLike, *, warn: Callable[[str], None] = _warn
                ) -> tuple[Path, dict] | None:
    """(path, state) of the checkpoint to resume from: the one ``LAST`` names, else (missing, truncated,
    unreadable) the newest readable earlier one, with a warning naming the file skipped and why.
    None when the folder holds no checkpoint; CheckpointError when it holds only unreadable ones."""
    d = Path(ckpt_dir)
    files = checkpoint_files(d)
    name = _last_name(d)
    named = d / name if name else None
    if named is not None and named.is_file():
        m = CKPT_NAME.match(named.name)
        limit = int(m.group(1)) if m else max(files, default=0)
        order = [named] + [files[s] for s in sorted(files, reverse=True) if s < limit and files[s] != named]
    else:
        if name is not None or files:
            warn(f"{d / 'LAST'} " + (f"names {name}, which does not exist" if name else "is missing")
                 + "; falling back to the newest readable checkpoint by step")
        order = [files[s] for s in sorted(files, reverse=True)]
    if not order:
        return None
    tried = []
    for p in order:
        try:
            state = _readable(p)
        except Exception as e:  # noqa: BLE001 - truncated zip, bad pickle, wrong content: try the previous one
            tried.append(f"{p.name} ({e})")
            nxt = order[len(tried)] if len(tried) < len(order) else None
            warn(f"checkpoint {p} is unreadable ({e}); "
                 + (f"falling back to the previous one, {nxt.name}" if nxt else "no earlier checkpoint is left"))
            continue
        return p, state
    raise CheckpointError(f"{d}: no readable checkpoint ({'; '.join(tried)}); start over with --restart "
                          "(the unreadable files are archived, not deleted)")


def prune(ckpt_dir: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest checkpoints before the one ``LAST`` names (by step number).
    Never the file ``LAST`` names, never one with a later step, nothing when ``LAST`` is missing."""
    d = Path(ckpt_dir)
    name = _last_name(d)
    m = CKPT_NAME.match(name or "")
    if m is None or not (d / name).is_file():
        return []
    last = int(m.group(1))
    older = [p for s, p in sorted(checkpoint_files(d).items(), reverse=True) if s < last]
    gone = older[keep:] if keep >= 0 else []
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def save_checkpoint(state: dict, ckpt_dir: str | os.PathLike, step: int, *, keep: int = 2) -> Path:
    """Write ``ckpt_<step>.pt`` (fsynced), then point ``LAST`` at it (atomically), then prune."""
    d = Path(ckpt_dir)
    path = atomic_save(state, ckpt_path(d, step))
    atomic_write_text(path.name + "\n", d / "LAST")
    if keep > 0:
        prune(d, keep)
    for stale in d.glob("ckpt_*.pt.tmp"):    # left by a process killed while writing
        stale.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from e


# ---------------------------------------------------------------------------- the workdir's run
def describe_run(workdir: str | os.PathLike) -> str | None:
    """What run ``workdir`` holds, in words (None when it holds none: missing, empty, or only archives)."""
    w = Path(workdir)
    if not w.is_dir():
        return None
    parts = []
    files = checkpoint_files(w / "checkpoints")
    if files:
        parts.append(f"checkpoints up to step {max(files)}")
    elif (w / "checkpoints" / "LAST").exists():
        parts.append("checkpoints/LAST")
    metrics = w / "metrics.jsonl"
    if metrics.is_file():
        parts.append("metrics.jsonl")
    if (w / "metadata.json").is_file():
        parts.append("metadata.json")
    return ", ".join(parts) or None


def archive_run(workdir: str | os.PathLike) -> Path:
    """Move everything in ``workdir`` (earlier archives excepted) into ``workdir/archive-<UTC time>/``."""
    w = Path(workdir)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest, k = w / f"{ARCHIVE_PREFIX}{stamp}", 1
    while dest.exists():
        dest, k = w / f"{ARCHIVE_PREFIX}{stamp}-{k}", k + 1
    dest.mkdir(parents=True)
    for p in sorted(w.iterdir()):
        if p != dest and not (p.is_dir() and p.name.startswith(ARCHIVE_PREFIX)):
            os.replace(p, dest / p.name)
    _fsync_dir(w)
    return dest


# ---------------------------------------------------------------------------- RNG
def rng_state() -> dict:
    """Every global RNG the loop may touch: python, numpy, torch CPU and all CUDA devices."""
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])

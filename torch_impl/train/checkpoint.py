"""Atomic training checkpoints and the RNG states a bit-identical resume needs.

A checkpoint is one ``torch.save`` file ``ckpt_<step>.pt`` written as ``<name>.tmp`` then ``os.replace``d
into place (a crash mid-write never leaves a truncated checkpoint), plus a ``LAST`` file naming the newest
one, itself replaced atomically (big_vision's ``-LAST`` convention).
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def ckpt_path(ckpt_dir: str | os.PathLike, step: int) -> Path:
    return Path(ckpt_dir) / f"ckpt_{step:08d}.pt"


def last_checkpoint(ckpt_dir: str | os.PathLike) -> Path | None:
    """The checkpoint named by ``LAST`` (None when there is none)."""
    marker = Path(ckpt_dir) / "LAST"
    if not marker.exists():
        return None
    p = Path(ckpt_dir) / marker.read_text().strip()
    if not p.exists():
        raise FileNotFoundError(f"{marker} names {p.name}, which does not exist; delete {marker} to start over "
                                "or point LAST at an existing ckpt_*.pt")
    return p


def save_checkpoint(state: dict, ckpt_dir: str | os.PathLike, step: int, *, keep: int = 2) -> Path:
    path = atomic_save(state, ckpt_path(ckpt_dir, step))
    atomic_write_text(path.name + "\n", Path(ckpt_dir) / "LAST")
    if keep > 0:
        old = sorted(Path(ckpt_dir).glob("ckpt_*.pt"))[:-keep]
        for p in old:
            p.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001
        raise RuntimeError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from e


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

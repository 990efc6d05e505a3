"""Checks run before any long work (the parity gate, training, a check run): a user mistake becomes one
line naming the field or path and the fix, in seconds, instead of a traceback minutes later."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


class UsageError(Exception):
    """A mistake found before training: one line naming the field or path, and the fix."""


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe_writable(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (None when they can): creates and removes a probe file, so
    read-only mounts and permissions are caught whatever the user (root included)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".parity-write-test-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"
    return None


def check_writable_dir(path: Path, what: str) -> None:
    """``path`` is (or can be created as) a folder this process can write into; raises UsageError."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path}: exists and is not a folder; choose another {what}")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise UsageError(f"{what} {path}: {base} is a file, so the folder cannot be created; choose another {what}")
    why = _probe_writable(base)
    if why:
        raise UsageError(f"{what} {path}: cannot write into {base} ({why}); choose a writable {what}")




def check_torch_device(device: str, what: str = "--device") -> None:
    """A torch device the harness runs on: cpu, or cuda[:N] with that device present."""
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise UsageError(f"{what} {device}: not supported; use cpu or cuda (cuda:N for one GPU) - only the CPU "
                         "and CUDA paths are parity-checked")
    if kind == "cuda":
        import torch
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise UsageError(f"{what} {device}: this torch ({torch.__version__}) sees no CUDA device; use {what} cpu")
        if index and int(index) >= n:
            raise UsageError(f"{what} {device}: only {n} CUDA device(s) (cuda:0..cuda:{n - 1}) are visible")


BIG_VISION_HOW = ("big_vision is not on PyPI: check out google-research/big_vision (GitHub) and "
                  "`export BIG_VISION_DIR=/path/to/checkout` (the folder containing the `big_vision` package)")


def check_big_vision_dir(environ=os.environ) -> Path:
    """``$BIG_VISION_DIR`` is a big_vision checkout (the folder holding the ``big_vision`` package): the
    same rule the reference process applies (reference/big_vision.py), checked here without importing it, so
    the mistake is reported before any generation starts."""
    raw = environ.get("BIG_VISION_DIR")
    if not raw:
        raise UsageError(f"BIG_VISION_DIR is not set. {BIG_VISION_HOW}")
    root = Path(raw).expanduser()
    if not root.is_dir():
        raise UsageError(f"BIG_VISION_DIR={raw}: no such folder. {BIG_VISION_HOW}")
    if not (root / "big_vision" / "pp" / "autoaugment.py").is_file():
        hint = (f" It looks like the package folder itself; use its parent: BIG_VISION_DIR={root.parent}."
                if (root / "pp" / "autoaugment.py").is_file() else "")
        raise UsageError(f"BIG_VISION_DIR={raw}: no big_vision/pp/autoaugment.py under it, so it is not a "
                         f"big_vision checkout.{hint} {BIG_VISION_HOW}")
    return root

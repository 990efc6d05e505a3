"""Metrics sinks: a JSONL log (one object per line: {"step": s, "split": ..., name: value}), TensorBoard
event files, optionally wandb. Only the rank-0 process writes."""
from __future__ import annotations

import json
import math
import os
import sys
import types
from pathlib import Path


def _summary_writer(logdir: Path):
    # tensorboard imports TensorFlow when it is installed; its documented stub switch
    # (tensorboard.compat.notf) keeps TensorFlow out of the torch process.
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(str(logdir))


class MetricsLog:
    def __init__(self, workdir: str | Path, *, enabled: bool = True, tensorboard: bool = True,
                 wandb: bool = False, resume_step: int | None = None, config: dict | None = None):
        self.enabled = enabled
        self.path = Path(workdir) / "metrics.jsonl"
        self.tb = self.wandb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            self._supersede_after(resume_step)
        # Never deleted or truncated otherwise: a new run in a workdir holding one is refused (or the old run
        # archived) before this point, so an existing file is appended to.
        if tensorboard:
            self.tb = _summary_writer(Path(workdir) / "tensorboard")
        if wandb:
            try:
                import wandb as wb
            except ImportError as e:
                raise RuntimeError("runtime.wandb=true needs `pip install wandb`") from e
            self.wandb = wb.init(config=config, dir=str(workdir), resume="allow")

    @property
    def superseded_path(self) -> Path:
        return self.path.with_name("metrics.superseded.jsonl")

    def _supersede_after(self, step: int) -> None:
        """Resuming from ``step``: the lines logged after it (those steps are recomputed now) move from
        metrics.jsonl to metrics.superseded.jsonl (appended), so metrics.jsonl has each step once and nothing
        is lost. A line cut short by a kill moves too."""
        keep, moved = [], []
        for ln in self.path.read_text().splitlines():
            if not ln.strip():
                continue
            try:
                later = json.loads(ln).get("step", 0) > step
            except json.JSONDecodeError:
                later = True
            (moved if later else keep).append(ln)
        if not moved:
            return
        with open(self.superseded_path, "a") as f:
            f.write("".join(m + "\n" for m in moved))
            f.flush()
            os.fsync(f.fileno())
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write("".join(k + "\n" for k in keep))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def write(self, step: int, split: str, values: dict) -> None:
        if not self.enabled:
            return
        rec = {"step": int(step), "split": split}
        rec.update({k: (float(v) if isinstance(v, float) or hasattr(v, "item") else v) for k, v in values.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        for k, v in values.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                if self.tb is not None:
                    self.tb.add_scalar(f"{split}/{k}", v, step)
        if self.wandb is not None:
            self.wandb.log({f"{split}/{k}": v for k, v in values.items()}, step=step)

    def close(self):
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]

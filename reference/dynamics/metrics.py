"""Per-step measurements of big_vision/train.py, read from its absl log (not from its metrics file).

``BigVisionMetricWriter.measure`` logs every value synchronously as ``[<step>] <name> = <value>`` (with
ANSI colour codes around the step), right after ``step_start(step)``: those step numbers are right.
Its ``big_vision_metrics.txt`` is not trustworthy at the big_vision commit we run: ``step_end`` writes the
row in a thread that reads ``self.step`` when it runs (so some rows carry the NEXT step's number), the
step-0 eval is measured before the loop's first ``step_start`` and never written, and ``close`` writes
the last row a second time. So the log is the source; ``metrics_file_rows`` exists only to show the
difference in tests.

Rows, per big_vision/train.py:
- training step s (1..total): ``training_loss`` (mean softmax_xent of the mixed-up batch before the
  update), ``l2_grads`` (global norm of the raw gradients, before clipping), ``l2_params`` and
  ``l2_updates`` (after the update), ``global_schedule`` = the schedule multiplier used by update s,
  i.e. evaluated at optimizer count s-1 (lr = config.lr * global_schedule).
- eval at s = 0 and every ``log_steps`` and the last step: ``val/prec@1``, ``val/loss``, with the
  parameters after update s (s = 0: at init).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

_LINE = re.compile(r"\[(\d+)\]\S*\s+(\S+) = (\S+)\s*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
TRAIN_KEYS = ("training_loss", "l2_grads", "l2_params", "l2_updates", "global_schedule")
EVAL_KEYS = ("val/prec@1", "val/loss")


def parse_log(text: str) -> dict[int, dict[str, float]]:
    """{step: {name: value}} from train.py's absl log text (non-scalar measurements, logged as shapes,
    are skipped). A name logged twice at one step keeps its last value."""
    rows: dict[int, dict[str, float]] = {}
    for line in text.splitlines():
        m = _LINE.search(_ANSI.sub("", line))
        if not m:
            continue
        step, name, raw = int(m.group(1)), m.group(2), m.group(3)
        try:
            value = float(raw)
        except ValueError:
            continue                                    # e.g. a shape tuple "(3,)"
        rows.setdefault(step, {})[name] = value
    return rows


def metrics_file_rows(path: str | Path) -> list[dict]:
    """The raw rows of big_vision_metrics.txt (with its step-number quirks)."""
    return [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()]


class IncompleteRun(ValueError):
    pass


def curves(rows: dict[int, dict[str, float]], *, total_steps: int, eval_every: int, lr: float) -> dict:
    """Arrays for one seed: per training step 1..total_steps, and per eval step 0, N, 2N, ..., total."""
    steps = np.arange(1, total_steps + 1)
    out = {"step": steps}
    for k in TRAIN_KEYS:
        vals = [rows.get(int(s), {}).get(k, math.nan) for s in steps]
        missing = [int(s) for s, v in zip(steps, vals) if math.isnan(v)]
        if missing:
            raise IncompleteRun(f"{k} missing at {len(missing)} training steps (first {missing[0]}); "
                                f"log_training_steps must be 1 and the run must finish")
        out[k] = np.asarray(vals, np.float64)
    out["lr"] = lr * out["global_schedule"]
    eval_steps = sorted(set(range(0, total_steps + 1, eval_every)) | {total_steps})
    out["eval_step"] = np.asarray(eval_steps)
    for k in EVAL_KEYS:
        vals = [rows.get(s, {}).get(k, math.nan) for s in eval_steps]
        missing = [s for s, v in zip(eval_steps, vals) if math.isnan(v)]
        if missing:
            raise IncompleteRun(f"{k} missing at eval steps {missing}")
        out[k] = np.asarray(vals, np.float64)
    return out

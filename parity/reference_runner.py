"""Run the reference (big_vision) in its own process and collect its .npz outputs.

The boundary is a process boundary on purpose: TF must never share a process with torchvision (importing
TF first segfaults), and the GPU machines have no TF at all.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from parity.store import read_npz, save_npz


class ReferenceError(RuntimeError):
    """The reference subprocess failed; the message carries the tail of its stderr."""


def big_vision_dir(environ=os.environ) -> str | None:
    return environ.get("BIG_VISION_DIR") or None


ONEDNN_MODES = ("off", "on")


def run_reference(family: str, requests: Mapping[str, Mapping[str, np.ndarray]], *,
                  python: str = sys.executable, timeout: float = 3600,
                  environ: Mapping[str, str] | None = None,
                  onednn: str = "off") -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """Write one request .npz per case, run ``python -m reference generate``, read the outputs back.

    ``onednn``: TensorFlow's oneDNN mode, pinned in the child before TF loads (TF's own default depends
    on the CPU, and oneDNN's depthwise conv rounds big_vision's Sharpness differently; see
    docs/portability.md). Returns (outputs per case name, provenance dict, which records the mode).
    """
    if onednn not in ONEDNN_MODES:
        raise ValueError(f"onednn must be one of {ONEDNN_MODES}, not {onednn!r}")
    env = dict(os.environ if environ is None else environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("JAX_PLATFORMS", "cpu")
    # The project root must be importable in the child even when run from elsewhere.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory(prefix=f"parity-{family}-") as tmp:
        inp, out = Path(tmp, "in"), Path(tmp, "out")
        for name, arrays in requests.items():
            save_npz(inp / f"{name}.npz", arrays)
        cmd = [python, "-m", "reference", "generate", "--family", family, "--in", str(inp), "--out", str(out),
               "--onednn", onednn]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
            raise ReferenceError(f"the reference process for family {family!r} failed (exit {proc.returncode}):\n"
                                 f"  {' '.join(cmd)}\n{tail}")
        outputs = {name: read_npz(out / f"{name}.npz") for name in requests}
        provenance = json.loads((out / "provenance.json").read_text())
    got = provenance.get("onednn", {}).get("mode")
    if got != onednn:
        raise ReferenceError(f"the reference process for family {family!r} was asked for oneDNN {onednn} but "
                             f"TensorFlow reports oneDNN {got}: this TF build ignores TF_ENABLE_ONEDNN_OPTS")
    return outputs, provenance

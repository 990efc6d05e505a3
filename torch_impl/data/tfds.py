"""tfds datasets for the torch loop, through files: a separate process (``python -m reference.tfds_export``,
which imports TensorFlow) exports the dataset once into the ImageFolder layout; this process never imports
TensorFlow (importing it next to torchvision crashes, and GPU machines may have no TensorFlow at all)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def default_export_dir(name: str) -> Path:
    return Path(os.environ.get("VIT_PARITY_DATA", Path.home() / ".cache" / "vit-parity")) / f"tfds-{name}"


def ensure_export(name: str, *, export_dir: str | os.PathLike | None = None, data_dir: str | None = None,
                  python: str | None = None, limit: int | None = None) -> Path:
    """Return a folder with train/ and val/ for tfds dataset ``name``, exporting it first if needed."""
    out = Path(export_dir) if export_dir else default_export_dir(name)
    if (out / "EXPORT_DONE.json").exists():
        return out
    cmd = [python or sys.executable, "-m", "reference.tfds_export", "--name", name, "--out", str(out)]
    if data_dir:
        cmd += ["--data-dir", str(data_dir)]
    if limit:
        cmd += ["--limit", str(limit)]
    print(f"data: exporting tfds {name} to {out} (one time, in a separate TensorFlow process): {' '.join(cmd)}",
          file=sys.stderr, flush=True)
    r = subprocess.run(cmd)
    if r.returncode != 0 or not (out / "EXPORT_DONE.json").exists():
        raise RuntimeError(f"tfds export of {name!r} failed (exit {r.returncode}); the command was:\n  "
                           f"{' '.join(cmd)}\nit needs tensorflow + tensorflow-datasets (pip install "
                           "'vit-parity[reference]') and the prepared dataset in the tfds data_dir "
                           "(--tfds-data-dir); or pass an ImageFolder tree with --data DIR")
    return out

"""Locate and import big_vision from ``$BIG_VISION_DIR``, with our tfa shim installed first."""
from __future__ import annotations

import hashlib
import importlib
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ENV = "BIG_VISION_DIR"
HOW_TO_GET = (
    "big_vision is not on PyPI. Get a checkout of google-research/big_vision from GitHub (git clone, or "
    "`git archive` of a mirror) and point the variable at the folder that CONTAINS the `big_vision` package: "
    f"`export {ENV}=/path/to/big_vision`. Its commit is read from git, or from `$BIG_VISION_COMMIT`."
)


class BigVisionNotFound(RuntimeError):
    pass


def locate(environ=os.environ) -> Path:
    raw = environ.get(ENV)
    if not raw:
        raise BigVisionNotFound(f"{ENV} is not set. {HOW_TO_GET}")
    root = Path(raw).expanduser()
    if not root.is_dir():
        raise BigVisionNotFound(f"{ENV}={raw}: no such directory. {HOW_TO_GET}")
    if not (root / "big_vision" / "pp" / "autoaugment.py").is_file():
        hint = ""
        if (root / "pp" / "autoaugment.py").is_file():
            hint = f" It looks like the package folder itself; use its parent: {ENV}={root.parent}."
        raise BigVisionNotFound(
            f"{ENV}={raw}: no big_vision/pp/autoaugment.py under it, so this is not a big_vision checkout.{hint} "
            f"{HOW_TO_GET}")
    return root


def _commit(root: Path, environ) -> str:
    if environ.get("BIG_VISION_COMMIT"):
        return environ["BIG_VISION_COMMIT"]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        if out.returncode == 0:
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def source_digest(root: Path) -> str:
    """sha256 over big_vision's .py files (path + content): identifies the code even without git."""
    h = hashlib.sha256()
    for p in sorted((root / "big_vision").rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from importlib import metadata
    out = {"python": sys.version.split()[0]}
    for dist in ("tensorflow-cpu", "tensorflow", "jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def cpu_info(path: str = "/proc/cpuinfo") -> dict[str, str]:
    """The CPU model and its feature flags (first processor of /proc/cpuinfo; "unknown" elsewhere): which
    kernels TF and oneDNN pick (AVX2, AVX-512, VNNI, BF16, AMX) depends on them."""
    info = {"model": "unknown", "flags": "unknown", "machine": platform.machine()}
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and info["model"] == "unknown":
                    info["model"] = value.strip()
                elif key == "flags" and info["flags"] == "unknown":
                    info["flags"] = " ".join(sorted(value.split()))
                elif not line.strip() and info["flags"] != "unknown":
                    break
    except OSError:
        pass
    return info


def onednn_state() -> dict:
    """TF_ENABLE_ONEDNN_OPTS as pinned, whether the loaded TF actually runs its oneDNN kernels, and the
    XLA_FLAGS that pin JAX's CPU arithmetic (XLA's own oneDNN switch among them)."""
    state = {"TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
             "XLA_FLAGS": os.environ.get("XLA_FLAGS", "unset")}
    try:
        from tensorflow.python.util import _pywrap_util_port
        state["enabled"] = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # a TF without the probe: record what was asked for
        state["enabled"] = state["TF_ENABLE_ONEDNN_OPTS"] == "1"
    state["mode"] = "on" if state["enabled"] else "off"
    return state


@dataclass
class BigVision:
    """A handle on an importable big_vision checkout."""
    root: Path
    commit: str
    _digest: str | None = field(default=None, repr=False)

    def module(self, name: str):
        """Import ``big_vision.<name>`` (e.g. ``pp.autoaugment``)."""
        return importlib.import_module(f"big_vision.{name}")

    def provenance(self) -> dict:
        if self._digest is None:
            self._digest = source_digest(self.root)
        return {"big_vision_commit": self.commit, "big_vision_source_sha256": self._digest,
                "big_vision_dir": str(self.root), "versions": _versions(), "onednn": onednn_state(),
                "cpu": cpu_info()}


def load(environ=os.environ) -> BigVision:
    """Find big_vision, quieten TF, install the tfa shim, and make ``import big_vision`` work."""
    root = locate(environ)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import tensorflow as tf
    # big_vision's pp ops run on CPU in tf.data; keep TF off any accelerator the machine might have.
    tf.config.set_visible_devices([], "GPU")
    from reference import tfa_shim
    tfa_shim.install()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return BigVision(root=root, commit=_commit(root, environ))

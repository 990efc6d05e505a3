"""Family `dynamics`: whole-run training dynamics, big_vision's own train.py vs the torch loop (issue 16).

Reference: fixtures/dynamics/reference.npz, K = 16 seeds of big_vision/train.py on the generated 10-class
JPEG data (recipe parity/dynamics/recipe.json), recorded by `python -m reference.dynamics`.

This family is the REDUCED check that fits the default test run: REDUCED_K torch seeds of the first
REDUCED_STEPS updates of the same recipe (same schedule: the runs are the start of full runs), compared with
the reference's first REDUCED_STEPS updates of all K seeds: initial loss = ln 10, the lr schedule, and
per-step bands of loss, raw-gradient norm and parameter norm (parity.dynamics.compare). The whole-run check
(final-accuracy and late-loss equivalence tests, whole-run bands, all six controls) is
`parity dynamics check` and the `dynamics_full` test (PARITY_DYNAMICS_FULL=1).

Negative controls here: the cheapest rejected porting mistakes (PyTorch's default init), trained for
CONTROL_STEPS updates.

Torch runs are cached under $PARITY_DYNAMICS_WORKDIR (default ~/.cache/vit-parity/dynamics-runs), keyed by the
recipe, the data and the torch side's source, so a rerun without code changes trains nothing.
"""
from __future__ import annotations

import functools
import math
import os
from pathlib import Path

from parity.checks import Check

NAME = "dynamics"
# The recorded reference's seeds: 16 (the recipe's 8 left the late-loss test short of power; docs/dynamics.md)
REFERENCE_SEEDS = "0-15"
REDUCED_K = 2
REDUCED_STEPS = 20        # = the recipe's warmup: the early window of the full check
CONTROL_STEPS = 3
CONTROL_K = 2
REDUCED_CONTROLS = ("torch_init",)
STATS = ("initial_loss", "lr_schedule", "early_loss_bands", "early_grad_norm_bands", "early_param_norm_bands",
         "early_param_norm_change_bands")


def reference_workdir() -> Path:
    """Where `parity fixtures generate --family dynamics` keeps big_vision's per-seed runs (resumable)."""
    return workdir().parent / "dynamics-reference"


def generate(store, *, environ=None, onednn: str = "off") -> list[str]:
    """Record the reference curves into ``store``: `python -m reference.dynamics` in its own process (it
    runs big_vision's train.py once per seed; TF and JAX never share a process with torch), two seeds at
    a time, resumable per seed under :func:`reference_workdir` (~10 CPU-minutes per seed, K = 16;
    finished seeds are not rerun). The generated data set is made first (and sha256-checked) here."""
    import subprocess
    import sys

    from parity.dynamics import load_recipe
    from parity.dynamics.check import REFERENCE_FIXTURE, DynamicsError, ensure_data
    from parity.store import FixtureError
    if onednn != "off":
        # launch pins TF_ENABLE_ONEDNN_OPTS=0 for every seed and records it in the provenance
        raise FixtureError("the dynamics reference is recorded with oneDNN off (reference/dynamics pins it); "
                           "drop --onednn on for this family")
    try:
        data = ensure_data(load_recipe())
    except DynamicsError as e:
        raise FixtureError(f"dynamics: {e}") from None
    env = dict(os.environ if environ is None else environ)
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "reference.dynamics", "--data", str(data), "--out", str(reference_workdir()),
           "--seeds", REFERENCE_SEEDS, "--jobs", "2", "--store", str(store.root)]
    rc = subprocess.call(cmd, env=env, cwd=str(root))
    if rc:
        raise FixtureError(f"dynamics: `{' '.join(cmd[1:])}` exited with {rc} (its messages are above); finished "
                           f"seeds are kept in {reference_workdir()} and are not rerun")
    return [REFERENCE_FIXTURE]


def workdir() -> Path:
    env = os.environ.get("PARITY_DYNAMICS_WORKDIR")
    return Path(env) if env else Path.home() / ".cache" / "vit-parity" / "dynamics-runs"


@functools.lru_cache(maxsize=None)
def _outcome(store_root: str):
    from parity.dynamics.check import REFERENCE_FIXTURE, run_check
    from parity.dynamics.curves import reference_curves
    from parity.store import FixtureStore
    store = FixtureStore(store_root)
    ref = reference_curves(store.load(REFERENCE_FIXTURE), where=str(store.root / REFERENCE_FIXTURE))
    return run_check(reference=ref, workdir=workdir(), variants=("correct",) + REDUCED_CONTROLS, k=REDUCED_K,
                     steps=REDUCED_STEPS, control_k=CONTROL_K, control_steps=CONTROL_STEPS, progress=False)


def checks(store) -> list[Check]:
    from parity.dynamics.check import REFERENCE_FIXTURE
    if REFERENCE_FIXTURE not in store.entries(NAME):
        # the runner turns a family without its fixture into failing rows (never a vacuous pass)
        from parity.store import FixtureError
        raise FixtureError(f"{store.root / REFERENCE_FIXTURE}: no recorded reference curves; record them with "
                           "`BIG_VISION_DIR=... python -m reference.dynamics` (big_vision's train.py, K seeds)")
    root = str(store.root)
    out = []
    for stat in STATS:
        def compute(stat=stat):
            comp = _outcome(root).comparisons["correct"]
            s = comp.get(stat)
            return s.value, f"{comp.n_ours} torch vs {comp.n_ref} big_vision seeds, {comp.steps} updates: {s.detail}"
        out.append(Check(NAME, f"reduced:{stat}", stat, _bar(stat), compute, slow=True))
    for ctl in REDUCED_CONTROLS:
        def compute(ctl=ctl):
            comp = _outcome(root).comparisons[ctl]
            return float(len(comp.failed)), (f"{comp.n_ours} seeds x {comp.steps} updates; failed: "
                                             f"{', '.join(comp.failed) or 'nothing (not detected)'}")
        out.append(Check(NAME, f"reduced:control_{ctl}", "statistics failed", 0.0, compute, negative=True,
                         slow=True))
    return out


def _bar(stat: str) -> float:
    from parity.dynamics import compare as C
    from parity.dynamics.stats import BAND_ALLOWED_FRACTION
    if stat == "initial_loss":
        return C.INITIAL_LOSS_BAR
    if stat == "lr_schedule":
        return C.LR_BAR
    return float(max(1, math.floor(BAND_ALLOWED_FRACTION * REDUCED_STEPS)))

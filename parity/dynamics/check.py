"""Run the dynamics check end to end: data, reference curves, torch runs (cached), statistics, report.

Used by `parity dynamics check|report` and by the `dynamics` family of `parity check`.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from parity.dynamics import RecipeError, load_recipe, recipe_digest
from parity.dynamics.compare import Comparison, compare
from parity.dynamics.controls import CONTROLS
from parity.dynamics.curves import Curves, CurvesError, reference_curves

REFERENCE_FIXTURE = "dynamics/reference.npz"
# The bar: at least the augmentation and the init mistakes must be rejected. The others are run
# and reported (detected or not) without being required.
MUST_REJECT = ("tv_randaug", "rrc_crop", "torch_init")
# Seeds per negative control unless --control-k says otherwise: 8 detect RandomResizedCrop over the whole run
# (3 did not: docs/dynamics.md), and 6 controls x 8 seeds stay ~1.5 h on 2 cores.
DEFAULT_CONTROL_K = 8


class DynamicsError(RuntimeError):
    """Missing data, reference or runs; the message says which and the command that makes it."""


def shows_difference(stat) -> bool:
    """A failed statistic that shows a difference: a bar or a band (difference tests by construction), or a
    TOST whose two-sided difference test is significant. A TOST without one (or a statistic that could not
    be computed, e.g. the reference's mixup draws not explaining its loss) shows none."""
    if "p_tost" in stat.data:
        return bool(stat.data.get("detected_difference"))
    return not stat.name.endswith("_tost")


def default_data_dir(recipe: dict) -> Path:
    """Where the generated data set lives unless --data says otherwise: $PARITY_DYNAMICS_DATA, else a
    per-spec folder under ~/.cache/vit-parity (generated on first use; ~50 MB)."""
    env = os.environ.get("PARITY_DYNAMICS_DATA")
    if env:
        return Path(env)
    from parity.dynamics.data import data_spec, spec_key
    return Path.home() / ".cache" / "vit-parity" / f"dynamics-data-{spec_key(data_spec(recipe))}"


def ensure_data(recipe: dict, data_dir: str | Path | None = None, *, generate: bool = True) -> Path:
    """The data folder, generated if absent (and sha256-verified against the recorded digest)."""
    from parity.dynamics import data as D
    d = Path(data_dir) if data_dir else default_data_dir(recipe)
    if not (d / D.DONE).exists():
        if not generate:
            raise DynamicsError(f"{d}: no generated data set there; run `parity dynamics data --out {d}`")
        D.generate(d, recipe)
    try:
        D.verify(d, recipe)
    except D.DataDigestError as e:
        raise DynamicsError(str(e)) from None
    return d


def load_reference(path: str | Path | None = None, *, store_root: str | Path | None = None) -> Curves:
    """The recorded big_vision curves: ``path`` (a reference.npz) or the fixture store's
    dynamics/reference.npz (sha256-checked against the manifest). Missing/empty -> DynamicsError."""
    from parity.store import FixtureError, FixtureStore, read_npz
    try:
        if path is not None:
            arrays = read_npz(Path(path), what="Write it with `python -m reference.dynamics --out DIR`.")
            where = str(path)
        else:
            store = FixtureStore(store_root)
            arrays = store.load(REFERENCE_FIXTURE)
            where = str(store.root / REFERENCE_FIXTURE)
        return reference_curves(arrays, where=where)
    except (FixtureError, CurvesError) as e:
        raise DynamicsError(f"reference curves: {e}") from None


@dataclass
class CheckOutcome:
    recipe: dict
    reference: Curves
    runs: dict[str, Curves] = field(default_factory=dict)
    comparisons: dict[str, Comparison] = field(default_factory=dict)

    def control_verdicts(self) -> dict[str, dict]:
        """Per control: rejected only by statistics that show it DIFFERS from big_vision (a bar, a band, or an
        equivalence test whose difference test is significant). A TOST that merely fails to show
        equivalence is no detection: with few seeds an identical recipe fails it too (its
        P(identical recipe passes) is reported); such statistics are listed as ``underpowered``."""
        out = {}
        for name, c in self.comparisons.items():
            if name == "correct":
                continue
            failed = [s for s in c.stats if not s.ok]
            names = {s.name for s in c.stats}
            # With the mixup draws known, the adjusted late-loss test judges a late-loss difference: the raw
            # mean also carries the luck of the draws, which a control shares with the correct recipe's
            # runs of the same seeds (erf GELU over seeds 0-7: raw p = 0.015, adjusted: no difference).
            superseded = {"late_loss_tost"} if "late_loss_mixup_adjusted_tost" in names else set()
            by = [s.name for s in failed if shows_difference(s) and s.name not in superseded]
            out[name] = {"rejected": bool(by), "by": by, "required": name in MUST_REJECT,
                         "underpowered": [s.name for s in failed if s.name not in by]}
        return out

    @property
    def ok(self) -> bool:
        c = self.comparisons.get("correct")
        good = c is not None and c.equivalent
        return good and all(v["rejected"] for n, v in self.control_verdicts().items() if v["required"])

    def as_dict(self) -> dict:
        return {"recipe_sha256": recipe_digest(self.recipe), "ok": self.ok,
                "reference": {"seeds": self.reference.k, "steps": self.reference.last_step,
                              "provenance": self.reference.meta.get("provenance", {})},
                "torch": {n: {"seeds": c.k, "steps": c.last_step, "seconds": c.meta.get("seconds"),
                              "machine": c.meta.get("machine")} for n, c in self.runs.items()},
                "comparisons": {n: c.as_dict() for n, c in self.comparisons.items()},
                "controls": self.control_verdicts()}

    def describe(self) -> str:
        lines = [c.describe() for c in self.comparisons.values()]
        ctl = self.control_verdicts()
        if ctl:
            lines.append("negative controls (rejected = shown to differ; see control_verdicts):")
            for n, v in ctl.items():
                extra = f"; also failed, not counted as a detection: {', '.join(v['underpowered'])}" \
                    if v["underpowered"] else ""
                lines.append(f"  {n}: {'REJECTED by ' + ', '.join(v['by']) if v['rejected'] else 'NOT detected'}"
                             f"{' (required)' if v['required'] else ''}{extra}")
        return "\n".join(lines)


def run_check(*, recipe: dict | None = None, reference: Curves | None = None, data_dir=None, workdir,
              variants=("correct",) + CONTROLS, k: int | None = None, steps: int | None = None,
              control_k: int | None = None, control_steps: int | None = None, num_workers: int = 1,
              train: bool = True, fresh: bool = False, echo=None, progress: bool = True) -> CheckOutcome:
    """Torch runs of each variant (cached in ``workdir``; ``train=False``: cached runs only) compared with
    the reference. ``k``/``steps``: seeds and updates of the correct recipe (default: as many seeds as the
    reference has, the recipe's updates); ``control_k``/``control_steps``: the same for the controls
    (default: min(k, DEFAULT_CONTROL_K) seeds, steps)."""
    from parity.dynamics.torch_side import run_torch
    recipe = recipe or load_recipe()
    if reference is None:
        reference = load_reference()
    prov = reference.meta.get("provenance", {})
    if prov.get("recipe_sha256") and prov["recipe_sha256"] != recipe_digest(recipe):
        raise DynamicsError(f"the reference curves were recorded for recipe {prov['recipe_sha256'][:12]}..., "
                            f"this recipe is {recipe_digest(recipe)[:12]}...; regenerate the reference "
                            "(`python -m reference.dynamics`) or pass the matching --recipe")
    total = int(recipe["total_steps"])
    k = int(k or reference.k)            # as many torch seeds as the reference has (like with like)
    steps = int(steps or total)
    data = ensure_data(recipe, data_dir, generate=train)
    n_val = int(recipe["data"]["classes"]) * int(recipe["data"]["val_per_class"])
    out = CheckOutcome(recipe, reference)
    for v in variants:
        kv = k if v == "correct" else int(control_k or min(k, DEFAULT_CONTROL_K))
        sv = steps if v == "correct" else int(control_steps or steps)
        if train:
            curves = run_torch(recipe, data, workdir, range(kv), variant=v, steps=sv, num_workers=num_workers,
                               fresh=fresh, echo=echo, progress=progress)
        else:
            curves = cached_curves(recipe, data, workdir, v, sv, seeds=range(kv))
        p = variant_mixup_p(recipe, v)
        curves = with_mixup_draws(curves, p)
        out.runs[v] = curves
        out.comparisons[v] = compare(curves, reference, num_classes=int(recipe["data"]["classes"]),
                                     total_steps=total, n_val=n_val,
                                     early_steps=max(1, int(recipe["optimizer"]["warmup_steps"])),
                                     mixup_p=(p, float(recipe["mixup"]["p"])))
    return out


def variant_mixup_p(recipe: dict, variant: str) -> float:
    """The mixup.p a variant trains with (the recipe's unless the variant overrides it, e.g. no_mixup)."""
    from parity.dynamics.controls import get
    return float(get(variant).config.get("mixup.p", recipe["mixup"]["p"]))


def with_mixup_draws(curves: Curves, p: float) -> Curves:
    """The torch runs' mixup coefficient per update, from the loop's own draw
    (torch_impl.train.loop.mixup_coefficient(seed, step, p): what train() used; 1.0 when p = 0)."""
    import numpy as np

    from torch_impl.train.loop import mixup_coefficient
    a = np.array([[mixup_coefficient(int(s), int(step), p) if p else 1.0 for step in curves.steps]
                  for s in curves.seeds], np.float64)
    return replace(curves, mixup_a=a)


def cached_curves(recipe: dict, data, workdir, variant: str, steps: int, *, seeds=None) -> Curves:
    """The runs of ``variant`` already in ``workdir`` (no training), cut to ``steps`` updates (a longer run's
    first updates). Runs of the same recipe and data made by a different version of the torch code are used
    too (a report of what was run), and counted in ``meta["other_source"]``; `check` retrains those."""
    import numpy as np

    from parity.dynamics.curves import stack_runs
    from parity.dynamics.torch_side import _cached, run_key
    runs, other = [], 0
    base = Path(workdir) / variant
    found = sorted({int(d.name.split("_")[1]) for d in base.glob("seed_*_steps_*")})
    seeds = [s for s in found if seeds is None or s in set(seeds)]
    for seed in seeds:
        key = run_key(recipe, variant, seed, steps, Path(data))
        run = _cached(base, seed, steps, key)
        if run is None:
            for d in base.glob(f"seed_{seed}_steps_*"):
                try:
                    with np.load(d / "run.npz", allow_pickle=False) as z:
                        src = json.loads(str(z["key"][()]))["source"]
                except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # unreadable cache entry: skip it
                    continue
                run = _cached(base, seed, steps, {**key, "source": src})
                if run is not None:
                    other += 1
                    break
        if run is not None:
            runs.append(run)
    if len(runs) < 2:
        raise DynamicsError(f"{base}: {len(runs)} up-to-date cached run(s) of {variant} with {steps} steps; "
                            f"run `parity dynamics run-torch --variant {variant} --steps {steps}` first")
    runs.sort(key=lambda r: r["seed"])
    return stack_runs(runs, framework="torch", variant=variant,
                      meta={"recipe": recipe_digest(recipe), "other_source": other,
                            "seconds": [r["seconds"] for r in runs]})


def write_report(outcome: CheckOutcome, out_dir: str | Path) -> list[Path]:
    """report.json, report.txt and one PNG overlay per variant into ``out_dir``."""
    from parity.dynamics.plots import overlay
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    p = d / "dynamics_report.json"
    p.write_text(json.dumps(outcome.as_dict(), indent=1, default=float) + "\n")
    paths.append(p)
    p = d / "dynamics_report.txt"
    p.write_text(outcome.describe() + "\n")
    paths.append(p)
    for name, comp in outcome.comparisons.items():
        paths.append(overlay(outcome.runs[name], outcome.reference, comp, d / f"dynamics_{name}.png",
                             title=f"torch '{name}' vs big_vision train.py"))
    return paths


def recipe_or_error(path) -> dict:
    try:
        return load_recipe(path)
    except RecipeError as e:
        raise DynamicsError(str(e)) from None

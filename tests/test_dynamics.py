"""Training-dynamics parity (issue 16): statistics, curve containers, the check's refusals, the family.

The statistics are checked against their definitions by simulation (the error rates they promise), not
against hand-typed numbers. The reduced family run trains the torch loop for a few steps (marked slow);
the full check (8 seeds x the whole recipe, hours on 2 cores) runs only with PARITY_DYNAMICS_FULL=1.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

from parity.dynamics import stats as S
from parity.dynamics.compare import compare
from parity.dynamics.curves import Curves, CurvesError, as_reference_arrays, reference_curves


# ---------------------------------------------------------------------------------------------- TOST
def test_tost_accepts_equal_distributions():
    rng = np.random.default_rng(0)
    ref, ours = rng.normal(0.5, 0.01, 40), rng.normal(0.5, 0.01, 40)
    r = S.tost(ours, ref, S.margin_from_reference(ref), quantity="acc")
    assert r.equivalent and r.ci_low > -r.margin and r.ci_high < r.margin, r.describe()
    assert not r.detected_difference


def test_tost_rejects_shifted_distribution():
    rng = np.random.default_rng(1)
    ref = rng.normal(0.5, 0.01, 8)
    ours = rng.normal(0.5 + 0.04, 0.01, 8)          # 4 SDs away: outside the 2-SD margin
    r = S.tost(ours, ref, S.margin_from_reference(ref), quantity="acc")
    assert not r.equivalent and r.detected_difference, r.describe()
    assert r.p_tost > S.ALPHA


def test_tost_error_rates_by_simulation():
    """At true difference = margin, TOST must declare equivalence at most ~alpha of the time (its promise);
    at 0 difference with K = 8 vs 8 it passes about as often as equivalence_power says."""
    rng = np.random.default_rng(2)
    n, reps, margin = 8, 1000, 1.0
    at_margin = sum(S.tost(rng.normal(margin, 1, n), rng.normal(0, 1, n), margin).equivalent for _ in range(reps))
    assert at_margin / reps <= S.ALPHA + 0.02
    margin = 2.0
    at_zero = sum(S.tost(rng.normal(0, 1, n), rng.normal(0, 1, n), margin).equivalent for _ in range(reps))
    predicted = S.equivalence_power(1.0, 1.0, n, n, margin)
    assert abs(at_zero / reps - predicted) < 0.06, (at_zero / reps, predicted)


def test_margin_formula_and_floor():
    ref = np.array([0.50, 0.52, 0.49, 0.51])
    assert S.margin_from_reference(ref) == pytest.approx(S.MARGIN_SDS * np.std(ref, ddof=1))
    assert S.margin_from_reference(np.full(5, 0.5), floor=0.002) == 0.002
    with pytest.raises(S.StatsError):
        S.margin_from_reference([0.5])                   # one run has no spread
    with pytest.raises(S.StatsError):
        S.tost([1.0, 2.0], [1.0, np.nan], 1.0)


def test_min_detectable_difference_has_its_power():
    """A true difference of the MDE is detected by the two-sided Welch test ~80% of the time."""
    rng = np.random.default_rng(3)
    n, reps = 8, 1000
    mde = S.min_detectable_difference(1.0, 1.0, n, n)
    hits = sum(S.tost(rng.normal(mde, 1, n), rng.normal(0, 1, n), 1.0).p_diff < S.ALPHA for _ in range(reps))
    assert 0.74 < hits / reps < 0.86, (mde, hits / reps)


# ---------------------------------------------------------------------------------------------- bands
def _curves(rng, k, steps=60, shift=0.0, framework="torch"):
    s = np.arange(1, steps + 1)
    base = 2.3 * np.exp(-s / 40.0)
    loss = base + shift + rng.normal(0, 0.02, (k, steps)).cumsum(1) * 0.1 + rng.normal(0, 0.02, (k, steps))
    loss[:, 0] = math.log(10)
    gn = 1.0 + 0.1 * rng.standard_normal((k, steps))
    lr = np.tile(np.minimum(s - 1, 30) / 30 * 1e-3, (k, 1))
    ev = np.array([steps // 2, steps])
    acc = 0.5 + shift + 0.01 * rng.standard_normal((k, 2))
    return Curves(framework, "x", np.arange(k), s, loss, lr, ev, acc, 1 - acc, gn, 70 + 0.01 * rng.standard_normal((k, steps)))


def test_bands_accept_same_and_reject_shifted():
    rng = np.random.default_rng(4)
    ref = _curves(rng, 8)
    same = S.bands(_curves(rng, 8).train_loss, ref.train_loss, ref.steps, quantity="loss")
    assert same.ok, same.describe()
    shifted = S.bands(_curves(rng, 8, shift=0.1).train_loss, ref.train_loss, ref.steps, quantity="loss")
    assert not shifted.ok and shifted.n_outside > shifted.allowed, shifted.describe()
    with pytest.raises(S.StatsError):
        S.bands(ref.train_loss[:1], ref.train_loss, ref.steps, quantity="loss")


def test_bands_false_alarm_rate_is_low():
    """Equal distributions (independent checkpoints): the band rule fails in well under 5% of repeats."""
    rng = np.random.default_rng(5)
    fails = sum(not S.bands(rng.normal(0, 1, (3, 30)), rng.normal(0, 1, (8, 30)), np.arange(30), quantity="x").ok
                for _ in range(300))
    assert fails / 300 < 0.05


# ---------------------------------------------------------------------------------------------- compare
def test_compare_equal_and_shifted_and_init_detection():
    rng = np.random.default_rng(6)
    ref = _curves(rng, 8, framework="big_vision")
    good = compare(_curves(rng, 8), ref, num_classes=10, total_steps=60, n_val=500)
    assert good.equivalent, good.describe()
    assert good.full and {"final_accuracy_tost", "late_loss_tost"} <= {s.name for s in good.stats}
    bad = _curves(rng, 8, shift=0.05)
    bad.train_loss[:, 0] = 2.9                         # a head that is not zero-initialised
    res = compare(bad, ref, num_classes=10, total_steps=60, n_val=500)
    assert not res.equivalent and "initial_loss" in res.failed and "final_accuracy_tost" in res.failed


def test_compare_reduced_mode_has_no_tost():
    rng = np.random.default_rng(7)
    ref = _curves(rng, 8, framework="big_vision")
    res = compare(_curves(rng, 2).upto(12), ref, num_classes=10, total_steps=60)
    assert not res.full and res.steps == 12
    assert "final_accuracy_tost" not in {s.name for s in res.stats}
    assert res.equivalent, res.describe()


def test_empty_or_missing_reference_is_an_error():
    rng = np.random.default_rng(8)
    ours = _curves(rng, 3)
    arrays = as_reference_arrays(_curves(rng, 8))
    with pytest.raises(CurvesError, match="missing array"):
        reference_curves({k: v for k, v in arrays.items() if k != "train_loss"})
    empty = {k: (v[:0] if v.ndim == 2 else v) for k, v in arrays.items()}
    empty["seeds"] = arrays["seeds"][:0]
    with pytest.raises(CurvesError):
        reference_curves(empty)
    one = reference_curves({k: (v[:1] if v.ndim == 2 or k == "seeds" else v) for k, v in arrays.items()})
    with pytest.raises(CurvesError, match="seed"):
        compare(ours, one, num_classes=10, total_steps=60)


def test_missing_fixture_is_an_error(tmp_path):
    from parity.dynamics.check import DynamicsError, load_reference
    with pytest.raises(DynamicsError, match="reference"):
        load_reference(tmp_path / "nope.npz")
    with pytest.raises(DynamicsError):
        load_reference(store_root=tmp_path)              # a store without a manifest


def test_recipe_translates_to_the_training_config():
    from parity.dynamics import load_recipe
    from parity.dynamics.torch_config import torch_config
    r = load_recipe()
    cfg = torch_config(r, 3)
    assert cfg.seed == 3 and cfg.total_steps == r["total_steps"] and cfg.input.batch_size == r["batch_size"]
    assert cfg.model.width == r["model"]["width"] and cfg.optax.mu_dtype == r["optimizer"]["mu_dtype"]
    assert cfg.mixup.p == r["mixup"]["p"] and cfg.schedule.warmup_steps == r["optimizer"]["warmup_steps"]
    assert cfg.input.pp.randaug_magnitude == r["pp"]["randaug_magnitude"] and cfg.log_training_steps == 1


# ---------------------------------------------------------------------------------------------- controls
def test_controls_change_what_they_claim():
    """Each negative control injects exactly its mistake (cheap: no training)."""
    import torch

    from parity.dynamics import controls, load_recipe
    from parity.dynamics.torch_config import torch_config
    from torch_impl.train.loop import build_model
    cfg = torch_config(load_recipe(), 0)
    m = build_model(cfg)
    head = [p for n, p in m.named_parameters() if "head" in n]
    assert head and all(float(p.detach().abs().max()) == 0 for p in head)          # big_vision: zero-initialised head
    controls.torch_default_init(m)
    assert any(float(p.detach().abs().max()) > 0 for p in head)
    m2 = build_model(cfg)
    controls.erf_gelu(m2)
    gelus = [x for x in m2.modules() if isinstance(x, torch.nn.GELU)]
    assert gelus and all(g.approximate == "none" for g in gelus)
    opt, sched = controls.adamw_optimizer(cfg, m2, 100)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 1e-4
    assert controls.get("no_mixup").config == {"mixup.p": 0.0}
    assert set(controls.CONTROLS) == {"tv_randaug", "rrc_crop", "adamw", "torch_init", "erf_gelu", "no_mixup"}


def test_control_pipelines_produce_training_images():
    import io

    from PIL import Image

    from parity.dynamics import controls, load_recipe
    from parity.dynamics.torch_config import torch_config
    cfg = torch_config(load_recipe(), 0)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (150, 200, 3), dtype=np.uint8)).save(buf, "JPEG")
    for make in (controls.tv_randaug_pp, controls.rrc_crop_pp):
        x = make(cfg)(buf.getvalue(), 123)
        size = cfg.input.pp.crop_size
        assert tuple(x.shape) == (3, size, size) and float(x.min()) >= -1 and float(x.max()) <= 1, make.__name__


# ---------------------------------------------------------------------------------------------- family
def test_family_without_reference_is_an_error(tmp_path):
    from parity.families import dynamics
    from parity.store import FixtureError, FixtureStore
    with pytest.raises(FixtureError):
        dynamics.checks(FixtureStore(tmp_path))


@pytest.mark.slow
def test_family_reduced_run(store):
    """The default-suite share: REDUCED_K torch seeds x REDUCED_STEPS updates against the recorded
    reference, and the cheapest control (PyTorch init) rejected."""
    from parity.families import dynamics
    results = [c.run() for c in dynamics.checks(store)]
    assert any(r.negative for r in results) and any(not r.negative for r in results)
    bad = [r.describe() for r in results if not r.ok]
    assert not bad, "\n".join(bad)


@pytest.mark.dynamics_full
def test_full_dynamics_check(tmp_path):
    """The whole check: K seeds x the whole recipe, every control (hours on 2 cores; PARITY_DYNAMICS_FULL=1).
    Equivalent for the correct recipe; the augmentation and init controls rejected."""
    from parity.dynamics.check import load_reference, run_check, write_report
    from parity.families.dynamics import workdir
    outcome = run_check(reference=load_reference(), workdir=workdir(), progress=False)
    write_report(outcome, tmp_path)
    assert outcome.ok, outcome.describe()


def test_fixtures_generate_runs_the_reference_program(tmp_path, monkeypatch):
    """`parity fixtures generate --family dynamics` (and `parity check --live`) record the reference by
    running `python -m reference.dynamics` in its own process into the given store; a failing run is one
    FixtureError naming the command, not a traceback; oneDNN on is refused (the reference pins it off)."""
    import subprocess

    from parity.generate import generate_family
    from parity.store import FixtureError, FixtureStore
    calls = []
    monkeypatch.setattr("parity.dynamics.check.ensure_data", lambda recipe: tmp_path / "data")
    monkeypatch.setattr(subprocess, "call", lambda cmd, **kw: calls.append((cmd, kw)) or 0)
    store = FixtureStore(tmp_path / "store")
    assert generate_family("dynamics", store) == ["dynamics/reference.npz"]
    cmd, kw = calls[0]
    assert cmd[1:3] == ["-m", "reference.dynamics"] and cmd[cmd.index("--store") + 1] == str(store.root)
    assert cmd[cmd.index("--data") + 1] == str(tmp_path / "data") and "torch" not in " ".join(cmd)
    monkeypatch.setattr(subprocess, "call", lambda cmd, **kw: 1)
    with pytest.raises(FixtureError, match="exited with 1"):
        generate_family("dynamics", store)
    with pytest.raises(FixtureError, match="oneDNN off"):
        generate_family("dynamics", store, onednn="on")


def test_parameter_groups_cover_the_model_and_compare_detects_a_shift():
    """parity dynamics groups: every ViT parameter falls in one group by its big_vision name (the names the
    reference's parameter tree has), each group is non-empty; compare_groups finds a shifted group and only it,
    and refuses fewer than 2 runs per side."""
    from parity.dynamics import groups as G
    from torch_impl.model.convert import big_vision_names
    from torch_impl.model.vit import ViT
    model = ViT(10, variant="S/16", width=32, depth=2, mlp_dim=64, num_heads=2, head_zeroinit=True)
    names = big_vision_names(model)
    by_group = {}
    for tname, bv in names.items():
        by_group.setdefault(G.group_of(bv), []).append(bv)
    assert set(by_group) == set(G.GROUPS)
    assert sorted(by_group["head"]) == ["head/bias", "head/kernel"]
    assert all(n.endswith("/scale") for n in by_group["layernorm_scale"])
    assert by_group["embedding_kernel"] == ["embedding/kernel"]

    rng = np.random.default_rng(0)

    def run(shift):
        r = {g: np.cumsum(rng.normal(0, 0.01, 30)) + 100 for g in G.GROUPS}
        r["layernorm_scale"] = r["layernorm_scale"] + shift * np.arange(30)
        r[G.LN_SUM] = rng.normal(0, 0.01, 30)
        return r
    rows = G.compare_groups([run(0.05) for _ in range(8)], [run(0.0) for _ in range(8)], [20])
    big = {r["quantity"] for r in rows if abs(r["t"]) > 5}
    assert big == {"layernorm_scale", "norm_change"}, rows
    with pytest.raises(ValueError, match=">= 2 runs"):
        G.compare_groups([run(0)], [run(0), run(0)], [5])


def test_mixup_entropy_expectation_and_adjustment():
    """stats: E[H(a)] for Beta(p, p) matches a Monte-Carlo mean (0 without mixup); mixup_slope recovers a
    known slope from synthetic losses; the adjusted late mean removes the draws' luck (a shifted side is still
    found, an unshifted one no longer differs) and a never-mixing run is not credited with a penalty."""
    rng = np.random.default_rng(0)
    a = rng.beta(0.2, 0.2, 400_000)
    assert S.expected_mixup_entropy(0.2) == pytest.approx(S.mixup_entropy(a).mean(), abs=3 * S.mixup_entropy(a).std() / 632)
    assert S.expected_mixup_entropy(0.0) == 0.0 and S.mixup_entropy(np.array([1.0, 0.5]))[1] == pytest.approx(math.log(2))
    steps = np.arange(1, 241)

    def runs(k, shift):
        draws = np.maximum(rng.beta(0.2, 0.2, (k, 240)), 0.5)
        trend = 2.3 - 0.6 * (1 - np.exp(-steps / 80))
        loss = trend + 0.7 * S.mixup_entropy(draws) + rng.normal(0, 0.01, (k, 240)) + shift
        return loss, draws
    (la, aa), (lb, ab) = runs(8, 0.0), runs(8, 0.0)
    slope, corr = S.mixup_slope([(la, aa), (lb, ab)], steps, 21, 10)
    assert slope == pytest.approx(0.7, abs=0.02) and corr > 0.9
    raw_a, raw_b = S.window_mean(la, steps, 205, 240), S.window_mean(lb, steps, 205, 240)
    adj_a = S.window_mean(S.mixup_adjusted(la, aa, 0.2, slope), steps, 205, 240)
    adj_b = S.window_mean(S.mixup_adjusted(lb, ab, 0.2, slope), steps, 205, 240)
    assert adj_a.std() < raw_a.std() / 3 and adj_b.std() < raw_b.std() / 3      # the draws' luck is gone
    (lc, ac) = runs(8, 0.02)
    adj_c = S.window_mean(S.mixup_adjusted(lc, ac, 0.2, slope), steps, 205, 240)
    diff, se, _ = S.welch(adj_c, adj_b)
    assert diff / se > 5                                                             # a 0.02 shift is found
    never = S.mixup_adjusted(np.full((2, 240), 1.5), np.ones((2, 240)), 0.0, slope)
    assert np.all(never == 1.5)


def test_compare_mixup_adjusted_late_loss_and_its_draw_check():
    """compare() with both sides' mixup draws adds late_loss_mixup_adjusted_tost: passes for equal runs; fails
    (not a silent pass) when the reference's recorded draws are not the ones its losses came from."""
    from dataclasses import replace
    rng = np.random.default_rng(9)

    def with_draws(c):
        a = np.maximum(rng.beta(0.2, 0.2, c.train_loss.shape), 0.5)
        loss = c.train_loss + 0.7 * (S.mixup_entropy(a) - S.expected_mixup_entropy(0.2))
        loss[:, 0] = math.log(10)
        return replace(c, train_loss=loss, mixup_a=a)
    ref = with_draws(_curves(rng, 8, framework="big_vision"))
    ours = with_draws(_curves(rng, 8))
    res = compare(ours, ref, num_classes=10, total_steps=60, n_val=500, mixup_p=(0.2, 0.2))
    st = res.get("late_loss_mixup_adjusted_tost")
    assert st.ok, st.detail
    wrong = replace(ref, mixup_a=rng.permutation(ref.mixup_a.ravel()).reshape(ref.mixup_a.shape))
    st = compare(ours, wrong, num_classes=10, total_steps=60, n_val=500, mixup_p=(0.2, 0.2)).get(
        "late_loss_mixup_adjusted_tost")
    assert not st.ok and "not the draws it trained with" in st.detail
    assert "late_loss_mixup_adjusted_tost" not in {s.name for s in compare(ours, ref, num_classes=10, total_steps=60,
                                                                           n_val=500).stats}


def test_a_control_is_rejected_only_by_a_shown_difference():
    """control_verdicts: an underpowered TOST (not equivalent, no significant difference) is no detection;
    a band, a bar, or a TOST with a significant difference test is."""
    from parity.dynamics.check import CheckOutcome, shows_difference
    from parity.dynamics.compare import Comparison, Stat
    weak = Stat("late_loss_tost", 0.4, 0.05, False, "", {"p_tost": 0.4, "detected_difference": False})
    strong = Stat("late_loss_tost", 0.9, 0.05, False, "", {"p_tost": 0.9, "detected_difference": True})
    band = Stat("loss_bands", 5.0, 2.0, False, "", {"n_outside": 5})
    assert not shows_difference(weak) and shows_difference(strong) and shows_difference(band)
    out = CheckOutcome({}, None)
    out.comparisons["rrc_crop"] = Comparison("rrc_crop", True, 240, 3, 8, [weak])
    out.comparisons["tv_randaug"] = Comparison("tv_randaug", True, 240, 3, 8, [weak, band])
    v = out.control_verdicts()
    assert not v["rrc_crop"]["rejected"] and v["rrc_crop"]["underpowered"] == ["late_loss_tost"]
    assert v["tv_randaug"]["rejected"] and v["tv_randaug"]["by"] == ["loss_bands"]
    # the raw late-loss difference does not count when the mixup-adjusted test (same quantity) sees none
    adjusted_ok = Stat("late_loss_mixup_adjusted_tost", 0.01, 0.05, True, "", {"p_tost": 0.01, "detected_difference": False})
    out.comparisons["erf_gelu"] = Comparison("erf_gelu", True, 240, 8, 16, [strong, adjusted_ok])
    assert not out.control_verdicts()["erf_gelu"]["rejected"]

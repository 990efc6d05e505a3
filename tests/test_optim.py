"""Unit tests of torch_impl.optim (schedule, adam, objective: mixup and loss, step) (the parity family `optimizer` compares
them with big_vision; these test our own contracts: resume, dtypes, errors, conversions)."""
from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from torch_impl.model import ViT
from torch_impl.optim import schedule as S
from torch_impl.optim.objective import mixup, sample_mixup_coefficient, softmax_xent
from torch_impl.optim.adam import (BigVisionAdam, big_vision_names, build_optimizer, clip_by_global_norm,
                                   decayed_names, global_norm, wd_multipliers)
from torch_impl.optim.step import loss_and_grad, train_step

from fp_bounds import AbsTerms, Bounded, gamma

SCHED = dict(warmup_steps=2, decay_type="cosine")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: intra-op threads only add contention on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_vit(seed=0):
    return ViT(10, variant=None, width=32, depth=1, mlp_dim=64, num_heads=2, patch_size=8, rep_size=True,
               head_zeroinit=False, generator=torch.Generator().manual_seed(seed))


def batch(seed, n=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, 3, 16, 16), generator=g) * 2 - 1
    y = nn.functional.one_hot(torch.randint(0, 10, (n,), generator=g), 10).float()
    return x, y


def run(model, opt, sched, steps, start=0, **kw):
    for s in range(start, start + steps):
        x, y = batch(s)
        train_step(model, opt, sched, x, y, mixup_a=0.8, **kw)


# ---- schedule -------------------------------------------------------------------------------------
def test_vit_s16_steps_and_rounding():
    assert S.VIT_S16_TRAIN_EXAMPLES == 1_268_355
    assert S.big_vision_steps(90, S.VIT_S16_TRAIN_EXAMPLES, 1024) == 111_477
    assert S.big_vision_steps(90, S.IMAGENET_TRAIN_EXAMPLES, 1024) == 112_603
    assert S.big_vision_steps(2.5, 1, 1) == 2 and S.big_vision_steps(3.5, 1, 1) == 4  # Python round: ties to even
    assert S.big_vision_steps(0.0001, 1000, 100) == 1 and S.big_vision_steps(0, 1000, 100) == 0


def test_warmup_starts_from_zero_and_peaks():
    f = S.make_schedule(total_steps=1000, warmup_steps=100, decay_type="cosine")
    assert f(0) == 0.0 and f(100) == 1.0 and f(1000) == 0.0
    assert 0.0 < f(50) < 1.0


@pytest.mark.parametrize("kw, match", [
    (dict(total_steps=10, warmup_steps=10), "warmup"),
    (dict(total_steps=10, decay_type="exp"), "decay_type"),
    (dict(total_steps=10, warmup_stpes=3), "unknown schedule option"),
    (dict(total_steps=10, decay_type="stair", steps=[3, 6], mults=[0.1]), "mults"),
    (dict(total_steps=10, warmup_percent=5), "percent"),
    (dict(total_steps=10, warmup_steps=2, warmup_epochs=1, data_size=10, batch_size=1), "only one"),
])
def test_schedule_errors(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        S.make_schedule(**kw)


def test_lr_scheduler_is_lambdalr_over_updates():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.5)
    sched = S.lr_scheduler(opt, SCHED, total_steps=6)
    f = S.schedule_from_config(SCHED, total_steps=6)
    for k in range(6):
        assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * f(k), rel=1e-12, abs=0)
        opt.step()
        sched.step()


def test_schedule_dict_defaults_to_stair_like_big_vision():
    f = S.schedule_from_config({"warmup_steps": 2}, total_steps=10)
    assert [f(k) for k in range(5)] == [0.0, 0.5, 1.0, 1.0, 1.0]


# ---- optimizer ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mu_dtype", ["float32", "bfloat16"])
def test_state_dict_resume_is_bit_identical(mu_dtype):
    model = tiny_vit()
    opt, sched = build_optimizer(model, lr=1e-3, wd=1e-4, total_steps=8, schedule=SCHED, grad_clip_norm=1.0,
                                 mu_dtype=mu_dtype)
    run(model, opt, sched, 3)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    run(model, opt, sched, 3, start=3)
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    buf.seek(0)
    ckpt = torch.load(buf, weights_only=False)
    model2 = tiny_vit(seed=1)
    opt2, sched2 = build_optimizer(model2, lr=1e-3, wd=1e-4, total_steps=8, schedule=SCHED, grad_clip_norm=1.0,
                                   mu_dtype=mu_dtype)
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    for st in opt2.state.values():
        assert st["mu"].dtype == getattr(torch, mu_dtype) and st["nu"].dtype == torch.float32
    run(model2, opt2, sched2, 3, start=3)
    for k, v in model2.state_dict().items():
        assert torch.equal(v, expected[k]), k


def _flat_vs_loop(mu_dtype, clip, steps=5, save_at=None):
    """Two identical tiny ViTs, one per update path of BigVisionAdam, fed the same batches."""
    out = []
    for flat in (True, False):
        model = tiny_vit()
        opt, sched = build_optimizer(model, lr=1e-2, wd=1e-1, total_steps=8, schedule=SCHED, grad_clip_norm=clip,
                                     mu_dtype=mu_dtype, flat=flat)
        run(model, opt, sched, steps)
        out.append((model, opt, sched))
    return out


@pytest.mark.parametrize("mu_dtype", ["float32", "bfloat16"])
def test_flat_update_path_equals_the_per_parameter_path(mu_dtype):
    """The flat (all parameters at once) path is the same arithmetic: bit-identical parameters and moments,
    with and without clipping (the global norm is summed in the same order on both paths). Bit-identity,
    not a tolerance: where a gradient is rounding noise (the attention key bias), Adam turns any difference
    in the clip factor into an O(lr) update, so no tolerance derived from one CPU would hold on another."""
    (mf, of, _), (ml, ol, _) = _flat_vs_loop(mu_dtype, clip=1e9)
    assert of._flat is not None and ol._flat is None          # each took the path it was asked for
    for (k, a), b in zip(mf.state_dict().items(), ml.state_dict().values()):
        assert torch.equal(a, b), k
    for pf, pl in zip(mf.parameters(), ml.parameters()):
        sf, sl = of.state[pf], ol.state[pl]
        assert sf["step"] == sl["step"] == 5 and sf["mu"].dtype == getattr(torch, mu_dtype)
        assert torch.equal(sf["mu"], sl["mu"]) and torch.equal(sf["nu"], sl["nu"])
    (mf, _, _), (ml, _, _) = _flat_vs_loop(mu_dtype, clip=1e-3)   # clipping on every step
    for (k, a), b in zip(mf.named_parameters(), ml.parameters()):
        assert torch.equal(a, b), k


def test_flat_state_dict_resumes_in_either_path():
    (m, o, s), _ = _flat_vs_loop("bfloat16", clip=1e9, steps=3)
    buf = io.BytesIO()
    torch.save({"model": m.state_dict(), "opt": o.state_dict(), "sched": s.state_dict()}, buf)
    run(m, o, s, 3, start=3)
    expected = [p.detach().clone() for p in m.parameters()]
    for flat in (True, False):
        buf.seek(0)
        ck = torch.load(buf, weights_only=False)
        m2 = tiny_vit(seed=1)
        o2, s2 = build_optimizer(m2, lr=1e-2, wd=1e-1, total_steps=8, schedule=SCHED, grad_clip_norm=1e9,
                                 mu_dtype="bfloat16", flat=flat)
        m2.load_state_dict(ck["model"])
        o2.load_state_dict(ck["opt"])
        s2.load_state_dict(ck["sched"])
        run(m2, o2, s2, 3, start=3)
        for a, b in zip(m2.parameters(), expected):
            assert torch.equal(a, b), flat


@pytest.mark.gpu
def test_flat_update_on_cuda_equals_per_parameter_path():
    out = []
    for flat in (True, False):
        model = tiny_vit().cuda()
        opt, sched = build_optimizer(model, lr=1e-2, wd=1e-1, total_steps=8, schedule=SCHED, grad_clip_norm=1e9,
                                     mu_dtype="bfloat16", flat=flat)
        for s in range(4):
            x, y = batch(s)
            train_step(model, opt, sched, x.cuda(), y.cuda(), mixup_a=0.8)
        out.append(model)
    for a, b in zip(out[0].parameters(), out[1].parameters()):
        assert torch.equal(a, b)


def test_bf16_moment_dtype_and_weak_b1():
    p = nn.Parameter(torch.zeros(4))
    opt = BigVisionAdam([p], lr=1.0, mu_dtype="bfloat16")
    p.grad = torch.ones(4)
    opt.step()
    mu = opt.state[p]["mu"]
    assert mu.dtype == torch.bfloat16
    assert torch.equal(mu.float(), torch.full((4,), 0.1).bfloat16().float())
    p.grad = torch.zeros(4)
    opt.step()
    # b1 acts as bf16(0.9) = 0.8984375 on the stored moment: 0.1 (bf16) * 0.8984375, then rounded to bf16
    want = (torch.tensor(0.1).bfloat16().float() * 0.8984375).bfloat16()
    assert torch.equal(opt.state[p]["mu"], torch.full((4,), want.item(), dtype=torch.bfloat16))


def test_weight_decay_not_multiplied_by_lr_and_kernels_only():
    model = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2))
    for p in model.parameters():
        nn.init.constant_(p, 1.0)
    opt, sched = build_optimizer(model, lr=1e-3, wd=0.1, total_steps=10, schedule={"decay_type": "stair"})
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # Adam direction 0: only weight decay moves the parameters
    opt.step()
    names = big_vision_names(model)
    for t, p in model.named_parameters():
        want = 1.0 - 0.1 if names[t].endswith("/kernel") else 1.0  # wd * schedule(=1) * p, no lr factor
        assert torch.allclose(p, torch.full_like(p, want), rtol=0, atol=1e-7), (t, names[t])
    assert decayed_names(model) == ["0/kernel"]


def _adamw_difference_bound(grads, p0, *, lr, wd, lrs, b1=0.9, b2=0.999, eps=1e-8):
    """Per element, how far BigVisionAdam (optax order) and torch AdamW can end apart in float32 after the
    given gradient steps, both fed the same float32 gradients from the same float32 start ``p0``. In exact
    arithmetic the two formulas are the same number (AdamW's p * (1 - lr_t * wd / lr) - lr_t * m_hat /
    (sqrt(v_hat) + eps) is optax's p - s_t * (lr * u + wd * p), lr_t = lr * s_t); each float32 op of either
    rounds (fp_bounds.Bounded), every constant is rounded to float32 on its own (1 - b2 in float32 is 4.7e-5
    off relative: optax's bias correction 1 - b2^t in float32 differs from torch's float64 one), and the
    bound is the sum of the two implementations' distances from that exact number."""
    C = Bounded.const
    bv_p, bv_mu, bv_nu = Bounded.exact(p0), Bounded.exact(0.0), Bounded.exact(0.0)
    th_p, th_m, th_v = Bounded.exact(p0), Bounded.exact(0.0), Bounded.exact(0.0)
    for t, (g, lr_t) in enumerate(zip(grads, lrs), start=1):
        g = Bounded.exact(g)
        s_t = lr_t / lr
        # optax scale_by_adam + big_vision's lr, masked decay and schedule multiplier (float32 throughout)
        bv_mu = C(b1) * bv_mu + g * C(1 - b1)
        bv_nu = C(b2) * bv_nu + g * g * C(1 - b2)
        u = (bv_mu * (1 / (1 - C(b1) ** t))) / ((bv_nu * (1 / (1 - C(b2) ** t))).sqrt() + C(eps))
        bv_p = bv_p - (u * C(lr) + bv_p * C(wd)) * C(s_t)
        # torch AdamW, single-tensor path: decay, lerp, addcmul, then addcdiv with float64 scalars
        th_p = th_p * C(1 - lr_t * (wd / lr))
        th_m = th_m + C(1 - b1) * (g - th_m)
        th_v = th_v * C(b2) + g * g * C(1 - b2)
        denom = th_v.sqrt() / C((1 - b2 ** t) ** 0.5) + C(eps)
        th_p = th_p - C(lr_t / (1 - b1 ** t)) * (th_m / denom)
    return bv_p.e + th_p.e


def test_torch_adamw_conversion_matches():
    """torch AdamW with weight_decay = wd / lr on the kernels follows big_vision's decoupled decay: fed the
    same gradients, the two optimizers stay within what float32 rounding can put between them
    (_adamw_difference_bound), on every element (the zero-gradient attention key bias included: both see
    the same rounding-noise gradient). Negative control: the usual wrong conversion, weight_decay = wd
    (decay coupled to lr), leaves that bound."""
    lr, wd, steps = 1e-3, 1e-4, 4

    def run_pair(torch_wd):
        torch.manual_seed(0)
        src, a, b = tiny_vit(), tiny_vit(), tiny_vit()
        opt_a, sch_a = build_optimizer(a, lr=lr, wd=wd, total_steps=6, schedule=SCHED)
        names = big_vision_names(b)
        kern = [names[t].endswith("/kernel") for t, _ in b.named_parameters()]
        groups = [{"params": [p for k, p in zip(kern, b.parameters()) if k], "weight_decay": torch_wd},
                  {"params": [p for k, p in zip(kern, b.parameters()) if not k], "weight_decay": 0.0}]
        opt_b = torch.optim.AdamW(groups, lr=lr, eps=1e-8)
        sch_b = S.lr_scheduler(opt_b, SCHED, total_steps=6)
        p0 = [p.detach().clone() for p in a.parameters()]
        grads, lrs = [], []
        for s in range(steps):   # gradients of a third copy moved by plain SGD: any fixed float32 sequence
            x, y = batch(s)
            loss_and_grad(src, x, y)
            gs = [p.grad.clone() for p in src.parameters()]
            with torch.no_grad():
                for p, g in zip(src.parameters(), gs):
                    p.sub_(0.05 * g)
            lrs.append(float(opt_b.param_groups[0]["lr"]))
            for model, opt, sch in ((a, opt_a, sch_a), (b, opt_b, sch_b)):
                for p, g in zip(model.parameters(), gs):
                    p.grad = g.clone()
                opt.step()
                sch.step()
            grads.append(gs)
        out = []
        for i, ((n, pa), pb, k) in enumerate(zip(a.named_parameters(), b.parameters(), kern)):
            bound = _adamw_difference_bound([g[i] for g in grads], p0[i], lr=lr, wd=wd if k else 0.0, lrs=lrs)
            out.append((n, (pa.detach().double() - pb.detach().double()).abs(), bound))
        return out

    for n, diff, bound in run_pair(wd / lr):
        assert bool((diff <= bound).all()), (n, float((diff / bound.clamp_min(1e-300)).max()))
    wrong = run_pair(wd)
    assert any(bool((diff > bound).any()) for _, diff, bound in wrong), "coupled decay passed the bound"


def test_wd_mults_first_match_and_errors():
    names = ["a/kernel", "a/bias", "LayerNorm_0/scale"]
    assert wd_multipliers(names, [(".*/kernel$", 2.0), (".*", 1.0)]) == {"a/kernel": 2.0, "a/bias": 1.0,
                                                                         "LayerNorm_0/scale": 1.0}
    with pytest.raises(ValueError, match="never start with '/'"):
        wd_multipliers(names, [("/a/kernel", 1.0)])


def test_vit_decays_every_kernel_and_nothing_else():
    model = tiny_vit()
    names = set(big_vision_names(model).values())
    assert decayed_names(model) == sorted(n for n in names if n.endswith("/kernel"))
    assert "embedding/kernel" in decayed_names(model) and "head/kernel" in decayed_names(model)


@pytest.mark.parametrize("kw, match", [
    (dict(lr=0.0), "lr must be"),
    (dict(lr=1e-3, mu_dtype="float16"), "mu_dtype"),
    (dict(lr=1e-3, grad_clip_norm=0.0), "grad_clip_norm"),
    (dict(lr=1e-3, weight_decay=-1.0), "weight_decay"),
    (dict(lr=1e-3, b1=1.0), "b1"),
])
def test_optimizer_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        BigVisionAdam([nn.Parameter(torch.zeros(2))], **kw)


def test_rejects_low_precision_params_and_mismatched_resume():
    with pytest.raises(TypeError, match="float32"):
        BigVisionAdam([nn.Parameter(torch.zeros(2, dtype=torch.bfloat16))], lr=1e-3)
    p = nn.Parameter(torch.zeros(2))
    a = BigVisionAdam([p], lr=1e-3, mu_dtype="bfloat16")
    p.grad = torch.ones(2)
    a.step()
    b = BigVisionAdam([p], lr=1e-3, mu_dtype="float32")
    with pytest.raises(ValueError, match="mu_dtype"):
        b.load_state_dict(a.state_dict())


def test_build_optimizer_errors():
    with pytest.raises(ValueError, match="wd"):
        build_optimizer(tiny_vit(), lr=1e-3, wd=-1, total_steps=10, schedule=SCHED)
    with pytest.raises(ValueError, match="total_steps"):
        build_optimizer(tiny_vit(), lr=1e-3, wd=0, total_steps=10.5, schedule=SCHED)


def test_train_step_refuses_double_clipping():
    model = tiny_vit()
    opt, sched = build_optimizer(model, lr=1e-3, wd=0, total_steps=10, schedule=SCHED, grad_clip_norm=1.0)
    x, y = batch(0)
    with pytest.raises(ValueError, match="already clips"):
        train_step(model, opt, sched, x, y, grad_clip_norm=1.0)


def test_clip_by_global_norm_like_optax():
    ts = [torch.tensor([3.0]), torch.tensor([4.0])]
    same, n = clip_by_global_norm(ts, 5.5)
    assert same[0] is ts[0] and float(n) == 5.0
    out, _ = clip_by_global_norm(ts, 1.0)
    assert float(global_norm(out)) == pytest.approx(1.0, abs=1e-7)
    assert torch.equal(out[0], (ts[0] / 5.0) * 1.0)


# ---- mixup, loss, accumulation --------------------------------------------------------------------
def test_mixup_rolls_forward_by_one():
    x = torch.arange(4.0).reshape(4, 1)
    y = torch.eye(4)
    mx, my = mixup(x, y, 0.75)
    assert mx.flatten().tolist() == [0.75 * 0 + 0.25 * 3, 0.75 * 1 + 0.25 * 0, 0.75 * 2 + 0.25 * 1, 0.75 * 3 + 0.25 * 2]
    assert my[0].tolist() == [0.75, 0, 0, 0.25]
    sx, _ = mixup(x, y, 0.75, shards=2)  # per-device roll: [1, 0 | 3, 2]
    assert sx.flatten().tolist() == [0.75 * 0 + 0.25 * 1, 0.75 * 1 + 0.25 * 0, 0.75 * 2 + 0.25 * 3, 0.75 * 3 + 0.25 * 2]
    with pytest.raises(ValueError, match="shards"):
        mixup(x, y, 0.7, shards=3)
    with pytest.raises(TypeError, match="float"):
        mixup(x, torch.arange(4), 0.7)


def test_mixup_coefficient_sampler():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = [sample_mixup_coefficient(0.2, g1) for _ in range(200)]
    assert a == [sample_mixup_coefficient(0.2, g2) for _ in range(200)]
    assert min(a) >= 0.5 and max(a) <= 1.0
    with pytest.raises(ValueError, match="positive"):
        sample_mixup_coefficient(0.0)


def test_softmax_xent_equals_soft_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn((6, 5), generator=g)
    labels = torch.softmax(torch.randn((6, 5), generator=g), -1)
    torch.testing.assert_close(softmax_xent(logits, labels), nn.functional.cross_entropy(logits, labels))
    with pytest.raises(ValueError, match="one-hot"):
        softmax_xent(logits, torch.arange(6))


def test_gradient_accumulation_equals_one_big_batch():
    """4 micro-batches of 2 give the gradient and loss of the batch of 8, to within what regrouping the
    batch reductions can change. Run in float64: in float32 even the per-sample rows differ (a matmul's
    kernel and blocking depend on its row count M; logits of 8 rows vs 4 x 2 rows differ by ulps), and no
    bound of float32 rounding through the whole network is derived here. In float64 every one of those
    roundings is 2^29 x smaller, so the test bar is the float32 bound of the final reduction alone:
    2 * gamma_n(u32) * sum|x_r * delta_r| per gradient element (fp_bounds.AbsTerms: n = rows summed), and
    2 * gamma_8(u32) * mean|loss_i| for the loss. The accumulation bugs this guards against (a missing or
    doubled 1/k, wrong or overlapping chunks) move gradients by O(|g|): the negative controls."""
    model = tiny_vit().double()
    x, y = (t.double() for t in batch(0, n=8))
    with AbsTerms(model) as terms:
        loss1 = loss_and_grad(model, x, y)
    g1 = {n: p.grad.clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        per_sample = -(y * torch.log_softmax(model(x)[0], -1)).sum(-1)
    loss_tol = 2 * gamma(8) * float(per_sample.abs().mean())
    tol = {n: 2 * gamma(terms.count[n]) * terms.abs_sum[n] for n in g1}
    assert set(tol) == {n for n, _ in model.named_parameters()}

    def excess(grads, loss):
        """worst |difference| / bound over all gradient elements, and for the loss"""
        worst = max(float(((grads[n] - g1[n]).abs() / tol[n].clamp_min(1e-300)).max()) for n in g1)
        return worst, abs(float(loss - loss1)) / loss_tol

    loss4 = loss_and_grad(model, x, y, accum_steps=4)
    g4 = {n: p.grad.clone() for n, p in model.named_parameters()}
    assert max(excess(g4, loss4)) <= 1.0, excess(g4, loss4)
    # negative controls: the sum of the micro-batch gradients without the final 1/k, and micro-batches
    # whose labels are each other's (samples 2-3 and 4-5 swapped labels)
    assert excess({n: g * 4 for n, g in g4.items()}, loss4 * 4)[0] > 1.0
    y_wrong = y[[0, 1, 4, 5, 2, 3, 6, 7]]
    loss_w = loss_and_grad(model, x, y_wrong, accum_steps=4)
    assert min(excess({n: p.grad.clone() for n, p in model.named_parameters()}, loss_w)) > 1.0
    with pytest.raises(ValueError, match="divide"):
        loss_and_grad(model, x, y, accum_steps=3)

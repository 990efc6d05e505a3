"""Family `optimizer`: big_vision's schedule, step rounding, mixup, loss and optax chain vs torch_impl.

Reference (reference/generators/optimizer.py): big_vision.utils.create_learning_rate_schedule / steps /
get_mixup / softmax_xent / accumulate_gradient, big_vision.optax.make with a vit_s16_i1k-like config,
and a tiny big_vision ViT trained K steps (mu in float32 and in bfloat16).
Bars: schedule within 1e-7 (float32 evaluation; base 1); steps exact; mixup exact; loss and gradients
1e-6 relative; params after K steps 1e-6 (relative to the largest parameter), bf16 run within one bf16 ulp
of the moment's effect and stored bf16 moments bit-identical (up to gradient noise).
Negative controls: torch AdamW with weight_decay=1e-4, decay on every parameter, torch LinearLR warmup,
CosineAnnealingLR over the whole run, clipping after Adam, fp32 moment / bf16-rounded product / plain b1
against the bf16 run, floor-divided step count, mixup rolled the other way, unfolded Beta, hard-label
cross-entropy, "all but biases" decay mask.
"""
from __future__ import annotations

import json
import math

import numpy as np
import torch

from parity.checks import Check, max_rel_err
from parity.store import decode_spec, encode_spec
from torch_impl import schedule as S
from torch_impl.optim import step as train
from torch_impl.optim.adam import big_vision_names, wd_multipliers

NAME = "optimizer"

# ---- case definitions -----------------------------------------------------------------------------
VIT_S16_TOTAL = S.big_vision_steps(90, S.VIT_S16_TRAIN_EXAMPLES, 1024)  # 111,477

SCHEDULES: dict[str, dict] = {
    "vit_s16_i1k": dict(total_steps=VIT_S16_TOTAL, warmup_steps=10_000, decay_type="cosine"),
    "cosine_nowarmup": dict(total_steps=1000, decay_type="cosine"),
    "cosine_cooldown": dict(total_steps=1000, warmup_steps=100, cooldown_steps=200, decay_type="cosine", base=0.5),
    "linear_end": dict(total_steps=1000, warmup_steps=100, decay_type="linear", linear_end=0.01, base=0.3),
    "poly2_warmup_pct": dict(total_steps=1000, warmup_percent=0.05, decay_type="polynomial", power=2, end=1e-3),
    "poly_sqrt": dict(total_steps=1000, warmup_steps=10, decay_type="polynomial", power=0.5),
    "rsqrt": dict(total_steps=1000, warmup_steps=50, decay_type="rsqrt", timescale=200, shift=30),
    "rsqrt_default": dict(total_steps=50_000, warmup_steps=1000, decay_type="rsqrt"),
    "stair": dict(total_steps=1000, warmup_steps=10, decay_type="stair", steps=[300, 600, 900],
                  mults=[0.1, 0.01, 0.001]),
    "warmup_epochs": dict(total_steps=3000, warmup_epochs=5, data_size=50_000, batch_size=256,
                          decay_type="cosine"),
    "scale_with_batchsize": dict(total_steps=1000, warmup_examples=25_600, batch_size=512, base=0.5,
                                 scale_with_batchsize=True, decay_type="linear", cooldown_percent=0.1),
    "tiny_trajectory": dict(total_steps=6, warmup_steps=2, decay_type="cosine"),
    "warmup_cosine_1k": dict(total_steps=1000, warmup_steps=100, decay_type="cosine"),
}
# Schedules short enough to drive through a real torch LR scheduler step by step (all steps recorded).
SCHEDULER_CASES = ("warmup_cosine_1k", "cosine_cooldown", "tiny_trajectory", "stair")

STEPS_CASES: dict[str, dict] = {
    "vit_s16_train99": dict(prefix="total", config={"total_epochs": 90}, data_size=1_268_355, batch_size=1024),
    "vit_s16_train_full": dict(prefix="total", config={"total_epochs": 90}, data_size=1_281_167, batch_size=1024),
    "vit_s16_300ep": dict(prefix="total", config={"total_epochs": 300}, data_size=1_268_355, batch_size=1024),
    "half_step": dict(prefix="total", config={"total_epochs": 0.5}, data_size=1000, batch_size=1000),
    "tie_even": dict(prefix="total", config={"total_epochs": 2.5}, data_size=1, batch_size=1),
    "tie_odd": dict(prefix="total", config={"total_epochs": 3.5}, data_size=1, batch_size=1),
    "tiny_epochs": dict(prefix="total", config={"total_epochs": 0.0001}, data_size=1000, batch_size=100),
    "zero_epochs": dict(prefix="total", config={"total_epochs": 0}, data_size=1000, batch_size=100),
    "examples": dict(prefix="total", config={"total_examples": 1_000_000}, data_size=None, batch_size=1024),
    "warmup_percent": dict(prefix="warmup", config={"warmup_percent": 0.1}, total_steps=VIT_S16_TOTAL),
    "warmup_steps": dict(prefix="warmup", config={"warmup_steps": 10_000}),
    "negative_is_unset": dict(prefix="warmup", config={"warmup_steps": -1}, total_steps=100),
    "missing_default": dict(prefix="cooldown", config={}, data_size=1000, batch_size=10, total_steps=100),
}
TFDS_SPLITS = {
    "train99": dict(num_examples=1_281_167, split="train[:99%]"),
    "minival": dict(num_examples=1_281_167, split="train[99%:]"),
    "train2": dict(num_examples=1_281_167, split="train[:2%]"),
    "odd33": dict(num_examples=1001, split="train[:33%]"),
    "mid": dict(num_examples=1001, split="train[10%:45%]"),
}

TINY_VIT = dict(num_classes=10, width=32, depth=2, mlp_dim=64, num_heads=2, patch_size=[8, 8], rep_size=True,
                pool_type="gap", posemb="sincos2d", head_zeroinit=False)
K_STEPS, BATCH, IMAGE = 5, 8, 32
OPTIM_BASE = dict(optax_name="scale_by_adam", lr=0.001, wd=0.0001, grad_clip_norm=1.0,
                  schedule=dict(warmup_steps=2, decay_type="cosine"))
RUNS = {
    "fp32": dict(config={**OPTIM_BASE, "optax": {}}, total_steps=6),
    "bf16": dict(config={**OPTIM_BASE, "optax": {"mu_dtype": "bfloat16"}}, total_steps=6),
}
WD_MULTS_CASES = {"default": None,
                  "custom": [[".*/LayerNorm_0/scale$", 0.5], [".*Dense_0/kernel$", 2.0], [".*/kernel$", 1.0]]}


def _schedule_steps() -> np.ndarray:
    rng = np.random.default_rng(5)
    pts = [np.arange(0, 1105), np.arange(9_990, 10_011), np.arange(49_990, 50_011),
           np.arange(VIT_S16_TOTAL - 10, VIT_S16_TOTAL + 3), rng.integers(0, VIT_S16_TOTAL, 1500)]
    return np.unique(np.concatenate(pts)).astype(np.int64)


def make_requests() -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(20240605)
    reqs = {}
    reqs["schedule"] = {"steps": _schedule_steps(),
                        "spec": encode_spec({"kind": "schedule", "schedules": SCHEDULES})}
    reqs["steps"] = {"spec": encode_spec({"kind": "steps", "cases": STEPS_CASES, "tfds_splits": TFDS_SPLITS})}
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 8)]
    reqs["mixup"] = {"images": rng.standard_normal((8, 4, 5, 3)).astype(np.float32), "labels": labels,
                     "spec": encode_spec({"kind": "mixup", "p": 0.2, "seed": 3, "n_samples": 1500})}
    soft = rng.dirichlet(np.full(10, 0.3), 16).astype(np.float32)
    soft[:4] = np.eye(10, dtype=np.float32)[[1, 5, 9, 0]]
    reqs["xent"] = {"logits": (3 * rng.standard_normal((16, 10))).astype(np.float32), "labels": soft,
                    "spec": encode_spec({"kind": "xent"})}
    reqs["trajectory"] = {
        "images": rng.integers(0, 256, (K_STEPS, BATCH, IMAGE, IMAGE, 3), dtype=np.uint8),
        "labels": rng.integers(0, 10, (K_STEPS, BATCH)).astype(np.int64),
        "spec": encode_spec({"kind": "trajectory", "model": TINY_VIT, "init_seed": 0, "mixup_seed": 1,
                             "mixup_p": 1.0, "accum_steps": 2, "runs": RUNS, "wd_mults_cases": WD_MULTS_CASES})}
    return reqs


# ---- torch side helpers ---------------------------------------------------------------------------
INVARIANT = ("MultiHeadDotProductAttention_0/key/bias",)
# The attention key bias adds the same number to every logit of a query's softmax: its gradient is exactly
# zero, both frameworks see only rounding noise (~1e-9) there, and Adam scales that noise up to an update
# of ~lr. It cannot change any output, so it is left out of the trajectory comparison and checked apart.


def _invariant(name: str) -> bool:
    return any(name.endswith(s) for s in INVARIANT)


def _tree(data, prefix: str) -> dict[str, np.ndarray]:
    out = {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}
    return {k: ((v.astype(np.uint32) << 16).view(np.float32) if v.dtype == np.uint16 else v) for k, v in out.items()}


def _tiny_model(data):
    from torch_impl import convert
    from torch_impl.model import ViT
    spec = decode_spec(data["spec"])
    cfg = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec["model"].items()}
    num_classes = cfg.pop("num_classes")
    model = ViT(num_classes, variant=None, **cfg)
    convert.load_big_vision_params(model, _tree(data, "init:"))
    return model


def _batches(data):
    images = data["images"].astype(np.float32) / np.float32(127.5) - np.float32(1.0)  # value_range(-1, 1)
    images = torch.from_numpy(images).permute(0, 1, 4, 2, 3).contiguous()               # (K, B, 3, H, W)
    labels = torch.from_numpy(np.eye(10, dtype=np.float32)[data["labels"]])
    return images, labels


def _bv_tensors(model) -> dict[str, torch.Tensor]:
    from torch_impl.model import convert
    return {name: e for name, e in convert._entries(model).items()}


def _grads_bv(model) -> dict[str, np.ndarray]:
    out = {}
    for name, e in _bv_tensors(model).items():
        out[name] = np.ascontiguousarray(e.to_bv(e.tensor.grad.detach().numpy()))
    return out


def _ours(model, run, flat=None):
    from torch_impl.optim import build_optimizer
    c = RUNS[run]["config"]
    return build_optimizer(model, lr=c["lr"], wd=c["wd"], total_steps=RUNS[run]["total_steps"],
                           schedule=c["schedule"], grad_clip_norm=c["grad_clip_norm"],
                           mu_dtype=c["optax"].get("mu_dtype", "float32"), flat=flat)


def _trajectory(data, run, factory, *, clip_in_step=False):
    """Train the tiny ViT K steps with (optimizer, scheduler) = factory(model); returns losses, params
    (big_vision names and layouts) after every step, and the optimizer."""
    from torch_impl import convert, train
    with _one_thread():
        return _trajectory_impl(data, run, factory, clip_in_step, convert, train)


def _trajectory_impl(data, run, factory, clip_in_step, convert, train):
    model = _tiny_model(data)
    opt, sched = factory(model)
    images, labels = _batches(data)
    clip = RUNS[run]["config"]["grad_clip_norm"] if clip_in_step else None
    losses, params = [], []
    for k in range(images.shape[0]):
        losses.append(train.train_step(model, opt, sched, images[k], labels[k], mixup_a=float(data["mixup_a"][k]),
                                       grad_clip_norm=clip))
        params.append({k: v.copy() for k, v in convert.big_vision_params(model).items()})  # no views of live tensors
    return np.asarray(losses, np.float32), params, opt, model


_CACHE: dict = {}


class _one_thread:
    """Tiny tensors: intra-op threads only add contention (8 s instead of 0.25 s on a loaded 2-core box)."""
    def __enter__(self):
        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.n)


def _cached(key, fn):
    if key not in _CACHE:
        _CACHE[key] = fn()
    return _CACHE[key]


# ---- the wrong implementations (negative controls) ------------------------------------------------
def _torch_param_groups(model, wd_kernels: float):
    names = big_vision_names(model)
    decay = [p for t, p in model.named_parameters() if names[t].endswith("/kernel")]
    rest = [p for t, p in model.named_parameters() if not names[t].endswith("/kernel")]
    return [{"params": decay, "weight_decay": wd_kernels}, {"params": rest, "weight_decay": 0.0}]


def _torch_adamw(weight_decay_for):
    """torch.optim.AdamW on the kernels (decay) / others (no decay), big_vision's schedule via LambdaLR;
    clipping is done in train_step with optax's rule."""
    def factory(model, run="fp32"):
        c = RUNS[run]["config"]
        opt = torch.optim.AdamW(_torch_param_groups(model, weight_decay_for(c)), lr=c["lr"], betas=(0.9, 0.999),
                                eps=1e-8)
        return opt, S.lr_scheduler(opt, c["schedule"], total_steps=RUNS[run]["total_steps"])
    return factory


def _bv_adam_with(run, scheduler_fn=None, **kw):
    from torch_impl.optim import BigVisionAdam, param_groups
    c = RUNS[run]["config"]

    def factory(model):
        kw2 = dict(kw)
        groups = param_groups(model, wd=c["wd"], wd_mults=kw2.pop("wd_mults", ((".*/kernel$", 1.0),)))
        cls = kw2.pop("cls", BigVisionAdam)
        opt = cls(groups, lr=c["lr"], grad_clip_norm=kw2.pop("grad_clip_norm", c["grad_clip_norm"]),
                  mu_dtype=kw2.pop("mu_dtype", c["optax"].get("mu_dtype", "float32")), flat=kw2.pop("flat", None))
        if scheduler_fn is None:
            return opt, S.lr_scheduler(opt, c["schedule"], total_steps=RUNS[run]["total_steps"])
        return opt, scheduler_fn(opt, RUNS[run]["total_steps"], c["schedule"]["warmup_steps"])
    return factory


def _linear_warmup_then_cosine(opt, total, warmup):
    # The usual torch recipe (torchvision's classification reference: --lr-warmup-method linear,
    # --lr-warmup-decay 0.01): LinearLR cannot start from 0 (start_factor must be > 0).
    lin = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warmup)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup)
    return torch.optim.lr_scheduler.SequentialLR(opt, [lin, cos], milestones=[warmup])


def _cosine_whole_run(opt, total, warmup):
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)


def _clip_after_adam_cls():
    from torch_impl.optim import BigVisionAdam, clip_by_global_norm

    class ClipAfterAdam(BigVisionAdam):
        """Wrong: clips Adam's output (the direction) instead of the gradient."""
        @torch.no_grad()
        def step(self, closure=None):
            items = [(g, p) for g in self.param_groups for p in g["params"] if p.grad is not None]
            dirs = [self._direction(p, p.grad.float(), g) for g, p in items]
            dirs, _ = clip_by_global_norm(dirs, self.grad_clip_norm)
            for (g, p), u in zip(items, dirs):
                self._apply(p, u, g)
    return ClipAfterAdam


def _rounded_product_cls():
    from torch_impl.optim import BigVisionAdam

    class RoundedProduct(BigVisionAdam):
        """Wrong: rounds b1 * mu to bf16 before the add (what the dtype rules alone suggest; XLA does not)."""
        def _decayed_first_moment(self, mu_old, b1):
            return super()._decayed_first_moment(mu_old, b1).to(mu_old.dtype).float()
    return RoundedProduct


def _plain_b1_cls():
    from torch_impl.optim import BigVisionAdam

    class PlainB1(BigVisionAdam):
        """Wrong: bf16 storage but b1 = 0.9 in float32 (ignores JAX's weak typing)."""
        def _decayed_first_moment(self, mu_old, b1):
            return mu_old.float() * torch.tensor(b1, dtype=torch.float32)
    return PlainB1


# ---- metrics --------------------------------------------------------------------------------------
def _params_err(ours: dict, ref: dict) -> tuple[float, str]:
    """max |ours - ref| over all (output-relevant) parameters, divided by the largest |ref| parameter."""
    names = [n for n in ref if not _invariant(n)]
    scale = max(float(np.abs(ref[n]).max()) for n in names)
    errs = {n: float(np.abs(ours[n].astype(np.float64) - ref[n]).max()) for n in names}
    worst = max(errs, key=errs.get)
    return errs[worst] / scale, f"worst {worst}: {errs[worst]:.3g} (largest |param| {scale:.3g})"


def _bf16_bar(data, run, k) -> float:
    """One bf16 ulp (2^-8 relative) of the first moment, through Adam (|mu_hat / sqrt(nu_hat)| <= ~1),
    times lr * schedule, summed over the updates so far."""
    c = RUNS[run]["config"]
    return float(c["lr"] * np.sum(data[f"{run}/schedule"][:k + 1].astype(np.float64)) * 2.0 ** -8)


def _lr_sum(run: str, k: int) -> float:
    """lr * sum of big_vision's schedule over updates 0..k of ``run`` (known without the fixture)."""
    c = RUNS[run]["config"]
    sched = S.make_schedule(total_steps=RUNS[run]["total_steps"], **c["schedule"])
    return float(c["lr"] * np.sum(S.schedule_values(sched, np.arange(k + 1)).astype(np.float64)))


def _bf16_bits(a: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(torch.bfloat16)
    return x.view(torch.int16).numpy().astype(np.int32)


def _mu_mismatch(opt, model, ref_mu: dict, *, what="fraction"):
    ents = _bv_tensors(model)
    n_diff = n_total = 0
    max_ulps = 0
    for name, e in ents.items():
        if _invariant(name):
            continue
        mu = e.to_bv(opt.state[e.tensor]["mu"].float().numpy())
        a, b = _bf16_bits(mu), _bf16_bits(ref_mu[name])
        d = np.abs(a - b)
        n_diff += int((d > 0).sum())
        n_total += d.size
        max_ulps = max(max_ulps, int(d.max()))
    detail = f"{n_diff} of {n_total} bf16 moments differ, at most {max_ulps} ulp"
    return (n_diff / n_total, detail) if what == "fraction" else (float(max_ulps), detail)


# ---- checks ---------------------------------------------------------------------------------------
def _as_config_schedule(kw: dict) -> dict:
    """create_learning_rate_schedule kwargs -> a config.schedule dict (``base`` is spelled ``mult`` there)."""
    out = {k: v for k, v in kw.items() if k not in ("total_steps", "base")}
    if "base" in kw:
        out["mult"] = kw["base"]
    return out


def _schedule_checks(store, rel) -> list[Check]:
    out = []

    def fn_check(key):
        def compute():
            data = store.load(rel)
            ours = S.schedule_values(S.make_schedule(**SCHEDULES[key]), data["steps"])
            ref = data[f"sched_{key}"]
            d = np.abs(ours.astype(np.float64) - ref)
            i = int(np.argmax(d))
            return float(d[i]), (f"{int((d > 0).sum())} of {d.size} steps differ (float32 ulps of XLA's cos/rsqrt); "
                                 f"max at step {int(data['steps'][i])}: {ours[i]!r} vs {ref[i]!r}")
        return compute

    def scheduler_check(key, make_scheduler):
        def compute():
            data = store.load(rel)
            steps, ref = data["steps"], data[f"sched_{key}"]
            total = SCHEDULES[key]["total_steps"]
            p = torch.nn.Parameter(torch.zeros(1))
            opt = torch.optim.SGD([p], lr=1.0)
            sched = make_scheduler(opt, key)
            want = {int(s): float(r) for s, r in zip(steps, ref) if s <= total}
            got = {}
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()": no training here
                for k in range(total + 1):
                    if k in want:
                        got[k] = opt.param_groups[0]["lr"]
                    sched.step()  # no optimizer.step(): only the lr values are compared
            errs = {k: abs(got[k] - want[k]) for k in want}
            k = max(errs, key=errs.get)
            return errs[k], f"worst at update {k}: torch lr factor {got[k]:.9g} vs big_vision {want[k]:.9g}"
        return compute

    for key in SCHEDULES:
        out.append(Check(NAME, f"schedule[{key}]", "max |lr mult - ref|", 1e-7, fn_check(key)))
    for key in SCHEDULER_CASES:
        out.append(Check(NAME, f"lr_scheduler[{key}]", "max |lr mult - ref|", 1e-7, scheduler_check(
            key, lambda opt, k: S.lr_scheduler(opt, _as_config_schedule(SCHEDULES[k]),
                                               total_steps=SCHEDULES[k]["total_steps"]))))
    w = SCHEDULES["warmup_cosine_1k"]
    out.append(Check(NAME, "lr_scheduler[warmup_cosine_1k]:LinearLR_warmup", "max |lr mult - ref|", 1e-7,
                     scheduler_check("warmup_cosine_1k", lambda opt, k: _linear_warmup_then_cosine(
                         opt, w["total_steps"], w["warmup_steps"])), negative=True))
    out.append(Check(NAME, "lr_scheduler[warmup_cosine_1k]:CosineAnnealingLR_whole_run", "max |lr mult - ref|", 1e-7,
                     scheduler_check("warmup_cosine_1k", lambda opt, k: _cosine_whole_run(
                         opt, w["total_steps"], w["warmup_steps"])), negative=True))
    return out


def _steps_checks(store, rel) -> list[Check]:
    out = []

    def steps_case(key):
        def compute():
            data = store.load(rel)
            c = dict(STEPS_CASES[key])
            ours = S.steps_from_config(c.pop("prefix"), c.pop("config"), default=-12345, **c)
            ref = int(data[f"steps_{key}"])
            return float(abs(ours - ref)), f"ours {ours}, big_vision {ref}"
        return compute

    def split_case(key):
        def compute():
            data = store.load(rel)
            c = TFDS_SPLITS[key]
            inner = c["split"][c["split"].index("[") + 1:-1]
            lo, hi = (x.strip().rstrip("%") for x in inner.split(":"))
            ours = S.percent_split_size(c["num_examples"], float(lo or 0), float(hi or 100))
            ref = int(data[f"split_{key}"])
            return float(abs(ours - ref)), f"ours {ours}, TFDS {ref}"
        return compute

    def vit_total():
        # Our recipe constants (VIT_S16_TOTAL, used by the schedules; VIT_S16_TRAIN_EXAMPLES) against numbers
        # big_vision and TFDS computed: big_vision's u.steps for 90 epochs of 1,268,355 at batch 1024, TFDS's
        # size of train[:99%], and the epochs / batch / split of big_vision's own vit_s16_i1k config.
        data = store.load(rel)
        cfg = json.loads(str(data["vit_s16_i1k_config"][()]))
        ref_split, ref_steps = int(data["split_train99"]), int(data["steps_vit_s16_train99"])
        case = STEPS_CASES["vit_s16_train99"]
        diffs = {"steps (big_vision u.steps)": (VIT_S16_TOTAL, ref_steps),
                 "train[:99%] size (TFDS)": (S.VIT_S16_TRAIN_EXAMPLES, ref_split),
                 "total_epochs (config)": (case["config"]["total_epochs"], cfg["total_epochs"]),
                 "batch_size (config)": (case["batch_size"], cfg["batch_size"]),
                 "split (config)": (TFDS_SPLITS["train99"]["split"], cfg["split"])}
        bad = {k: v for k, v in diffs.items() if v[0] != v[1]}
        return float(len(bad)), "; ".join(f"{k}: ours {a} vs {b}" for k, (a, b) in (bad or diffs).items())

    for key in STEPS_CASES:
        out.append(Check(NAME, f"steps[{key}]", "|ours - ref|", 0.0, steps_case(key)))
    for key in TFDS_SPLITS:
        out.append(Check(NAME, f"split_size[{key}]", "|ours - ref|", 0.0, split_case(key)))
    out.append(Check(NAME, "steps[vit_s16_i1k_recipe]", "recipe numbers differing", 0.0, vit_total))
    # Negative control: epochs * data_size // batch_size (floor, the usual torch loop) on the real recipe.
    out.append(Check(NAME, "steps[vit_s16_train99]:floor_division", "|ours - ref|", 0.0, lambda: (
        float(abs(90 * 1_268_355 // 1024 - int(store.load(rel)["steps_vit_s16_train99"]))), "floor instead of round"),
        negative=True))

    try:
        from torch_impl import config as C
        cfg_fn = C.vit_s16_i1k
    except (ImportError, AttributeError):
        cfg_fn = None
    if cfg_fn is not None:
        def config_fields():
            ref = json.loads(str(store.load(rel)["vit_s16_i1k_config"][()]))
            ours = cfg_fn()
            pairs = {"total_epochs": "total_epochs", "batch_size": "input.batch_size", "split": "input.data.split",
                     "lr": "lr", "wd": "wd", "grad_clip_norm": "grad_clip_norm", "loss": "loss"}
            diffs = [f"{k}: ours {ours.get(o)!r} vs {ref[k]!r}" for k, o in pairs.items() if ours.get(o) != ref[k]]
            nested = {"optax.mu_dtype": ref["optax"].get("mu_dtype"), "schedule.warmup_steps":
                      ref["schedule"].get("warmup_steps"), "schedule.decay_type": ref["schedule"].get("decay_type"),
                      "mixup.p": ref["mixup"].get("p")}
            diffs += [f"{k}: ours {ours.get(k)!r} vs {v!r}" for k, v in nested.items() if ours.get(k) != v]
            return float(len(diffs)), "; ".join(diffs) or "optimizer fields equal big_vision's vit_s16_i1k"
        out.append(Check(NAME, "config[vit_s16_i1k]", "fields differing", 0.0, config_fields))
    return out


def _mixup_checks(store, rel) -> list[Check]:
    from torch_impl.mixup import mixup, sample_mixup_coefficient

    def exact(fn):
        def compute():
            data = store.load(rel)
            x, y = torch.from_numpy(data["images"]), torch.from_numpy(data["labels"])
            mi, ml = fn(x, y, float(data["a"]))
            di = np.abs(mi.numpy().astype(np.float64) - data["mixed_images"]).max()
            dl = np.abs(ml.numpy().astype(np.float64) - data["mixed_labels"]).max()
            return float(max(di, dl)), f"a = {float(data['a']):.6f}; images {di:.3g}, labels {dl:.3g}"
        return compute

    def distribution(sampler):
        def compute():
            from scipy import stats
            data = store.load(rel)
            ref = data["a_samples"]
            g = torch.Generator().manual_seed(1234)
            ours = np.asarray([sampler(0.2, g) for _ in range(ref.size)])
            ks = stats.ks_2samp(ours, ref)
            # critical KS distance at alpha = 0.001 for two samples of these sizes
            crit = 1.949 * math.sqrt((ours.size + ref.size) / (ours.size * ref.size))
            return float(ks.statistic / crit), (f"KS D = {ks.statistic:.4f} (p = {ks.pvalue:.3g}), critical {crit:.4f}; "
                                                f"median ours {np.median(ours):.4f} vs big_vision {np.median(ref):.4f}")
        return compute

    def unfolded(p, g):  # wrong: plain Beta(p, p), without big_vision's a = max(a, 1 - a)
        a = sample_mixup_coefficient(p, g)
        return a if float(torch.rand((), generator=g)) < 0.5 else 1.0 - a

    return [
        Check(NAME, "mixup[batch]", "max |diff|", 0.0, exact(mixup)),
        Check(NAME, "mixup[batch]:roll_minus_1", "max |diff|", 0.0, exact(
            lambda x, y, a: (a * x + (1 - a) * torch.roll(x, -1, 0), a * y + (1 - a) * torch.roll(y, -1, 0))),
            negative=True),
        Check(NAME, "mixup_coefficient[p=0.2]", "KS D / critical (alpha 0.001)", 1.0,
              distribution(sample_mixup_coefficient)),
        Check(NAME, "mixup_coefficient[p=0.2]:no_max_fold", "KS D / critical (alpha 0.001)", 1.0,
              distribution(unfolded), negative=True),
    ]


def _xent_checks(store, rel) -> list[Check]:
    from torch_impl.loss import softmax_xent

    def compute_with(fn):
        def compute():
            data = store.load(rel)
            logits, labels = torch.from_numpy(data["logits"]), torch.from_numpy(data["labels"])
            per = fn(logits, labels, False)
            mean = fn(logits, labels, True)
            e1, _ = max_rel_err(per.numpy(), data["loss_per_example"])
            e2, _ = max_rel_err(mean.numpy(), data["loss_mean"])
            return max(e1, e2), f"per example {e1:.3g}, mean {e2:.3g}"
        return compute

    def hard_labels(logits, labels, reduction):  # wrong: argmax of the soft labels (drops the mixup partner)
        return torch.nn.functional.cross_entropy(logits, labels.argmax(-1), reduction="mean" if reduction else "none")

    return [Check(NAME, "softmax_xent[soft_labels]", "max rel err", 1e-6,
                  compute_with(lambda lg, lb, r: softmax_xent(lg, lb, reduction=r))),
            Check(NAME, "softmax_xent[soft_labels]:hard_label_cross_entropy", "max rel err", 1e-6,
                  compute_with(hard_labels), negative=True)]


def _grads_check(store, rel, accum: bool):
    """loss and gradients of the tiny ViT on the first mixed batch (optionally accumulated) vs big_vision's."""
    def compute():
        data = store.load(rel)
        model = _tiny_model(data)
        images, labels = _batches(data)
        from torch_impl.mixup import mixup
        x, y = mixup(images[0], labels[0], float(data["mixup_a"][0]))
        model.train()
        steps = decode_spec(data["spec"])["accum_steps"] if accum else 1
        with _one_thread():
            loss = float(train.loss_and_grad(model, x, y, accum_steps=steps))
        ref_loss = float(data["loss0_accum" if accum else "loss0"])
        ours = _grads_bv(model)
        ref = _tree(data, "grads_accum:" if accum else "grads:")
        # relative to the scale of the whole gradient (max |g| over all parameters); the per-tensor
        # figure is reported too (tensors whose gradient is tiny by construction, e.g. attention keys,
        # carry the same absolute rounding noise)
        names = [n for n in ref if not _invariant(n)]
        scale = max(float(np.abs(ref[n]).max()) for n in names)
        abs_errs = {n: float(np.abs(ours[n].astype(np.float64) - ref[n]).max()) for n in names}
        worst = max(abs_errs, key=abs_errs.get)
        per_tensor = {n: max_rel_err(ours[n], ref[n])[0] for n in names}
        wt = max(per_tensor, key=per_tensor.get)
        lerr = abs(loss - ref_loss) / abs(ref_loss)
        return max(abs_errs[worst] / scale, lerr), (
            f"loss rel err {lerr:.3g}; max |dg| {abs_errs[worst]:.3g} at {worst} (max |g| {scale:.3g}); "
            f"worst per-tensor relative error {per_tensor[wt]:.3g} at {wt}")
    return compute


def _invariant_grad_check(store, rel):
    """The key-bias gradients, exactly 0 in exact arithmetic: rounding noise only."""
    def compute():
        data = store.load(rel)
        model = _tiny_model(data)
        images, labels = _batches(data)
        from torch_impl.mixup import mixup
        x, y = mixup(images[0], labels[0], float(data["mixup_a"][0]))
        with _one_thread():
            train.loss_and_grad(model, x, y)
        ours, ref = _grads_bv(model), _tree(data, "grads:")
        scale = max(float(np.abs(v).max()) for v in ref.values())
        worst = max(max(float(np.abs(ours[n]).max()), float(np.abs(ref[n]).max())) for n in ref if _invariant(n))
        return worst / scale, "key-bias gradients (exactly 0 in exact arithmetic) relative to the largest gradient"
    return compute


def _wd_mask_check(store, rel, key: str):
    """big_vision's weight-decay mask (names and multipliers) for one wd_mults case."""
    def compute():
        data = store.load(rel)
        ref = json.loads(str(data[f"decayed:{key}"][()]))
        wd_mults = WD_MULTS_CASES[key] or [(".*/kernel$", 1.0)]
        model = _tiny_model(data)
        mults = wd_multipliers(big_vision_names(model).values(), [tuple(x) for x in wd_mults])
        ours = {n: m for n, m in mults.items() if m != 0.0}
        diff = sorted(set(ours) ^ set(ref)) + sorted(n for n in set(ours) & set(ref) if ours[n] != ref[n])
        return float(len(diff)), (f"{len(ref)} decayed: {', '.join(sorted(ref))}" if not diff
                                  else f"differ: {diff[:8]}")
    return compute


def _wd_mask_all_but_biases(store, rel):
    """Negative control: the common torch rule "decay everything but biases"."""
    def compute():
        data = store.load(rel)
        ref = set(json.loads(str(data["decayed:default"][()])))
        ours = {n for n in big_vision_names(_tiny_model(data)).values() if not n.endswith("/bias")}
        return float(len(ours ^ ref)), f"differ: {sorted(ours ^ ref)[:6]}"
    return compute


def _params_check(store, rel, run: str, factory_key: str, k: int):
    """Parameters (and loss) after update k + 1 of the recorded trajectory, with the optimizer FACTORIES[factory_key]."""
    def compute():
        data = store.load(rel)
        losses, params, _, _ = _cached((rel, run, factory_key), lambda: _trajectory(
            data, run, FACTORIES[factory_key](run), clip_in_step=factory_key.startswith("torch_adamw")))
        err, detail = _params_err(params[k], _tree(data, f"{run}/params{k + 1}:"))
        lerr = abs(float(losses[k]) - float(data[f"{run}/loss"][k])) / abs(float(data[f"{run}/loss"][k]))
        bar = _bf16_bar(data, run, k)
        if run == "bf16" and bar > 0:
            scale = max(float(np.abs(v).max()) for n, v in _tree(data, f"{run}/params{k + 1}:").items())
            return err * scale / bar, (
                f"{detail}; in units of lr*sum(schedule)*2^-8 = {bar:.3g}; loss rel err {lerr:.3g}")
        if bar == 0:  # every update so far had lr 0 (warmup from 0): the params must not have moved at all
            detail += "; lr*schedule = 0 for every update so far, so the params must equal the initial ones"
        return max(err, lerr), f"{detail}; loss rel err {lerr:.3g}"
    return compute


def _moments_check(store, rel, run: str, factory_key: str, what: str):
    """Adam's moments after the trajectory: mu/nu relative error, or the bf16 mu bits (what = fraction/ulps)."""
    def compute():
        data = store.load(rel)
        _, _, opt, model = _cached((rel, run, factory_key), lambda: _trajectory(data, run, FACTORIES[factory_key](run)))
        if what in ("fraction", "ulps"):
            return _mu_mismatch(opt, model, _tree(data, f"{run}/mu:"), what=what)
        ref = _tree(data, f"{run}/{what}:")
        errs = {}
        for name, e in _bv_tensors(model).items():
            if not _invariant(name):
                errs[name] = max_rel_err(e.to_bv(opt.state[e.tensor][what].float().numpy()), ref[name])[0]
        worst = max(errs, key=errs.get)
        return errs[worst], f"worst {worst}"
    return compute


def _trajectory_checks(store, rel) -> list[Check]:
    """The tiny ViT's gradients, the weight-decay mask, K updates of the trajectory with our optimizer (per
    parameter and flat) and the wrong ones (negative controls), and Adam's moments after them."""
    out = []
    out.append(Check(NAME, "loss_and_grads[tiny_vit]", "max |dg| / max |g|, loss rel", 1e-6,
                     _grads_check(store, rel, False)))
    out.append(Check(NAME, "loss_and_grads[tiny_vit,accum2]", "max |dg| / max |g|, loss rel", 1e-6,
                     _grads_check(store, rel, True)))
    out.append(Check(NAME, "loss_and_grads[tiny_vit]:key_bias_is_dead", "max |g| / max |g_all|", 1e-6,
                     _invariant_grad_check(store, rel)))

    out.append(Check(NAME, "wd_mask[default]", "names differing", 0.0, _wd_mask_check(store, rel, "default")))
    out.append(Check(NAME, "wd_mask[custom_wd_mults]", "names differing", 0.0, _wd_mask_check(store, rel, "custom")))
    out.append(Check(NAME, "wd_mask[default]:all_but_biases", "names differing", 0.0,
                     _wd_mask_all_but_biases(store, rel), negative=True))

    for run in RUNS:
        for k in range(K_STEPS):
            if run == "fp32" or _lr_sum(run, k) == 0:
                # fp32, and any step before the first nonzero lr (warmup from 0: update 0 has lr 0, so
                # there is no bf16-ulp effect to measure in; the params must not move, the loss must match)
                out.append(Check(NAME, f"trajectory[{run},step{k + 1}]", "max |dp| / max |p|, loss rel", 1e-6,
                                 _params_check(store, rel, run, "ours", k)))
            else:
                out.append(Check(NAME, f"trajectory[bf16,step{k + 1}]", "max |dp| / bf16-ulp effect", 1.0,
                                 _params_check(store, rel, run, "ours", k)))
    last = K_STEPS - 1
    out.append(Check(NAME, f"trajectory[fp32,step{K_STEPS}]:flat_update", "max |dp| / max |p|, loss rel", 1e-6,
                     _params_check(store, rel, "fp32", "ours_flat", last)))
    out.append(Check(NAME, f"trajectory[bf16,step{K_STEPS}]:flat_update", "max |dp| / bf16-ulp effect", 1.0,
                     _params_check(store, rel, "bf16", "ours_flat", last)))
    out.append(Check(NAME, f"trajectory[fp32,step{K_STEPS}]:torch_AdamW_converted_wd",
                     "max |dp| / max |p|, loss rel", 1e-6,
                     _params_check(store, rel, "fp32", "torch_adamw_converted", last)))
    for key in ("torch_adamw_wd_1e-4", "decay_all_params", "linearlr_warmup", "cosine_annealing_whole_run",
                "clip_after_adam"):
        out.append(Check(NAME, f"trajectory[fp32,step{K_STEPS}]:{key}", "max |dp| / max |p|, loss rel", 1e-6,
                         _params_check(store, rel, "fp32", key, last), negative=True))

    for run, what in (("fp32", "mu"), ("fp32", "nu"), ("bf16", "nu")):
        out.append(Check(NAME, f"adam_state[{run},{what}]", "max rel err", 1e-5,
                         _moments_check(store, rel, run, "ours", what)))
    out.append(Check(NAME, "adam_state[bf16,mu_bits]", "fraction of bf16 moments not bit-identical", 0.01,
                     _moments_check(store, rel, "bf16", "ours", "fraction")))
    # The bf16 moments may differ by what K roundings to bf16 allow (a rounding decided the other way
    # because the float32 gradients differ in their last bits), not by a count of ulps seen on one CPU.
    out.append(Check(NAME, "adam_state[bf16,mu_ulps]", "max |dmu| / bound of K bf16 roundings", 1.0,
                     _mu_rounding_bound(store, rel, "ours")))
    # (no control of its own: a wrong b1 moves each moment by ~0.2 ulp per update, inside this bound; the
    # mu_bits rows below reject it)
    out.append(Check(NAME, "adam_state[bf16,mu_bits]:flat_update", "fraction of bf16 moments not bit-identical",
                     0.01, _moments_check(store, rel, "bf16", "ours_flat", "fraction")))
    # the flat path sees a wrong moment update too (same bar as its positive row)
    out.append(Check(NAME, "adam_state[bf16,mu_bits]:flat_update_bf16_product_rounded",
                     "fraction of bf16 moments not bit-identical", 0.01,
                     _moments_check(store, rel, "bf16", "flat_bf16_product_rounded", "fraction"), negative=True))
    for key in ("fp32_moment", "bf16_product_rounded", "bf16_moment_plain_b1"):
        out.append(Check(NAME, f"adam_state[bf16,mu_bits]:{key}", "fraction of bf16 moments not bit-identical",
                         0.01, _moments_check(store, rel, "bf16", key, "fraction"), negative=True))
    return out


B1_BF16 = 0.8984375  # bf16(0.9): what b1 becomes on a bf16 moment under JAX's weak typing
GRAD_REL_BAR = 1e-6  # what the float32 gradients may differ by (the loss_and_grads bar, relative to max |g|)


def _mu_rounding_bound(store, rel, factory_key):
    """max over the bf16 first moments after K updates of |ours - big_vision| / bound, where the bound is
    what the arithmetic allows: each update stores round_bf16(b1 * mu + 0.1 * g); two such roundings of
    values that agree up to the gradient difference differ by at most one bf16 ulp of the result (half an
    ulp each), plus 0.1 * |dg|; an earlier difference is carried on multiplied by b1 < 1. So
    bound_K = sum_j b1^(K-j) (ulp(mu_j) + 0.1 * GRAD_REL_BAR * max |g_j|), with ulp taken one ulp above our
    own |mu_j| (the reference's may have rounded up into the next binade)."""
    def compute():
        data = store.load(rel)
        model = _tiny_model(data)
        opt, sched = FACTORIES[factory_key]("bf16")(model)
        images, labels = _batches(data)
        ents = {n: e for n, e in _bv_tensors(model).items() if not _invariant(n)}
        bound: dict[str, np.ndarray] = {}
        with _one_thread():
            for k in range(images.shape[0]):
                train.train_step(model, opt, sched, images[k], labels[k], mixup_a=float(data["mixup_a"][k]))
                for n, e in ents.items():
                    mu = np.abs(e.to_bv(opt.state[e.tensor]["mu"].float().numpy()).astype(np.float64))
                    g_max = float(e.tensor.grad.abs().max())
                    ulp = 2.0 ** (np.floor(np.log2(np.maximum(mu * (1 + 2.0 ** -7), 2.0 ** -126))) - 7)
                    bound[n] = B1_BF16 * bound.get(n, 0.0) + ulp + 0.1 * GRAD_REL_BAR * g_max
        ref = _tree(data, "bf16/mu:")
        worst, where, n_over = 0.0, "", 0
        for n, e in ents.items():
            ours = e.to_bv(opt.state[e.tensor]["mu"].float().numpy()).astype(np.float64)
            r = np.abs(ours - ref[n].astype(np.float64)) / bound[n]
            n_over += int((r > 1).sum())
            i = np.unravel_index(int(np.argmax(r)), r.shape)
            if r[i] > worst:
                worst, where = float(r[i]), f"{n}{tuple(int(x) for x in i)}: ours {ours[i]:.6g} vs {float(ref[n][i]):.6g}"
        return worst, f"worst {where or '(all equal)'}; {n_over} moments beyond their bound; {_mu_mismatch(opt, model, ref)[1]}"
    return compute


FACTORIES = {
    "ours": lambda run: _ours_factory(run),
    # the all-parameters-at-once update (what CUDA training runs), forced on here on the CPU
    "ours_flat": lambda run: (lambda m: _ours(m, run, flat=True)),
    "torch_adamw_converted": lambda run: (lambda m: _torch_adamw(lambda c: c["wd"] / c["lr"])(m, run)),
    "torch_adamw_wd_1e-4": lambda run: (lambda m: _torch_adamw(lambda c: c["wd"])(m, run)),
    "decay_all_params": lambda run: _bv_adam_with(run, wd_mults=((".*", 1.0),)),
    "linearlr_warmup": lambda run: _bv_adam_with(run, _linear_warmup_then_cosine),
    "cosine_annealing_whole_run": lambda run: _bv_adam_with(run, _cosine_whole_run),
    "clip_after_adam": lambda run: _bv_adam_with(run, cls=_clip_after_adam_cls()),
    "fp32_moment": lambda run: _bv_adam_with(run, mu_dtype="float32"),
    "bf16_product_rounded": lambda run: _bv_adam_with(run, cls=_rounded_product_cls()),
    "bf16_moment_plain_b1": lambda run: _bv_adam_with(run, cls=_plain_b1_cls()),
    "flat_bf16_product_rounded": lambda run: _bv_adam_with(run, cls=_rounded_product_cls(), flat=True),
}


def _ours_factory(run):
    return lambda model: _ours(model, run)


def checks(store) -> list[Check]:
    out = []
    kinds = {"schedule": _schedule_checks, "steps": _steps_checks, "mixup": _mixup_checks, "xent": _xent_checks,
             "trajectory": _trajectory_checks}
    for rel in store.files(NAME):
        key = rel.rsplit("/", 1)[1][:-4]
        if key in kinds:
            out.extend(kinds[key](store, rel))
    return out

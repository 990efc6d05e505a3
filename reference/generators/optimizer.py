"""Fixtures for the `optimizer` family, from big_vision's own code.

Cases (``spec["kind"]``):
  schedule    big_vision.utils.create_learning_rate_schedule, jitted with an int32 step like train.py
  steps       big_vision.utils.steps, TFDS percent-split sizes, the vit_s16_i1k config's optimizer fields
  mixup       big_vision.utils.get_mixup on a batch (with a probe that reveals the coefficient), and the
              coefficients drawn for many steps the way train.py folds the step into the rng
  xent        big_vision.utils.softmax_xent on soft labels (mean and per example)
  trajectory  a tiny big_vision ViT trained K steps with big_vision.optax.make (clip, scale_by_adam with
              mu in float32 and in bfloat16, kernel-only weight decay, warmup + cosine) on mixed-up
              batches: initial params, gradients (also via utils.accumulate_gradient), losses, params
              after every step, final Adam moments.
"""
from __future__ import annotations

import json

import numpy as np


def _spec(request):
    return json.loads(str(request["spec"][()]))


def _schedule(request, spec, bv):
    import jax
    import jax.numpy as jnp
    u = bv.module("utils")
    steps = request["steps"].astype(np.int32)
    out = {}
    for key, kw in spec["schedules"].items():
        fn = jax.jit(u.create_learning_rate_schedule(**kw))
        out[f"sched_{key}"] = np.asarray([np.float32(fn(jnp.int32(s))) for s in steps], np.float32)
    return out


def _steps(request, spec, bv):
    u = bv.module("utils")
    out = {}
    for key, c in spec["cases"].items():
        try:
            val = u.steps(c["prefix"], c["config"], c.get("data_size"), c.get("batch_size"),
                          c.get("total_steps"), default=-12345)
        except (AssertionError, ValueError) as e:  # recorded as "big_vision refuses"
            val = -99999
            out[f"error_{key}"] = np.array(type(e).__name__)
        out[f"steps_{key}"] = np.array(val, np.int64)
    from tensorflow_datasets.core import naming
    from tensorflow_datasets.core import splits as tfds_splits
    for key, c in spec.get("tfds_splits", {}).items():
        n = c["num_examples"]
        template = naming.ShardedFileTemplate(data_dir="/nonexistent", dataset_name="imagenet2012",
                                              split="train", filetype_suffix="tfrecord")
        k = 1024  # imagenet2012's train split has 1024 shards; percent slicing does not depend on it
        lengths = [n // k + (1 if i < n % k else 0) for i in range(k)]
        sd = tfds_splits.SplitDict([tfds_splits.SplitInfo(name="train", shard_lengths=lengths, num_bytes=0,
                                                           filename_template=template)])
        out[f"split_{key}"] = np.array(sd[c["split"]].num_examples, np.int64)
    cfg = bv.module("configs.vit_s16_i1k").get_config()
    fields = {"total_epochs": cfg.total_epochs, "batch_size": cfg.input.batch_size, "split": cfg.input.data.split,
              "lr": cfg.lr, "wd": cfg.wd, "grad_clip_norm": cfg.grad_clip_norm, "optax_name": cfg.optax_name,
              "optax": dict(cfg.optax), "schedule": dict(cfg.schedule), "mixup": dict(cfg.mixup),
              "loss": cfg.loss, "wd_mults": cfg.get("wd_mults", None)}
    out["vit_s16_i1k_config"] = np.array(json.dumps(fields, sort_keys=True))
    return out


def _mixup(request, spec, bv):
    import jax
    u = bv.module("utils")
    images, labels = request["images"], request["labels"]
    probe = np.zeros((images.shape[0],), np.float32)
    probe[0] = 1.0  # mixed probe[0] = a * 1 + (1 - a) * 0 = a
    rng = jax.random.PRNGKey(spec["seed"])
    _, (mixed_images, mixed_labels), more = u.get_mixup(rng, spec["p"])(images, labels, probe=probe)
    a = np.float32(more["probe"][0])
    # Coefficients as train.py draws them: rng_loop folded with the step count, then get_mixup's split.
    loop = jax.random.PRNGKey(spec["seed"] + 1)
    draw = jax.jit(lambda s: u.get_mixup(jax.random.fold_in(loop, s), spec["p"])(probe=probe)[2]["probe"][0])
    samples = np.asarray([np.float32(draw(s)) for s in range(spec["n_samples"])], np.float32)
    return {"mixed_images": np.asarray(mixed_images, np.float32), "mixed_labels": np.asarray(mixed_labels, np.float32),
            "a": np.array(a, np.float32), "a_samples": samples}


def _xent(request, spec, bv):
    u = bv.module("utils")
    logits, labels = request["logits"], request["labels"]
    return {"loss_mean": np.asarray(u.softmax_xent(logits=logits, labels=labels), np.float32),
            "loss_per_example": np.asarray(u.softmax_xent(logits=logits, labels=labels, reduction=False),
                                           np.float32)}


def _flat(u, tree, prefix):
    names_vals, _ = u.tree_flatten_with_names(tree)
    out = {}
    for name, v in names_vals:
        a = np.asarray(v)
        if a.dtype.name == "bfloat16":
            a = a.view(np.uint16)  # exact bits, half the bytes of float32
        out[f"{prefix}{name}"] = a
    return out


def _trajectory(request, spec, bv):
    import jax
    import jax.numpy as jnp
    import ml_collections
    import optax
    u = bv.module("utils")
    bv_optax = bv.module("optax")
    vit = bv.module("models.vit")

    model = vit.Model(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in spec["model"].items()})
    images = request["images"].astype(np.float32) / np.float32(127.5) - np.float32(1.0)  # (K, B, H, W, 3)
    onehot = np.eye(spec["model"]["num_classes"], dtype=np.float32)[request["labels"]]   # (K, B, classes)
    K, B = images.shape[:2]
    params0 = model.init(jax.random.PRNGKey(spec["init_seed"]), images[0])["params"]

    def loss_fn(params, x, y):
        logits, _ = model.apply({"params": params}, x, train=True)
        return u.softmax_xent(logits=logits, labels=y)

    probe = np.zeros((B,), np.float32)
    probe[0] = 1.0
    loop = jax.random.PRNGKey(spec["mixup_seed"])

    def mix(k):
        rng = jax.random.fold_in(loop, k)
        _, (x, y), more = u.get_mixup(rng, spec["mixup_p"])(images[k], onehot[k], probe=probe)
        return x, y, np.float32(more["probe"][0])

    out = _flat(u, params0, "init:")
    mixed = [mix(k) for k in range(K)]
    out["mixup_a"] = np.asarray([m[2] for m in mixed], np.float32)

    grad_fn = jax.jit(jax.value_and_grad(loss_fn))
    loss0, grads0 = grad_fn(params0, mixed[0][0], mixed[0][1])
    out.update(_flat(u, grads0, "grads:"))
    out["loss0"] = np.asarray(loss0, np.float32)
    accum = spec["accum_steps"]
    loss_acc, grads_acc = u.accumulate_gradient(grad_fn, params0, mixed[0][0], mixed[0][1], accum)
    out.update(_flat(u, grads_acc, "grads_accum:"))
    out["loss0_accum"] = np.asarray(loss_acc, np.float32)

    wd_cases = spec.get("wd_mults_cases", {})
    for key, wd_mults in wd_cases.items():
        patterns = [p for p, _ in wd_mults] if wd_mults else [".*/kernel$"]
        mults = [m for _, m in wd_mults] if wd_mults else [1.0]
        masks = u.make_mask_trees(params0, patterns)
        decayed = {}
        for mask, m in zip(masks, mults):
            for name, flag in u.tree_flatten_with_names(mask)[0]:
                if bool(flag):
                    decayed[name] = m
        out[f"decayed:{key}"] = np.array(json.dumps(decayed, sort_keys=True))

    for run, optim in spec["runs"].items():
        config = ml_collections.ConfigDict(optim["config"])
        tx, sched_fns = bv_optax.make(config, params0, sched_kw=dict(
            total_steps=optim["total_steps"], batch_size=B, data_size=optim.get("data_size")))

        @jax.jit
        def update(params, opt, x, y, tx=tx):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            updates, opt = tx.update(grads, opt, params)
            return optax.apply_updates(params, updates), opt, loss, optax.global_norm(grads)

        params, opt = params0, tx.init(params0)
        losses, norms, scheds = [], [], []
        for k in range(K):
            count = bv_optax.get_count(opt)
            scheds.append(np.float32(sched_fns[0](jnp.int32(count))))
            params, opt, loss, gnorm = update(params, opt, mixed[k][0], mixed[k][1])
            losses.append(np.float32(loss))
            norms.append(np.float32(gnorm))
            out.update(_flat(u, params, f"{run}/params{k + 1}:"))
        adam = bv_optax.find_states(opt, optax.ScaleByAdamState)
        assert len(adam) == 1, adam
        out.update(_flat(u, adam[0].mu, f"{run}/mu:"))
        out.update(_flat(u, adam[0].nu, f"{run}/nu:"))
        out[f"{run}/mu_dtype"] = np.array(str(jax.tree.leaves(adam[0].mu)[0].dtype))
        out[f"{run}/loss"] = np.asarray(losses, np.float32)
        out[f"{run}/grad_norm"] = np.asarray(norms, np.float32)
        out[f"{run}/schedule"] = np.asarray(scheds, np.float32)
    return out


KINDS = {"schedule": _schedule, "steps": _steps, "mixup": _mixup, "xent": _xent, "trajectory": _trajectory}


def generate(name, request, bv):
    spec = _spec(request)
    return KINDS[spec["kind"]](request, spec, bv)

"""Unit tests for torch_impl.model (vit, convert) (the big_vision parity checks themselves are the
`vit_init` and `vit_forward` families, run by tests/test_parity.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from torch_impl.model import convert as C
from torch_impl.model import POOL_TYPES, VARIANTS, ViT, decode_variant, num_params

TINY = dict(variant="mu/8", width=32, depth=2, num_heads=2, mlp_dim=64, image_size=32)


def _tiny(pool_type="gap", posemb="sincos2d", rep_size=False, num_classes=5, seed=0, **kw):
    return ViT(num_classes, pool_type=pool_type, posemb=posemb, rep_size=rep_size, head_zeroinit=False,
               generator=torch.Generator().manual_seed(seed), **{**TINY, **kw}).eval()


def _images(n=2, h=32, w=32, seed=0):
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ---- variants ------------------------------------------------------------------------------------------
def test_decode_variant_patch_and_overrides():
    cfg = decode_variant("B/32")
    assert cfg["patch_size"] == (32, 32) and (cfg["width"], cfg["depth"], cfg["mlp_dim"], cfg["num_heads"]) == VARIANTS["B"]
    assert "patch_size" not in decode_variant("L")
    m = ViT(10, variant="S/16", depth=2, width=64, num_heads=4)  # overrides win over the variant
    assert (m.width, m.depth, m.num_heads, m.mlp_dim, m.patch_size) == (64, 2, 4, 1536, (16, 16))
    m = ViT(10, variant=None, depth=1)  # big_vision's _Model defaults: B-sized, patch 16, mlp 4x
    assert (m.width, m.num_heads, m.mlp_dim, m.patch_size) == (768, 12, 3072, (16, 16))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_builds_with_table_shapes(name):
    with torch.device("meta"):  # no memory, no init cost: "e" has ~4e9 parameters
        m = ViT(1000, variant=f"{name}/14")
    width, depth, mlp_dim, heads = VARIANTS[name]
    names = C.big_vision_shapes(m)
    assert names["embedding/kernel"] == (14, 14, 3, width)
    assert names[f"Transformer/encoderblock_{depth - 1}/MlpBlock_0/Dense_0/kernel"] == (width, mlp_dim)
    assert names["Transformer/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel"] == (width, heads, width // heads)
    assert f"Transformer/encoderblock_{depth}/LayerNorm_0/scale" not in names


@pytest.mark.live
def test_variant_table_equals_big_vision(big_vision_env):
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from big_vision.models import vit; "
            "print(json.dumps({v: vit.decode_variant(v + '/8') for v in sys.argv[2:]}))")
    proc = subprocess.run([sys.executable, "-c", code, big_vision_env["BIG_VISION_DIR"], *VARIANTS],
                          capture_output=True, text=True, env={**big_vision_env, "JAX_PLATFORMS": "cpu"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    for v, cfg in theirs.items():
        ours = decode_variant(v + "/8")
        assert {k: list(x) if isinstance(x, tuple) else x for k, x in ours.items()} == cfg, v


def test_unknown_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown ViT variant 'Q/16'"):
        ViT(10, variant="Q/16")
    with pytest.raises(ValueError, match="pool_type 'cls'"):
        ViT(10, pool_type="cls", **TINY)
    with pytest.raises(ValueError, match="posemb 'sincos1d'"):
        ViT(10, posemb="sincos1d", **TINY)
    with pytest.raises(TypeError, match="unknown keyword"):
        ViT(10, variant="S/16", hidden_size=12)
    with pytest.raises(ValueError, match="width divisible by 4"):
        ViT(10, variant="mu/8", width=30, num_heads=2)


# ---- shapes per pool type -------------------------------------------------------------------------------
@pytest.mark.parametrize("posemb", ["sincos2d", "learn"])
@pytest.mark.parametrize("pool_type", POOL_TYPES)
def test_pool_type_shapes(pool_type, posemb):
    m = _tiny(pool_type, posemb, rep_size=True, image_size=(32, 48))
    logits, out = m(_images(2, 32, 48), outputs_2d=True)
    tokens = 4 * 6 + (pool_type == "tok")
    assert out["stem"].shape == (2, 4, 6, 32)
    assert out["with_posemb"].shape == (2, 24, 32)
    assert out["encoder/block01/+mlp"].shape == out["encoded"].shape == (2, tokens, 32)
    assert out["pre_logits_2d"].shape == (2, 4, 6, 32) and out["logits_2d"].shape == (2, 4, 6, 5)
    if pool_type == "none":
        assert "head_input" not in out and logits.shape == (2, tokens, 5)
    else:
        assert out["head_input"].shape == (2, 32) and logits.shape == (2, 5)
    assert torch.equal(out["logits"], logits)
    assert ("cls" in C.big_vision_shapes(m)) == (pool_type == "tok")
    assert ("MAPHead_0/probe" in C.big_vision_shapes(m)) == (pool_type == "map")


def test_no_head_returns_pre_logits():
    for classes in (0, None):
        m = _tiny(num_classes=classes)
        logits, out = m(_images())
        assert "logits" not in out and torch.equal(logits, out["pre_logits"]) and logits.shape == (2, 32)
        assert not any(n.startswith("head/") for n in C.big_vision_shapes(m))


def test_sincos_any_image_size_learned_posemb_fixed():
    m = _tiny("gap", "sincos2d")
    assert m(_images(1, 64, 48))[1]["with_posemb"].shape == (1, 48, 32)
    m = _tiny("gap", "learn")
    with pytest.raises(ValueError, match="image_size=\\(64, 48\\)"):
        m(_images(1, 64, 48))


def test_dropout_only_in_train_mode():
    m = _tiny(dropout=0.5)
    x = _images()
    with torch.no_grad():
        a, b = m(x)[0], m(x)[0]
        assert torch.equal(a, b)
        m.train()
        torch.manual_seed(0)
        c = m(x)[0]
    assert not torch.allclose(a, c)


def test_backward_reaches_every_parameter():
    m = _tiny("map", "learn", rep_size=True).train()
    m(_images())[0].square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_seeded_init_is_reproducible():
    a = C.big_vision_params(_tiny(seed=3))
    b = C.big_vision_params(_tiny(seed=3))
    c = C.big_vision_params(_tiny(seed=4))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["embedding/kernel"], c["embedding/kernel"])
    d = C.big_vision_params(ViT(5, pool_type="gap", head_zeroinit=False, generator=3, **TINY))  # int seed
    assert all(np.array_equal(a[k], d[k]) for k in a)


def test_init_values_follow_flax():
    m = ViT(10, variant="S/16", head_zeroinit=True, rep_size=True, generator=torch.Generator().manual_seed(0))
    p = C.big_vision_params(m)
    assert not p["head/kernel"].any() and not p["head/bias"].any()
    assert (p["Transformer/encoder_norm/scale"] == 1).all()
    emb = p["embedding/kernel"]  # lecun_normal with the variance correction: std 1/sqrt(768), |x| <= 2 * 0.0361/0.8796
    assert abs(emb.std() * np.sqrt(768) - 1) < 0.01 and np.abs(emb).max() <= 2 / np.sqrt(768) / 0.87962566 + 1e-7
    q = p["Transformer/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel"]
    assert np.abs(q).max() <= np.sqrt(6 / (2 * 384)) and abs(q.std() / np.sqrt(2 / (2 * 384)) - 1) < 0.01
    b = p["Transformer/encoderblock_0/MlpBlock_0/Dense_0/bias"]
    assert 0.5e-6 < b.std() < 2e-6


# ---- conversion ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pool_type,posemb,rep", [("gap", "sincos2d", False), ("tok", "learn", True),
                                                   ("map", "learn", 16), ("none", "sincos2d", False)])
def test_round_trip_is_lossless(pool_type, posemb, rep):
    src = _tiny(pool_type, posemb, rep, seed=1)
    params = C.big_vision_params(src)
    dst = _tiny(pool_type, posemb, rep, seed=2)
    C.load_big_vision_params(dst, params)
    for (k, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert torch.equal(a, b), k
    again = C.big_vision_params(dst)
    assert again.keys() == params.keys() and all(np.array_equal(again[k], params[k]) for k in params)
    assert sum(v.size for v in params.values()) == num_params(src)


def test_kernel_layouts():
    m = _tiny(seed=5)
    p = C.big_vision_params(m)
    w = m.embedding.weight.detach().numpy()  # OIHW vs HWIO
    assert p["embedding/kernel"].shape == (8, 8, 3, 32) and p["embedding/kernel"][1, 2, 0, 7] == w[7, 0, 1, 2]
    attn = m.encoder.blocks[0].attn  # (C, heads, head_dim): output feature = head * head_dim + d
    q = p["Transformer/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel"]
    assert q.shape == (32, 2, 16) and q[3, 1, 5] == attn.query.weight[16 + 5, 3].item()
    o = p["Transformer/encoderblock_0/MultiHeadDotProductAttention_0/out/kernel"]
    assert o.shape == (2, 16, 32) and o[1, 5, 3] == attn.out.weight[3, 16 + 5].item()
    d = p["Transformer/encoderblock_0/MlpBlock_0/Dense_0/kernel"]
    assert d.shape == (32, 64) and d[3, 9] == m.encoder.blocks[0].mlp.fc1.weight[9, 3].item()


def test_conversion_errors_list_the_names():
    m = _tiny()
    params = C.big_vision_params(m)
    bad = dict(params)
    del bad["Transformer/encoderblock_1/LayerNorm_0/scale"]
    bad["Transformer/encoderblock_2/LayerNorm_0/scale"] = np.ones(32, np.float32)
    bad["head/kernel"] = np.zeros((32, 7), np.float32)
    with pytest.raises(C.ConversionError) as e:
        C.load_big_vision_params(m, bad)
    msg = str(e.value)
    assert "missing" in msg and "Transformer/encoderblock_1/LayerNorm_0/scale" in msg
    assert "unexpected" in msg and "Transformer/encoderblock_2/LayerNorm_0/scale" in msg
    assert "head/kernel: (32, 7) -> (32, 5)" in msg
    before = C.big_vision_params(m)  # nothing was copied
    assert all(np.array_equal(before[k], params[k]) for k in params)


def test_checkpoint_file_formats(tmp_path):
    src = _tiny("tok", "learn", seed=7)
    params = C.big_vision_params(src)
    x = _images()
    want = src(x)[0]

    def check(path, **kw):
        dst = _tiny("tok", "learn", seed=8)
        C.load_big_vision_checkpoint(dst, path, **kw)
        torch.testing.assert_close(dst(x)[0], want, rtol=0, atol=0)

    np.savez(tmp_path / "plain.npz", **params)
    check(tmp_path / "plain.npz")
    np.savez(tmp_path / "train.npz", **{f"params/{k}": v for k, v in params.items()},
             **{"opt/0/count": np.int32(3), "opt/0/mu/head/bias": np.zeros(5, np.float32)})
    check(tmp_path / "train.npz")
    np.savez(tmp_path / "old.npz", **{f"opt/target/{k}": v for k, v in params.items()})
    check(tmp_path / "old.npz")
    np.savez(tmp_path / "two_tower.npz", **{f"params/img/{k}": v for k, v in params.items()},
             **{"params/txt/head/kernel": np.zeros((3, 3), np.float32)})
    check(f"{tmp_path / 'two_tower.npz'}:img")
    check(tmp_path / "two_tower.npz", key="img")
    with pytest.raises(C.ConversionError, match="unexpected"):
        C.load_big_vision_checkpoint(_tiny("tok", "learn"), tmp_path / "two_tower.npz")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        C.load_big_vision_checkpoint(_tiny("tok", "learn"), tmp_path / "nope.npz")


def test_legacy_layouts_are_normalised(tmp_path):
    src = _tiny("tok", "learn", seed=9)
    p = C.big_vision_params(src)
    x = _images()
    want = src(x)[0]
    # vision_transformer-era layout: posemb inside Transformer/posembed_input with the [cls] entry folded in
    old = {k: v for k, v in p.items() if k not in ("pos_embedding", "cls")}
    old["Transformer/posembed_input/pos_embedding"] = np.concatenate([np.zeros((1, 1, 32), np.float32), p["pos_embedding"]], 1)
    old["cls"] = p["cls"]
    dst = _tiny("tok", "learn", seed=1)
    C.load_big_vision_params(dst, C.normalize_legacy_layout(old))
    torch.testing.assert_close(dst(x)[0], want, rtol=0, atol=0)
    # scanned encoder: blocks stacked along a leading depth axis
    scan = {k: v for k, v in p.items() if not k.startswith("Transformer/encoderblock_")}
    for k in [k for k in p if k.startswith("Transformer/encoderblock_0/")]:
        rest = k.split("/", 2)[2]
        scan[f"Transformer/encoderblock/{rest}"] = np.stack([p[f"Transformer/encoderblock_{i}/{rest}"] for i in range(2)])
    np.savez(tmp_path / "scan.npz", **{f"params/{k}": v for k, v in scan.items()})
    dst = _tiny("tok", "learn", seed=1)
    C.load_big_vision_checkpoint(dst, tmp_path / "scan.npz")
    torch.testing.assert_close(dst(x)[0], want, rtol=0, atol=0)


def test_bfloat16_void_arrays_load_exactly():
    m = _tiny()
    p = C.big_vision_params(m)
    bits = (p["embedding/kernel"].view(np.uint32) >> 16).astype(np.uint16)
    p["embedding/kernel"] = bits.view("V2")  # how numpy writes a bfloat16 array to .npz
    C.load_big_vision_params(m, p)
    assert np.array_equal(C.big_vision_params(m)["embedding/kernel"], (bits.astype(np.uint32) << 16).view(np.float32))


def test_real_big_vision_checkpoint_files_give_big_vision_logits(store, tmp_path):
    """Files written by the reference process in big_vision's .npz format (params + optax state with a
    bfloat16 moment; and a bfloat16 params-only file), read back there by big_vision's utils.load_params."""
    from parity.families.vit_forward import build_model
    from parity.store import decode_spec
    rel = "vit_forward/tiny_checkpoint.npz"
    data = store.load(rel)
    spec = decode_spec(data["spec"])
    images = torch.from_numpy(np.ascontiguousarray(data["images"].transpose(0, 3, 1, 2)))
    stems = [k.split("/", 1)[1] for k in data if k.startswith("ckpt_bytes/")]
    assert sorted(stems) == ["params_bf16", "train_f32"]
    for stem in stems:
        path = tmp_path / f"{stem}.npz"
        path.write_bytes(data[f"ckpt_bytes/{stem}"].tobytes())
        model = build_model(spec["model"], data["images"].shape[1:3]).eval()
        C.load_big_vision_checkpoint(model, path)
        with torch.no_grad():
            logits = model(images)[0].numpy()
        ref = data[f"ckpt_logits/{stem}"]
        assert np.abs(logits - ref).max() <= 1e-5 * np.abs(ref).max(), stem


# ---- bfloat16 autocast ------------------------------------------------------------------------------------
def _synthetic_s16(device):
    from parity.families.vit_forward import synthetic_param
    m = ViT(1000, variant="S/16", rep_size=True)
    C.load_big_vision_params(m, {k: synthetic_param(0, k, s) for k, s in C.big_vision_shapes(m).items()})
    return m.to(device).eval()


# Bound for bf16 autocast vs fp32 logits: bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%);
# matmuls accumulate in fp32, so the error grows roughly like sqrt(#rounded ops) through 12 blocks. We
# expect (and assert) max |logits_bf16 - logits_fp32| <= 5% of max |logits_fp32| and the top-1 class
# unchanged on clearly separated inputs. Measured with CPU autocast: 1.2% (tiny MAP model), 0.7%
# (ViT-S/16 with synthetic parameters, 224 px).
BF16_REL_BOUND = 0.05


def test_bf16_autocast_cpu_smoke():
    m = _tiny("map", "learn", rep_size=True)
    x = _images(4)
    with torch.no_grad():
        ref = m(x)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, out = m(x)
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()
    err = (logits.float() - ref).abs().max() / ref.abs().max()
    assert err <= BF16_REL_BOUND, float(err)


@pytest.mark.gpu
def test_bf16_autocast_gpu_s16():
    m = _synthetic_s16("cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.rand(8, 3, 224, 224, device="cuda", generator=g) * 2 - 1
    with torch.no_grad():
        ref = m(x)[0].float()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = m(x)[0].float()
    err = (logits - ref).abs().max() / ref.abs().max()
    assert err <= BF16_REL_BOUND, float(err)


def test_non_square_learned_posemb_is_not_mistaken_for_a_folded_cls(tmp_path):
    # a 2x5 patch grid has 10 = 3*3 + 1 tokens, big_vision's heuristic for "old [cls]-first posemb"
    src = _tiny("tok", "learn", seed=11, image_size=(16, 40))
    np.savez(tmp_path / "c.npz", **{f"params/{k}": v for k, v in C.big_vision_params(src).items()})
    dst = _tiny("tok", "learn", seed=12, image_size=(16, 40))
    C.load_big_vision_checkpoint(dst, tmp_path / "c.npz")
    x = _images(2, 16, 40)
    torch.testing.assert_close(dst(x)[0], src(x)[0], rtol=0, atol=0)


def test_big_vision_params_is_a_snapshot_not_a_view():
    # Regression: 1-D params (biases, LayerNorm) used to come back as views of the live tensors.
    from torch_impl.model.convert import big_vision_params
    model = ViT(3, variant="mu/8", width=32, depth=1, num_heads=2, mlp_dim=64, image_size=16)
    snap = big_vision_params(model)
    before = {k: v.copy() for k, v in snap.items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    for k in snap:
        np.testing.assert_array_equal(snap[k], before[k], err_msg=k)

"""The fast CPU pipeline and the batched augmentation equal the reference kernels (torch_impl.pp.randaug,
torch_impl.pp.resize), which the parity families check against big_vision. The fast_paths family
(tests/test_parity.py) checks the same code against big_vision's recorded outputs directly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from parity import photos
from torch_impl.pp import jpeg as J
from torch_impl.pp import resize as R
from torch_impl.pp import tf_math as T
from torch_impl.pp.backends import numpy as FP
from torch_impl.pp.pipelines import FastTrainPipeline
from torch_impl.pp.randaug import OPS, apply_op, randaugment
from torch_impl.pp.backends.batched import (BatchedRandAugment17, batched_apply_op, batched_crop_resize,
                                        batched_randaugment, sample_batch_params)

LEVELS = (0, 1, 2.5, 5, 9, 10)


@pytest.fixture(params=["c", "numba", "numpy"])
def backend(request):
    """Run a fast-path test with the C resize (torch_impl.pp.tf_jpeg: decode + resize in one call), the compiled
    kernels (torch_impl.pp.backends.numba) and the numpy fallback: all must give apply_op's bits. ("c" keeps
    the numba kernels for RandAugment; only the resize is in C.)"""
    from torch_impl.pp import tf_jpeg
    from torch_impl.pp.backends import numba as NK
    prev_c = tf_jpeg.set_c_resize(request.param == "c")   # raises, failing the test, if the extension is missing
    prev = NK.set_enabled(request.param in ("c", "numba") and NK.available() or request.param == "numba")
    yield request.param
    NK.set_enabled(prev)
    tf_jpeg.set_c_resize(prev_c)


@pytest.fixture(scope="module")
def jpegs():
    return photos.imagenet_like_jpegs()


def _images(g):
    flat = torch.full((3, 16, 9), 77, dtype=torch.uint8)
    coarse = (torch.randint(0, 256, (3, 37, 53), generator=g, dtype=torch.uint8) // 64) * 20
    return [torch.randint(0, 256, (3, 37, 53), generator=g, dtype=torch.uint8), coarse, flat,
            torch.randint(0, 256, (3, 1, 1), generator=g, dtype=torch.uint8)]


def test_fast_apply_op_equals_apply_op(backend):
    g = torch.Generator().manual_seed(0)
    for x in _images(g):
        h, w = x.shape[-2:]
        for op in OPS:
            for lv in LEVELS:
                for sign in (1, -1):
                    c = (int(torch.randint(0, h, (1,), generator=g)), int(torch.randint(0, w, (1,), generator=g)))
                    ref = apply_op(x, op, lv, sign=sign, cutout_center=c)
                    got = FP.fast_apply_op(x, op, lv, sign=sign, cutout_center=c)
                    assert torch.equal(ref, got), (op, lv, sign, tuple(x.shape))


def _value_images(g):
    """Images that contain every uint8 value in every channel (in different combinations), plus small and
    low-contrast ones: the numpy kernels of torch_impl.pp.backends.numpy are checked on all 256 values."""
    allv = torch.arange(256, dtype=torch.uint8)
    ramp = torch.stack([allv.view(16, 16), allv.flip(0).view(16, 16), allv.view(16, 16).t().contiguous()])
    return [torch.randint(0, 256, (3, 48, 56), generator=g, dtype=torch.uint8), ramp,
            torch.randint(0, 256, (3, 2, 2), generator=g, dtype=torch.uint8),
            torch.randint(0, 256, (3, 3, 3), generator=g, dtype=torch.uint8),
            torch.randint(0, 256, (3, 31, 45), generator=g, dtype=torch.uint8) // 3 + 40,
            torch.full((3, 5, 7), 200, dtype=torch.uint8)]


def test_fast_apply_op_all_values_and_levels_above_10(backend):
    g = torch.Generator().manual_seed(1)
    for x in _value_images(g):
        for op in OPS:
            for lv in (0.5, 3, 5.5, 7, 12, 15, 20, 30):
                for sign in (1, -1):
                    ref = apply_op(x, op, lv, sign=sign, cutout_center=(1, 1))
                    got = FP.fast_apply_op(x, op, lv, sign=sign, cutout_center=(1, 1))
                    assert torch.equal(ref, got), (op, lv, sign, tuple(x.shape))


def test_integer_identities_exhaustively(backend):
    from torch_impl.pp import tf_math as A
    from torch_impl.pp import randaug as RA
    from torch_impl.pp.backends import numpy as O
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 256).expand(3, 1, 256).contiguous()
    for thr in range(0, 300):
        t = RA.solarize_threshold(thr)
        assert torch.equal(torch.from_numpy(O.solarize(x.numpy(), t)), RA._solarize(x, t)), thr
    assert torch.equal(torch.from_numpy(O.invert(x.numpy())), 255 - x)
    for bits in range(0, 40):
        shift = RA.posterize_shift(bits)
        assert torch.equal(torch.from_numpy(O.posterize(x.numpy(), shift)), RA._posterize(x, shift)), bits
    for add in range(0, 400):
        assert torch.equal(torch.from_numpy(O.solarize_add(x.numpy(), add)), RA._solarize_add(x, add)), add
    for f in (0.0, 0.1, 0.5, 1.0, 1.3, 1.9, 2.5, 5.0):
        assert torch.equal(torch.from_numpy(O.brightness(x.numpy(), f)), A._blend(torch.zeros_like(x), x, f)), f
        for d in (0, 1, 127, 196, 255):
            ref = A._blend(torch.full_like(x, d), x, f)
            assert torch.equal(torch.from_numpy(O.contrast_constant(x.numpy(), d, f)), ref), (f, d)


def test_value_range_shortcut_on_every_value(backend):
    x = torch.arange(256, dtype=torch.uint8).view(1, 16, 16).expand(3, 16, 16)
    for img in (x, x.contiguous(), x[:, ::2]):
        got = FP.to_value_range(img)
        assert got.dtype == torch.float32 and torch.equal(got, T.value_range(img, -1, 1))
    assert torch.equal(FP.to_value_range(x, 0.0, 1.0), T.value_range(x, 0, 1))


def test_single_box_sampler_equals_inception_crop_sampler():
    from torch_impl.pp.crop import sample_inception_box, sample_inception_box1
    for (H, W) in ((375, 500), (500, 375), (224, 224), (100, 2660), (10, 400), (1, 1), (2, 3), (1000, 33)):
        for area in ((0.05, 1.0), (0.5, 0.6), (1.0, 1.0), (0.9, 0.1)):
            g1, g2 = torch.Generator().manual_seed(H + W), torch.Generator().manual_seed(H + W)
            for i in range(40 if min(H, W) >= 224 else 6):   # odd shapes take up to 100 attempts each
                a = sample_inception_box(H, W, area_range=area, generator=g1)
                b = sample_inception_box1(H, W, area, generator=g2)
                assert a == b, (H, W, area, i)
            assert torch.equal(g1.get_state(), g2.get_state())     # the same number of draws


def test_fast_randaugment_same_draws_same_result(backend):
    x = torch.from_numpy(photos.photo("astronaut", (64, 80))).permute(2, 0, 1).contiguous()
    for seed in range(12):
        a = randaugment(x, 2, 10, generator=torch.Generator().manual_seed(seed))
        b = FP.fast_randaugment(x, 2, 10, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(a, b), seed


def test_batched_apply_op_per_sample_equals_apply_op():
    g = torch.Generator().manual_seed(1)
    for h, w in ((37, 53), (8, 8)):
        x = torch.randint(0, 256, (6, 3, h, w), generator=g, dtype=torch.uint8)
        x[0] = 9  # a flat image
        lv = torch.tensor([0, 1, 3.5, 5, 9, 10.0], dtype=torch.float64)
        sg = torch.tensor([1, -1, 1, -1, -1, 1])
        cc = torch.stack([torch.randint(0, h, (6,), generator=g), torch.randint(0, w, (6,), generator=g)], 1)
        for op in OPS:
            out = batched_apply_op(x, op, lv, sign=sg, cutout_center=cc)
            for i in range(6):
                ref = apply_op(x[i], op, float(lv[i]), sign=int(sg[i]), cutout_center=tuple(cc[i].tolist()))
                assert torch.equal(out[i], ref), (op, i)


def test_every_backend_reads_the_one_op_table_above_level_10(backend):
    """big_vision accepts magnitudes above 10 (its configs use randaug(2, 15) and (2, 20)); the op table's
    level -> argument (Posterize's wrapped shift included: bits > 8 at levels >= 22.5) is the same for the
    reference, the numpy/numba path and the batched path, per sample, with per-channel fills too."""
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (4, 3, 19, 23), generator=g, dtype=torch.uint8)
    lv = torch.tensor([12.5, 15.0, 22.5, 30.0], dtype=torch.float64)
    sg = torch.tensor([1, -1, -1, 1])
    cc = torch.tensor([[0, 0], [18, 22], [9, 11], [3, 20]])
    for fill in (128, (0, 64, 255)):
        for op in OPS:
            out = batched_apply_op(x, op, lv, sign=sg, cutout_center=cc, replace=fill)
            for i in range(4):
                kw = dict(sign=int(sg[i]), cutout_center=tuple(cc[i].tolist()), replace=fill)
                ref = apply_op(x[i], op, float(lv[i]), **kw)
                assert torch.equal(out[i], ref), (op, float(lv[i]), fill)
                assert torch.equal(FP.fast_apply_op(x[i], op, float(lv[i]), **kw), ref), (op, float(lv[i]), fill)


def test_batched_randaugment_equals_per_sample_ops():
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (10, 3, 24, 30), generator=g, dtype=torch.uint8)
    params = sample_batch_params(10, 2, 24, 30, generator=g)
    mags = torch.linspace(0, 10, 10, dtype=torch.float64)
    out = batched_randaugment(x, params, mags)
    for i in range(10):
        ref = x[i]
        for layer in range(2):
            ref = apply_op(ref, OPS[int(params["ops"][i, layer])], float(mags[i]), sign=int(params["signs"][i, layer]),
                           cutout_center=tuple(params["centers"][i, layer].tolist()))
        assert torch.equal(out[i], ref), i
    y = BatchedRandAugment17(2, 10, generator=torch.Generator().manual_seed(0))(x)
    assert y.shape == x.shape and y.dtype == torch.uint8


def test_resize_and_flip_equal_preprocess_resize(backend):
    g = torch.Generator().manual_seed(3)
    for (h, w, oh, ow) in ((375, 500, 224, 224), (31, 17, 224, 224), (300, 451, 29, 41), (5, 5, 5, 5)):
        x = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
        ref = R.resize(x, (oh, ow))
        assert torch.equal(R.resize_bilinear_tf(x, (oh, ow)), ref)
        assert torch.equal(R.resize_bilinear_tf(x, (oh, ow), flip=True), ref.flip(-1))
        if oh == ow:
            assert torch.equal(FP._resize_hwc(x.permute(1, 2, 0).numpy(), oh, ow, True), ref.flip(-1))


def test_numpy_resize_equals_torch_resize_on_many_crops(backend):
    g = torch.Generator().manual_seed(7)
    img = torch.randint(0, 256, (3, 500, 520), generator=g, dtype=torch.uint8)
    hwc = img.permute(1, 2, 0).numpy()
    shapes = [(500, 520), (449, 449), (448, 448), (447, 60), (1, 1), (2, 1), (1, 2), (3, 517), (224, 224),
              (223, 225), (10, 470)]
    shapes += [tuple(int(v) for v in torch.randint(1, 500, (2,), generator=g)) for _ in range(20)]
    for (h, w) in shapes:
        t, l = int(torch.randint(0, 501 - h, (1,), generator=g)), int(torch.randint(0, 521 - w, (1,), generator=g))
        for flip in (False, True):
            for size in ((224, 224), (29, 41)):
                ref = R.resize_bilinear_tf(img[:, t:t + h, l:l + w], size, flip=flip)
                got = FP._resize_hwc(hwc[t:t + h, l:l + w], *size, flip)
                assert torch.equal(got, ref), (h, w, flip, size)


def test_kernel_axis_tables_equal_axis_table():
    # The numba resize computes TF's bilinear tables itself (no Python-level cache lookup per crop size);
    # they must be _axis_table's, bit for bit, for every crop side a 2048-px image can give.
    NK = pytest.importorskip("torch_impl.pp.backends.numba")
    if not NK.available():
        pytest.skip("numba not installed")
    for out_size in (224, 29, 384, 1):
        for in_size in range(1, 2049):
            for flip in (False, True):
                lo, up = np.empty(out_size, np.int64), np.empty(out_size, np.int64)
                lerp = np.empty(out_size, np.float32)
                NK._axis_kernel(in_size, out_size, flip, lo, up, lerp)
                ref_lo, ref_up, ref_lerp = (t.numpy() for t in R._axis_table(in_size, out_size, flip))
                assert np.array_equal(lo, ref_lo) and np.array_equal(up, ref_up), (in_size, out_size, flip)
                assert np.array_equal(lerp.view(np.int32), ref_lerp.view(np.int32)), (in_size, out_size, flip)


def _bits(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous().view(torch.int32)


def test_resize_with_fused_value_range_equals_resize_then_value_range(backend):
    # value_range(-1, 1) fused into the resize's last pass (the pipeline without RandAugment) must give the
    # bits of big_vision's two ops in sequence: resize -> uint8, then value_range (tf_math.value_range).
    g = torch.Generator().manual_seed(11)
    img = torch.randint(0, 256, (3, 500, 520), generator=g, dtype=torch.uint8)
    img[:, :16, :16] = torch.arange(256, dtype=torch.uint8).view(16, 16)      # every value, at least once
    hwc = img.permute(1, 2, 0).numpy()
    shapes = [(500, 520), (448, 448), (16, 16), (1, 1), (2, 3), (224, 224), (31, 470)]
    shapes += [tuple(int(v) for v in torch.randint(1, 500, (2,), generator=g)) for _ in range(8)]
    for (h, w) in shapes:
        for flip in (False, True):
            for size in ((224, 224), (29, 41)):
                u8 = FP._resize_hwc(hwc[:h, :w], *size, flip)
                fused = FP._resize_hwc(hwc[:h, :w], *size, flip, value_range=True)
                assert fused.dtype == torch.float32 and fused.shape == (3, *size)
                assert torch.equal(_bits(fused), _bits(T.value_range(u8, -1, 1))), (h, w, flip, size)


def _resize_all_backends(crop, size, flip, value_range):
    """{backend: result} of FP._resize_hwc for the C resize (AVX2 and scalar), numba and numpy."""
    from torch_impl.pp import tf_jpeg
    from torch_impl.pp.backends import numba as NK
    from torch_impl.pp import _tf_jpeg as E
    out = {}
    for name in ("c", "c_scalar", "numba", "numpy"):
        if name == "numba" and not NK.available():
            continue
        prev_c = tf_jpeg.set_c_resize(name.startswith("c"))
        prev_nk = NK.set_enabled(name == "numba")
        prev_simd = E._set_resize_options(0 if name == "c_scalar" else 1, -1)[0]
        try:
            out[name] = FP._resize_hwc(crop, *size, flip, value_range)
        finally:
            E._set_resize_options(prev_simd, -1)
            NK.set_enabled(prev_nk)
            tf_jpeg.set_c_resize(prev_c)
    return out


def test_c_resize_equals_numba_and_numpy():
    # The C resize (its AVX2 permute path, its scalar path) = the numba kernel = the numpy kernels, on the
    # shapes of the tests above (1x1, the 2*224 row-selection boundary 447/448/449, very wide and very tall
    # crops whose taps spread beyond the AVX2 path's 16 columns), both flips, uint8 and value_range.
    g = torch.Generator().manual_seed(17)
    img = torch.randint(0, 256, (3, 520, 1100), generator=g, dtype=torch.uint8)
    img[:, :16, :16] = torch.arange(256, dtype=torch.uint8).view(16, 16)
    hwc = img.permute(1, 2, 0).numpy()
    shapes = [(500, 520), (449, 449), (448, 448), (447, 60), (1, 1), (2, 1), (1, 2), (3, 517), (224, 224),
              (223, 225), (10, 470), (16, 16), (2, 3), (31, 470), (300, 1100), (40, 900), (500, 449)]
    shapes += [tuple(int(v) for v in torch.randint(1, 500, (2,), generator=g)) for _ in range(12)]
    for (h, w) in shapes:
        for flip in (False, True):
            for size in ((224, 224), (29, 41), (1, 1), (384, 384)):
                for value_range in (False, True):
                    res = _resize_all_backends(hwc[3:3 + h, 5:5 + w], size, flip, value_range)
                    ref = _bits(res["numpy"]) if value_range else res["numpy"]
                    for name, got in res.items():
                        assert torch.equal(_bits(got) if value_range else got, ref), (name, h, w, flip, size)


@pytest.mark.parametrize("fault", [1, 2], ids=["table_off_by_one", "fma_contraction"])
def test_c_resize_faults_are_detected(fault):
    # Mutation controls for the C resize: an off-by-one in its column table, and the vertical lerp computed
    # with one fused multiply-add (what -ffp-contract=off prevents), must each change some output.
    from torch_impl.pp import _tf_jpeg as E
    from torch_impl.pp import tf_jpeg
    g = torch.Generator().manual_seed(23)
    # crops 224 wide (integer horizontal lerps) and 2..64 rows high (many y_lerp values): an FMA's single
    # rounding then moves some results across an integer, which the truncating cast exposes
    hwc = torch.randint(0, 256, (64, 224, 3), generator=g, dtype=torch.uint8).numpy()
    crops = [hwc[:h] for h in range(2, 65, 2)] + [hwc[:50, :200]]
    ok = [tf_jpeg.resize_hwc(c, 224, 224, value_range=True) for c in crops]
    prev = E._set_resize_options(-1, fault)[1]
    try:
        bad = [tf_jpeg.resize_hwc(c, 224, 224, value_range=True) for c in crops]
    finally:
        E._set_resize_options(-1, prev)
    assert not all(np.array_equal(a.view(np.int32), b.view(np.int32)) for a, b in zip(ok, bad))
    assert np.array_equal(tf_jpeg.resize_hwc(crops[-1], 224, 224, value_range=True).view(np.int32),
                          ok[-1].view(np.int32))


def test_batched_crop_resize_equals_single_image():
    g = torch.Generator().manual_seed(4)
    x = torch.randint(0, 256, (5, 3, 100, 120), generator=g, dtype=torch.uint8)
    boxes = torch.tensor([[0, 0, 100, 120], [10, 5, 50, 60], [3, 7, 97, 13], [50, 60, 1, 1], [20, 30, 80, 90]])
    flips = torch.tensor([0, 1, 0, 1, 1])
    out = batched_crop_resize(x, boxes, 33, flips=flips)
    for i in range(5):
        t, l, h, w = boxes[i].tolist()
        assert torch.equal(out[i], R.resize_bilinear_tf(x[i, :, t:t + h, l:l + w], 33, flip=bool(flips[i])))
    with pytest.raises(ValueError, match="inside"):
        batched_crop_resize(x, boxes + 200, 33)


def test_decode_stops_early_without_changing_pixels(jpegs):
    for name, data in jpegs.items():
        full = J.decode_jpeg(data, precise=False)
        assert tuple(full.shape[-2:]) == J.jpeg_shape(data)
        for rows in (1, 2, 15, 16, 17, 100, 373, 375):
            part = J.decode_jpeg_fast(data, rows=rows)
            assert np.array_equal(part[:rows], full.permute(1, 2, 0).numpy()[:rows]), (name, rows)


def test_crop_resize_flip_equals_reference_composition(jpegs, backend):
    data = jpegs["rocket"]
    # the reference composition decodes only the window, as big_vision's decode_and_crop_jpeg does
    for box in ((0, 0, 375, 500), (10, 20, 100, 200), (300, 450, 75, 50), (7, 3, 1, 1), (5, 16, 101, 77)):
        ref = R.resize(J.decode_crop_jpeg(data, box), 224)
        assert torch.equal(FP.crop_resize_flip(data, box, 224), ref)
        assert torch.equal(FP.crop_resize_flip(data, box, 224, flip=True), ref.flip(-1))
    with pytest.raises(ValueError, match="does not fit"):
        FP.crop_resize_flip(data, (300, 450, 100, 100))
    with pytest.raises(ValueError, match="not a JPEG"):
        J.decode_crop_jpeg(b"\x89PNG....", (0, 0, 1, 1))


@pytest.mark.parametrize("with_randaug", [True, False], ids=["randaug", "no_randaug"])
def test_fast_train_pipeline_matches_reference_path(jpegs, backend, with_randaug):
    """The fast pipeline (crop-window decode, compiled resize; without RandAugment the value_range fused into
    the resize) = the reference path op by op, bit for bit, on the same draws."""
    from torch_impl.pp.crop import sample_inception_box
    data = jpegs["chelsea"] if with_randaug else jpegs["rocket"]
    seed = 5 if with_randaug else 9
    pipe = FastTrainPipeline(224, randaug=(2, 10) if with_randaug else None,
                             generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed)
    for _ in range(4 if with_randaug else 6):
        ours = pipe(data)
        box = sample_inception_box(375, 500, generator=g)
        flip = bool(torch.randint(0, 2, (1,), generator=g))
        x = R.resize(J.decode_crop_jpeg(data, box), 224)
        x = x.flip(-1) if flip else x
        if with_randaug:
            x = randaugment(x, 2, 10, generator=g)
        ref = T.value_range(x, -1, 1)
        assert ours.dtype == torch.float32 and ours.shape == (3, 224, 224)
        assert torch.equal(_bits(ours), _bits(ref))


@pytest.mark.gpu
def test_batched_paths_on_cuda_equal_cpu():
    g = torch.Generator().manual_seed(6)
    x = torch.randint(0, 256, (32, 3, 64, 64), generator=g, dtype=torch.uint8)
    params = sample_batch_params(32, 2, 64, 64, generator=g)
    mags = torch.full((32,), 10.0, dtype=torch.float64)
    cpu = batched_randaugment(x, params, mags)
    gpu = batched_randaugment(x.cuda(), params, mags)
    assert torch.equal(gpu.cpu(), cpu)
    for op in OPS:
        c = torch.stack([torch.randint(0, 64, (32,), generator=g), torch.randint(0, 64, (32,), generator=g)], 1)
        assert torch.equal(batched_apply_op(x.cuda(), op, 10, sign=-1, cutout_center=c).cpu(),
                           batched_apply_op(x, op, 10, sign=-1, cutout_center=c)), op
    boxes = torch.tensor([[0, 0, 64, 64], [3, 4, 40, 50]] * 16)
    assert torch.equal(batched_crop_resize(x.cuda(), boxes, 224).cpu(), batched_crop_resize(x, boxes, 224))
    # value_range on the device (runtime.device_value_range / device_augment) gives the CPU's floats for
    # every uint8 value: a true division, not torch's CUDA reciprocal multiply for a scalar divisor.
    v = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(2, 3, 16, 16)
    assert torch.equal(FP.to_value_range(v.cuda()).cpu(), T.value_range(v, -1, 1))
    assert torch.equal(FP.to_value_range(v.cuda(), 0.0, 1.0).cpu(), T.value_range(v, 0, 1))


def test_device_decode_path_draws_the_same_crops_as_the_fast_path():
    """runtime.device_decode ships (jpeg, box, flip) drawn exactly as the fast path draws them; decoded with
    torchvision's CPU decoder (libjpeg-turbo, accurate DCT) it equals decode-then-slice of those draws."""
    from torch_impl.pp.backends.batched import decode_crop_resize
    from torch_impl.config import PPConfig
    from torch_impl.data.loader import assemble_batch, collate_train, deferred_jpegs
    from torch_impl.data.placement import train_transform
    pp = PPConfig(decode_precise=True, randaug_magnitude=10)
    exact = train_transform(pp, device_augment=True)              # uint8 crops, decoded in the worker
    deferred = train_transform(pp, device_decode=True)
    jpegs = list(photos.imagenet_like_jpegs().values())
    items = []
    for seed, data in enumerate(jpegs * 2):
        d = deferred(data, seed)
        assert set(d) == {"jpeg", "box", "flip", "size"} and d["jpeg"] == data
        items.append({"image": d, "label": seed, "bad": 0})
        items.append({"image": exact(data, seed), "label": seed, "bad": 0})
    batch = collate_train(items)
    dfr = batch["deferred"]
    assert dfr["index"].tolist() == list(range(0, len(items), 2)) and bool(dfr["flip"].any())
    assert batch["image_index"].tolist() == list(range(1, len(items), 2))
    assert [j.numpy().tobytes() for j in deferred_jpegs(dfr)] == jpegs * 2
    out = decode_crop_resize(deferred_jpegs(dfr), dfr["box"], dfr["flip"], 224, "cpu")
    # The same draws as the worker path (box and flip per seed) ...
    for k, (seed, data) in enumerate(enumerate(jpegs * 2)):
        exact.generator.manual_seed(seed)
        box, flip = exact.fast.plan(data)
        assert dfr["box"][k].tolist() == list(box) and bool(dfr["flip"][k]) == flip
        # ... but a whole-image decode (no decoder on the device decodes only the window), so the pixels are
        # decode-then-slice's, which differ from big_vision's decode_and_crop_jpeg in the window's edge columns
        t, l, h, w = box
        ref = R.resize(J.decode_jpeg(data, precise=True)[:, t:t + h, l:l + w], 224)
        torch.testing.assert_close(out[k], ref.flip(-1) if flip else ref, rtol=0, atol=0)
    whole = assemble_batch(batch, "cpu")
    torch.testing.assert_close(whole[0::2], out, rtol=0, atol=0)
    torch.testing.assert_close(whole[1::2], batch["image"], rtol=0, atol=0)
    # grayscale, CMYK and non-JPEG files are not deferred: the worker decodes them
    import io

    from PIL import Image
    for mode in ("L", "CMYK"):
        buf = io.BytesIO()
        Image.new(mode, (50, 40)).save(buf, format="JPEG")
        assert not J.device_decodable(buf.getvalue())
        assert isinstance(deferred(buf.getvalue(), 0), torch.Tensor)
    assert J.device_decodable(jpegs[0]) and not J.device_decodable(b"not a jpeg")


def test_resize_backend_is_reported(backend):
    # what a run's metadata and `parity check` name as the resize kernel follows the switches
    got = FP.resize_backend()
    assert got.startswith("C (") if backend == "c" else got == backend

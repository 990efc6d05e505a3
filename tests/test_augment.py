"""Unit tests for torch_impl.pp.randaug and its v2 Transform (the parity with big_vision itself is the `randaug_ops` family)."""
from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
from torchvision import tv_tensors

from parity import grids
from torch_impl.pp import randaug as A
from torch_impl.pp.randaug import OPS, SIGNED_OPS, apply_op, randaugment
from torch_impl.pp.transforms import RandAugment17


@pytest.fixture(scope="module")
def noise():
    return grids.to_chw(grids.noise(37, 53, seed=3))


@pytest.fixture(scope="module")
def bw():
    return grids.to_chw(grids.bw_grid(64, 80, 8))


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ---- RandAugment17 --------------------------------------------------------------------------------------
def test_reproducible_with_generator(noise):
    a = RandAugment17(generator=_gen(5))
    b = RandAugment17(generator=_gen(5))
    outs_a = [a(noise) for _ in range(10)]
    outs_b = [b(noise) for _ in range(10)]
    assert all(torch.equal(x, y) for x, y in zip(outs_a, outs_b))
    c = RandAugment17(generator=_gen(6))
    assert any(not torch.equal(x, c(noise)) for x in outs_a)


def test_function_matches_transform(noise):
    t = RandAugment17(num_ops=3, magnitude=7, generator=_gen(1))
    g = _gen(1)  # the same stream: the transform draws exactly what randaugment() draws
    for _ in range(5):
        assert torch.equal(t(noise), randaugment(noise, 3, 7, generator=g))


def test_tensor_pil_tv_tensor_agree(noise):
    outs = []
    for wrap in (lambda x: x, lambda x: tv_tensors.Image(x),
                 lambda x: PIL.Image.fromarray(grids.to_hwc(x))):
        out = RandAugment17(generator=_gen(11))(wrap(noise))
        outs.append(out)
    assert type(outs[0]) is torch.Tensor
    assert isinstance(outs[1], tv_tensors.Image)
    assert isinstance(outs[2], PIL.Image.Image)
    assert torch.equal(outs[0], outs[1].as_subclass(torch.Tensor))
    assert np.array_equal(grids.to_hwc(outs[0]), np.asarray(outs[2]))


def test_sample_passes_labels_through(noise):
    img, label = RandAugment17(generator=_gen(2))(tv_tensors.Image(noise), 7)
    assert isinstance(img, tv_tensors.Image) and label == 7


def test_rejects_boxes_and_non_rgb_pil(noise):
    boxes = tv_tensors.BoundingBoxes([[0, 0, 5, 5]], format="XYXY", canvas_size=(37, 53))
    with pytest.raises(TypeError, match="RGB images only"):
        RandAugment17()(tv_tensors.Image(noise), boxes)
    with pytest.raises(ValueError, match="RGB PIL image"):
        RandAugment17()(PIL.Image.new("L", (10, 10)))


def test_op_choice_uniform_and_sign_fair():
    params = A.sample_randaug_params(3200, 50, 60, generator=_gen(0))
    counts = np.array([sum(p["name"] == op for p in params) for op in OPS])
    expected = 3200 / 16
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 40, counts  # 15 dof: p ~ 5e-4
    signs = np.array([p["sign"] for p in params])
    assert abs((signs > 0).mean() - 0.5) < 0.04
    centres = np.array([p["cutout_center"] for p in params])
    assert centres[:, 0].min() == 0 and centres[:, 0].max() == 49
    assert centres[:, 1].min() == 0 and centres[:, 1].max() == 59


@pytest.mark.parametrize("op", OPS)
def test_bw_grid_stays_colourless(op, bw):
    for level in range(11):
        for sign in ((1, -1) if op in SIGNED_OPS else (1,)):
            out = apply_op(bw, op, level, sign=sign, cutout_center=(10, 70))
            assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2]), (op, level, sign)


def test_randaugment_colourless_on_bw_grid(bw):
    t = RandAugment17(generator=_gen(3))
    for _ in range(60):
        out = t(bw)
        assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])


def test_batch_equals_per_image(noise):
    batch = torch.stack([noise, noise.flip(-1)])
    for op in OPS:
        out = apply_op(batch, op, 7, sign=-1, cutout_center=(3, 4))
        for i in range(2):
            assert torch.equal(out[i], apply_op(batch[i], op, 7, sign=-1, cutout_center=(3, 4))), op


def test_known_quirks(noise):
    assert torch.equal(apply_op(noise, "Solarize", 10), apply_op(noise, "Invert", 0))
    assert set(apply_op(noise, "Posterize", 0).unique().tolist()) <= {0, 128}
    left = apply_op(noise, "TranslateX", 1)  # 10 pixels
    assert torch.equal(left[:, :, :-10], noise[:, :, 10:]) and bool((left[:, :, -10:] == 128).all())
    up = apply_op(noise, "TranslateY", 2, sign=-1)  # -20 pixels: content moves down
    assert torch.equal(up[:, 20:], noise[:, :-20]) and bool((up[:, :20] == 128).all())


def test_cutout_centre_from_generator(noise):
    a = apply_op(noise, "Cutout", 5, generator=_gen(4))
    b = apply_op(noise, "Cutout", 5, generator=_gen(4))
    assert torch.equal(a, b) and not torch.equal(a, noise)
    box = apply_op(noise, "Cutout", 5, cutout_center=(0, 52))  # pad 20: rows 0..19, cols 32..52
    assert bool((box[:, :20, 32:] == 128).all())
    assert torch.equal(box[:, 20:], noise[:, 20:]) and torch.equal(box[:, :, :32], noise[:, :, :32])


# ---- input validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(name="Identity"), "unknown randaug op"),
    (dict(name="rotate"), "unknown randaug op"),
    (dict(level=-1), r"level must be a finite number >= 0"),
    (dict(level=float("inf")), r"level must be a finite number >= 0"),
    (dict(level=float("nan")), r"level must be a finite number >= 0"),
    (dict(level=True), "level must be a number"),
    (dict(level="5"), "level must be a number"),
    (dict(sign=0), "sign must be"),
    (dict(contrast="mean"), "contrast must be one of"),
    (dict(replace=300), "replace must be"),
    (dict(name="Cutout", cutout_center=(37, 0)), "cutout_center"),
])
def test_bad_arguments(noise, kwargs, match):
    args = dict(name="Rotate", level=5)
    args.update(kwargs)
    name, level = args.pop("name"), args.pop("level")
    with pytest.raises(ValueError, match=match):
        apply_op(noise, name, level, **args)


@pytest.mark.parametrize("image, match", [
    (torch.zeros(3, 8, 8, dtype=torch.float32), "dtype torch.uint8"),
    (torch.zeros(8, 8, 3, dtype=torch.uint8), r"shape \(3, H, W\)"),
    (torch.zeros(1, 8, 8, dtype=torch.uint8), r"shape \(3, H, W\)"),
    (torch.zeros(2, 2, 3, 8, 8, dtype=torch.uint8), r"shape \(3, H, W\)"),
    (np.zeros((3, 8, 8), np.uint8), "must be a torch.Tensor"),
])
def test_bad_images(image, match):
    with pytest.raises(ValueError, match=match):
        apply_op(image, "Invert", 0)


def test_transform_validates_arguments():
    with pytest.raises(ValueError, match="level must be a finite number"):
        RandAugment17(magnitude=-1)
    with pytest.raises(ValueError, match="num_ops"):
        RandAugment17(num_ops=-1)
    with pytest.raises(ValueError, match="contrast must be"):
        RandAugment17(contrast="true")
    with pytest.raises(ValueError, match="dtype torch.uint8"):
        RandAugment17()(torch.zeros(3, 8, 8))


def test_tiny_images_do_not_crash():
    # big_vision cannot even trace randaug below 3x3 (Sharpness's VALID conv); ours keeps such images working.
    for h, w in ((1, 1), (2, 5), (3, 3)):
        x = grids.to_chw(grids.noise(h, w, seed=h * 10 + w))
        for op in OPS:
            out = apply_op(x, op, 10, cutout_center=(0, 0))
            assert out.shape == x.shape and out.dtype == torch.uint8
        assert torch.equal(apply_op(x, "Sharpness", 3), x) or (h >= 3 and w >= 3)


def test_public_api_names_of_the_design_are_importable_from_augment():
    # DESIGN.md lists sample_inception_box and InceptionCrop under torch_impl.augment.
    from torch_impl import augment
    from torch_impl.pp import crop, transforms
    assert augment.sample_inception_box is crop.sample_inception_box
    assert augment.InceptionCrop is transforms.InceptionCrop
    top, left, h, w = augment.sample_inception_box(375, 500, generator=torch.Generator().manual_seed(0))
    assert 0 <= top and 0 <= left and top + h <= 375 and left + w <= 500

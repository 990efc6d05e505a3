"""Unit tests for torch_impl.pp.crop (and its v2 Transform InceptionCrop) (the TF-parity of the box distribution is in the
`inception_crop` parity family; these test the properties any user relies on)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from torch_impl.pp.transforms import InceptionCrop
from torch_impl.pp.crop import (crop_and_resize, inception_crop, sample_inception_box,
                                       sample_inception_boxes)

SIZES = [(375, 500), (224, 224), (500, 120), (64, 1000), (33, 31), (1, 1), (2, 3), (1, 1000), (10, 400)]


@pytest.mark.parametrize("h,w", SIZES)
def test_boxes_inside_image_and_within_constraints(h, w):
    b = sample_inception_boxes(h, w, 3000, generator=torch.Generator().manual_seed(h * 1000 + w)).numpy()
    top, left, bh, bw = b.T
    assert (top >= 0).all() and (left >= 0).all() and (bh >= 1).all() and (bw >= 1).all()
    assert (top + bh <= h).all() and (left + bw <= w).all()
    full = (bh == h) & (bw == w)
    area = bh * bw / (h * w)
    # every box that is not the whole image respects the area range (TF rectifies rounding, else retries)
    assert (area[~full] >= 0.05 - 1e-6).all()
    # TF draws offsets with Uniform(H - h): the bottom/right edge is reached only by full-side boxes
    assert not ((top == h - bh) & (bh < h)).any()
    assert not ((left == w - bw) & (bw < w)).any()


def test_generator_reproducible():
    a = sample_inception_boxes(375, 500, 100, generator=torch.Generator().manual_seed(3))
    b = sample_inception_boxes(375, 500, 100, generator=torch.Generator().manual_seed(3))
    c = sample_inception_boxes(375, 500, 100, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert [sample_inception_box(64, 1000, generator=g1) for _ in range(5)] == \
           [sample_inception_box(64, 1000, generator=g2) for _ in range(5)]


def test_fallback_to_whole_image():
    # 10x400: no box of >= 5% area fits the aspect range -> every call returns the whole image (TF does too).
    b = sample_inception_boxes(10, 400, 200, generator=torch.Generator().manual_seed(0))
    assert (b == torch.tensor([0, 0, 10, 400])).all()
    # 100x2660: only aspect ratios >= ~1.325 fit, ~0.9% of attempts: ~42% of calls exhaust the 100 attempts.
    b = sample_inception_boxes(100, 2660, 4000, generator=torch.Generator().manual_seed(0))
    rate = float(((b[:, 2] == 100) & (b[:, 3] == 2660)).double().mean())
    assert 0.36 < rate < 0.48
    # with max_attempts=1 the fallback is far more frequent
    b1 = sample_inception_boxes(100, 2660, 4000, max_attempts=1, generator=torch.Generator().manual_seed(0))
    assert float(((b1[:, 2] == 100) & (b1[:, 3] == 2660)).double().mean()) > 0.95


def test_area_density_is_not_uniform():
    """TF draws the height uniformly: area A has density ~ 1/sqrt(A), so small crops are more frequent than
    under torchvision's uniform-in-area RandomResizedCrop."""
    from scipy.stats import ks_2samp
    b = sample_inception_boxes(224, 224, 4000, generator=torch.Generator().manual_seed(1)).double()
    area = (b[:, 2] * b[:, 3] / 224 ** 2).numpy()
    uniform = np.random.default_rng(0).uniform(0.05, 1.0, 4000)
    assert ks_2samp(area, uniform).pvalue < 1e-10
    assert np.median(area) < np.median(uniform)


def test_bad_arguments():
    with pytest.raises(ValueError, match="percents"):
        sample_inception_box(100, 100, area_range=(5, 100))
    with pytest.raises(ValueError, match="positive"):
        sample_inception_box(0, 100)
    with pytest.raises(ValueError, match="does not fit"):
        crop_and_resize(torch.zeros(3, 10, 10, dtype=torch.uint8), (5, 5, 6, 6), 4)


def test_inception_crop_transform_types():
    g = torch.Generator().manual_seed(0)
    t = InceptionCrop(64, generator=g)
    img = torch.randint(0, 256, (3, 90, 120), dtype=torch.uint8)
    out = t(img)
    assert type(out) is torch.Tensor and out.shape == (3, 64, 64) and out.dtype == torch.uint8
    out = t(tv_tensors.Image(img))
    assert isinstance(out, tv_tensors.Image) and out.shape == (3, 64, 64)
    vid = tv_tensors.Video(img.expand(4, 3, 90, 120).clone())
    assert t(vid).shape == (4, 3, 64, 64)
    pil = v2.functional.to_pil_image(img)
    out = t(pil)
    assert out.size == (64, 64) and out.mode == "RGB"
    # image + boxes share one crop
    boxes = tv_tensors.BoundingBoxes([[0, 0, 120, 90]], format="XYXY", canvas_size=(90, 120))
    oi, ob = t(tv_tensors.Image(img), boxes)
    assert oi.shape == (3, 64, 64) and ob.canvas_size == (64, 64)
    # size=None: the crop itself
    crop = InceptionCrop(None, generator=g)(img)
    assert crop.shape[0] == 3 and crop.shape[1] <= 90 and crop.shape[2] <= 120


def test_same_box_for_transform_and_function():
    img = torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8)
    a = InceptionCrop(32, generator=torch.Generator().manual_seed(5))(img)
    b = inception_crop(img, 32, generator=torch.Generator().manual_seed(5))
    box = sample_inception_box(50, 70, generator=torch.Generator().manual_seed(5))
    c = crop_and_resize(img, box, 32)
    assert torch.equal(a, b) and torch.equal(a, c)

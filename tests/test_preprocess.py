"""Unit tests for big_vision's pp ops in torch_impl.pp (jpeg, resize, crop, geometry, transforms, pipelines) (TF parity of every op is in the `preprocess` parity family;
these test input handling, errors, reproducibility, and the transforms on every input type)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from parity import photos
from torch_impl.pp import crop, geometry, jpeg, pipelines, resize, tf_math, transforms


def _jpeg(img: np.ndarray, mode: str | None = None, **kw) -> bytes:
    im = Image.fromarray(img)
    if mode:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=kw.pop("format", "JPEG"), **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def small_photo():
    return photos.photo("chelsea", (61, 93))


# ---- decode -------------------------------------------------------------------------------------
def test_decode_precise_equals_pil(small_photo):
    data = photos.jpeg_bytes("rocket")
    ours = jpeg.decode_jpeg(data)
    ref = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert ours.dtype == torch.uint8 and ours.shape == (3, 427, 640)
    assert np.array_equal(ours.permute(1, 2, 0).numpy(), ref)


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_decode_grayscale_and_cmyk_give_rgb(small_photo, mode):
    data = _jpeg(small_photo, mode, quality=90)
    out = jpeg.decode_jpeg(data)
    assert out.shape == (3, 61, 93)
    if mode == "L":
        assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    # it comes back close to the (grey or colour) photo: JPEG loss only
    ref = np.array(Image.fromarray(small_photo).convert(mode).convert("RGB"))
    assert (out.permute(1, 2, 0).int() - torch.from_numpy(ref).int()).abs().float().mean() < 8


def test_png_named_jpeg_is_decoded(small_photo):
    out = jpeg.decode_jpeg(_jpeg(small_photo, format="PNG"), path="n01440764/fake.JPEG")
    assert np.array_equal(out.permute(1, 2, 0).numpy(), small_photo)  # PNG is lossless


def test_rgba_png_drops_alpha(small_photo):
    rgba = np.dstack([small_photo, np.full(small_photo.shape[:2], 7, np.uint8)])
    out = jpeg.decode_jpeg(_jpeg(rgba, format="PNG"))
    assert out.shape == (3, 61, 93)


@pytest.mark.parametrize("precise", [True, False])
@pytest.mark.parametrize("progressive", [False, True])
def test_truncated_file_raises_naming_it(small_photo, precise, progressive):
    if not precise:
        pytest.importorskip("simplejpeg")
    data = _jpeg(small_photo, quality=90, progressive=progressive)
    with pytest.raises(jpeg.ImageDecodeError, match=r"train/cat\.jpg.*(truncated|corrupt)"):
        jpeg.decode_jpeg(data[: len(data) // 2], precise=precise, path="train/cat.jpg")


@pytest.mark.parametrize("data", [b"not an image at all", b"\xff\xd8\xff\xe0garbage", b""])
def test_garbage_raises_naming_file(data):
    with pytest.raises(jpeg.ImageDecodeError, match=r"bad\.jpg"):
        jpeg.decode_jpeg(data, path="bad.jpg")


def test_decode_accepts_tensor_and_numpy_bytes():
    data = photos.jpeg_bytes("rocket")
    a = jpeg.decode_jpeg(data)
    assert torch.equal(a, jpeg.decode_jpeg(np.frombuffer(data, np.uint8)))
    assert torch.equal(a, jpeg.decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8)))
    with pytest.raises(TypeError, match="encoded bytes"):
        jpeg.decode_jpeg(123)


def test_fast_decode_needs_simplejpeg(monkeypatch):
    # simplejpeg is an optional import of torch_impl.pp.jpeg (None when it is not installed)
    monkeypatch.setattr(jpeg, "simplejpeg", None)
    with pytest.raises(ImportError, match="pip install simplejpeg"):
        jpeg.decode_jpeg(photos.jpeg_bytes("rocket"), precise=False)


def test_fast_decode_differs_from_precise():
    pytest.importorskip("simplejpeg")
    data = photos.jpeg_bytes("rocket")
    d = (jpeg.decode_jpeg(data, precise=False).int() - jpeg.decode_jpeg(data).int()).abs()
    assert 0 < int(d.max()) <= 16


# ---- resize -------------------------------------------------------------------------------------
def _area_reference(x: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """Independent float64 box-filter (exact area weights) for the ±1 sanity check."""
    H, W = x.shape[-2:]

    def weights(n_in, n_out):
        m = np.zeros((n_out, n_in))
        s = n_in / n_out
        for i in range(n_out):
            lo, hi = i * s, (i + 1) * s
            for j in range(int(np.floor(lo)), int(np.ceil(hi))):
                m[i, j] = (min(hi, j + 1) - max(lo, j)) / s
        return m
    return np.einsum("ih,chw,jw->cij", weights(H, oh), x.astype(np.float64), weights(W, ow))


@pytest.mark.parametrize("out", [(40, 60), (61, 93), (100, 150), (17, 200)])
def test_area_resize_is_area_average(small_photo, out):
    x = torch.from_numpy(small_photo).permute(2, 0, 1).contiguous()
    ours = resize.resize(x, out, "area").numpy().astype(np.float64)
    ref = _area_reference(x.numpy(), *out)
    assert np.abs(ours - ref).max() <= 1.01  # TF truncates its float32 result: at most 1 below the mean
    assert (ours <= ref + 0.01).all()  # float32 sums can land a hair above an integer


@pytest.mark.parametrize("out", [(40, 60), (100, 150), (224, 224)])
def test_bilinear_matches_torch_half_pixel(small_photo, out):
    x = torch.from_numpy(small_photo).permute(2, 0, 1).contiguous()
    ours = resize.resize(x, out).float()
    ref = torch.nn.functional.interpolate(x[None].float(), size=out, mode="bilinear", align_corners=False)[0]
    assert (ours - ref).abs().max() <= 1.0


def test_resize_dtype_and_identity(small_photo):
    x = torch.from_numpy(small_photo).permute(2, 0, 1).contiguous()
    assert torch.equal(resize.resize(x, (61, 93)), x)
    assert torch.equal(resize.resize(x, (61, 93), "area"), x)
    f = resize.resize(x.float(), (30, 40))
    assert f.dtype == torch.float32
    # uint8 output = float result truncated (TF's cast), never rounded up
    assert torch.equal(resize.resize(x, (30, 40)), f.clamp(0, 255).to(torch.uint8))
    batch = torch.stack([x, x.flip(-1)])
    assert torch.equal(resize.resize(batch, (30, 40))[1], resize.resize(x.flip(-1), (30, 40)))


def test_resize_errors():
    x = torch.zeros(3, 10, 10, dtype=torch.uint8)
    with pytest.raises(ValueError, match="method"):
        resize.resize(x, 5, "bicubic")
    with pytest.raises(ValueError, match="positive"):
        resize.resize(x, (0, 5))


@pytest.mark.parametrize("hw,size,expected", [((375, 500), 256, (256, 341)), ((500, 375), 256, (341, 256)),
                                              ((427, 640), 256, (256, 384)), ((300, 451), 256, (256, 385)),
                                              ((100, 100), 256, (256, 256)), ((2, 3), 1, (1, 2))])
def test_resize_small_size(hw, size, expected):
    assert resize.resize_small_size(*hw, size) == expected
    x = torch.zeros(3, *hw, dtype=torch.uint8)
    assert tuple(resize.resize_small(x, size).shape[-2:]) == expected


# ---- flip, transforms, pipelines ------------------------------------------------------------------
def test_flip_lr_generator():
    x = torch.arange(12, dtype=torch.uint8).view(1, 3, 4)
    draws = [geometry.flip_lr(x, generator=torch.Generator().manual_seed(s)) for s in range(20)]
    flips = [torch.equal(d, x.flip(-1)) for d in draws]
    assert any(flips) and not all(flips)
    again = [torch.equal(geometry.flip_lr(x, generator=torch.Generator().manual_seed(s)), x.flip(-1)) for s in range(20)]
    assert flips == again
    assert torch.equal(geometry.flip_lr(x, p=1.0), x.flip(-1)) and torch.equal(geometry.flip_lr(x, p=0.0), x)


@pytest.mark.parametrize("kind", ["tensor", "image", "pil", "bytes"])
def test_eval_pipeline_input_types(kind):
    data = photos.jpeg_bytes("rocket")
    img = jpeg.decode_jpeg(data)
    inp = {"tensor": img, "image": tv_tensors.Image(img), "pil": v2.functional.to_pil_image(img),
           "bytes": data}[kind]
    out = pipelines.eval_pipeline(precise=True)(inp)
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    assert float(out.min()) >= -1 and float(out.max()) <= 1
    ref = tf_math.value_range(crop.central_crop(resize.resize_small(img, 256), 224))
    torch.testing.assert_close(out.as_subclass(torch.Tensor), ref, rtol=0, atol=0)
    if kind == "image":
        assert isinstance(out, tv_tensors.Image)


def test_train_pipeline_reproducible_and_hook():
    data = photos.jpeg_bytes("rocket")
    calls = []

    def hook(x):
        calls.append(tuple(x.shape))
        return x
    a = pipelines.train_pipeline(randaug=hook, precise=True, generator=torch.Generator().manual_seed(1))(data)
    b = pipelines.train_pipeline(randaug=hook, precise=True, generator=torch.Generator().manual_seed(1))(data)
    c = pipelines.train_pipeline(randaug=None, precise=True, generator=torch.Generator().manual_seed(2))(data)
    assert calls == [(3, 224, 224)] * 2
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 224, 224) and a.dtype == torch.float32


def test_train_crop_of_bytes_equals_crop_of_decoded():
    data = photos.jpeg_bytes("rocket")
    t1 = transforms.DecodeJpegAndInceptionCrop(224, precise=True, generator=torch.Generator().manual_seed(3))
    t2 = transforms.DecodeJpegAndInceptionCrop(224, precise=True, generator=torch.Generator().manual_seed(3))
    assert torch.equal(t1(data), t2(jpeg.decode_jpeg(data)))


def test_transform_rejects_boxes():
    boxes = tv_tensors.BoundingBoxes([[0, 0, 5, 5]], format="XYXY", canvas_size=(10, 10))
    with pytest.raises(TypeError, match="images only"):
        transforms.CentralCrop(4)(tv_tensors.Image(torch.zeros(3, 10, 10, dtype=torch.uint8)), boxes)


def test_central_crop_too_large():
    with pytest.raises(ValueError, match="larger than the image"):
        crop.central_crop(torch.zeros(3, 10, 10), 11)

"""Truncated / corrupt training images (issue 14 item 1): detected on every input path, skipped with a warning
naming the file, counted by reason, identically on each path.

What "truncated" means is TF's rule, per crop window (``decode_and_crop_jpeg``; checked against TF itself by
tests/test_tf_jpeg.py's live test and the recorded ``preprocess`` windows_*_cut* fixtures): a window whose rows
lie in the data decodes exactly as from the whole file; one that needs missing rows fails. So a cut file is
skipped for some draws and used for others -- exactly the samples big_vision's train op (with
``input.skip_errors``) would drop -- and every path makes the same call for the same draw.
"""
from __future__ import annotations

import io
import logging
import re

import numpy as np
import pytest
import torch
from PIL import Image

from parity import photos
from torch_impl.config import PPConfig
from torch_impl.data import ImageFiles, list_image_folder, train_transform
from torch_impl.data.datasets import BAD_REASONS
from torch_impl.pp import tf_jpeg
from torch_impl.pp.backends import numba as nk

pytestmark = pytest.mark.skipif(not tf_jpeg.available(), reason="needs the exact crop decoder")

N_GOOD = 3


def _jpeg(img, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_images")
    (root / "a").mkdir()
    (root / "b").mkdir()
    img = photos.photo("chelsea", (120, 160))
    for i in range(N_GOOD):
        (root / "a" / f"good{i}.JPEG").write_bytes(_jpeg(np.roll(img, 7 * i, axis=1)))
    whole = _jpeg(img, subsampling=2)
    (root / "a" / "h_cut.JPEG").write_bytes(whole[:len(whole) * 80 // 100])        # baseline, cut at 80%
    prog = _jpeg(img, subsampling=2, progressive=True)
    (root / "a" / "i_cut_progressive.JPEG").write_bytes(prog[:len(prog) * 95 // 100])
    (root / "b" / "j_corrupt.JPEG").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    (root / "b" / "k_text.JPEG").write_bytes(b"this is not an image\n" * 10)
    (root / "b" / "good_b.JPEG").write_bytes(_jpeg(img[::-1].copy()))
    return root, whole


def _pp(fast: bool) -> PPConfig:
    return PPConfig(crop_size=32, randaug_num_layers=2, randaug_magnitude=10, fast_decode=fast)


PATHS = {
    "reference": dict(fast=False),
    "fast_numba": dict(fast=True, numba=True),
    "fast_numpy": dict(fast=True, numba=False),
    "device_decode_worker": dict(fast=True, device_decode=True),
}


def _run(folder_root, path: str, seeds, caplog):
    cfg = PATHS[path]
    files = list_image_folder(folder_root)
    old = nk.enabled()
    if "numba" in cfg:
        if cfg["numba"] and not nk.available():
            pytest.skip("numba not installed")
        nk.set_enabled(cfg["numba"])
    try:
        pipe = train_transform(_pp(cfg["fast"]), device_decode=cfg.get("device_decode", False))
        ds = ImageFiles(files, transform=pipe)
        out = []
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            for i in range(len(ds)):
                for s in seeds:
                    item = ds[(i, s)]
                    out.append((i, s, item["label"], int(item["bad"]), tuple(item["bad_reasons"].tolist())))
        # (reason, file) of each skip; the wording of the decoder's message may differ between paths
        warnings = [re.match(r"skipping unreadable image (\S+) \((\w+);", r.getMessage()).groups()[::-1]
                    for r in caplog.records if r.getMessage().startswith("skipping ")]
    finally:
        nk.set_enabled(old)
    return out, warnings


def test_every_path_skips_the_same_samples_for_the_same_reasons(folder, caplog):
    root, whole = folder
    seeds = list(range(12))
    results = {p: _run(root, p, seeds, caplog) for p in PATHS}
    ref_items, ref_warn = results["reference"]
    for p, (items, warns) in results.items():
        assert items == ref_items, p
        assert sorted(warns) == sorted(ref_warn), p
    files = list_image_folder(root)
    names = [str(files.rel_paths[i]) for i in range(len(files))]
    by_file = {n: [r for r in ref_items if r[0] == i] for i, n in enumerate(names)}
    reasons = dict(zip(BAD_REASONS, range(len(BAD_REASONS))))
    # the corrupt file and the text file are skipped on every draw, for their own reason
    assert all(r[3] >= 1 and r[4][reasons["corrupt"]] >= 1 for r in by_file["b/j_corrupt.JPEG"])
    assert all(r[4][reasons["not_an_image"]] >= 1 for r in by_file["b/k_text.JPEG"])
    # the cut progressive file is read whole before any row: skipped on every draw
    assert all(r[3] >= 1 and r[4][reasons["truncated"]] >= 1 for r in by_file["a/i_cut_progressive.JPEG"])
    # the cut baseline file: skipped exactly when its window needs the missing rows (TF's verdict)
    cut = [r for r in by_file["a/h_cut.JPEG"]]
    skipped = [r for r in cut if r[3]]
    assert skipped and len(skipped) < len(cut), "the seeds must exercise both verdicts"
    assert all(r[4][reasons["truncated"]] == r[3] for r in skipped)
    # good files are never skipped
    for n in names:
        if n.startswith("a/good"):
            assert all(r[3] == 0 for r in by_file[n])
    # every skip is a warning naming the file and the reason
    assert ("truncated", str(root / "a" / "h_cut.JPEG")) in ref_warn
    assert ("corrupt", str(root / "b" / "j_corrupt.JPEG")) in ref_warn
    assert ("not_an_image", str(root / "b" / "k_text.JPEG")) in ref_warn
    assert len(ref_warn) == sum(r[3] for r in ref_items)


def test_cut_file_pixels_equal_the_whole_file_when_the_window_is_in_the_data(folder):
    """When the cut file is used, its crop is the whole file's crop (nothing grey, nothing invented)."""
    root, whole = folder
    files = list_image_folder(root)
    i = [str(p) for p in files.rel_paths].index("a/h_cut.JPEG")
    cut_ds = ImageFiles(files, transform=train_transform(_pp(True)))
    used = 0
    for s in range(30):
        item = cut_ds[(i, s)]
        if item["bad"]:
            continue
        used += 1
        # the same draw on the uncut file gives the same pixels
        pipe = train_transform(_pp(True))
        assert torch.equal(item["image"], pipe(whole, s))
    assert used > 0


def test_run_summary_names_the_reasons():
    from torch_impl.train.loop import bad_images_summary
    msg = bad_images_summary({"truncated": 3, "corrupt": 1, "not_an_image": 0, "unreadable": 0})
    assert msg.startswith("train: 4 image(s) skipped")
    assert "3 truncated" in msg and "1 corrupt" in msg and "not_an_image" not in msg
    assert bad_images_summary({r: 0 for r in BAD_REASONS}) is None


@pytest.mark.parametrize("randaug", [True, False], ids=["randaug", "no_randaug"])
@pytest.mark.parametrize("uint8_out", [False, True], ids=["float", "uint8"])
@pytest.mark.parametrize("resize", ["c", "numba"])
def test_batches_written_in_place_equal_stacked_items(folder, randaug, uint8_out, resize):
    """ImageFiles.__getitems__ (each image written into its row of one batch tensor; data.batching) + the
    loader's collate_train = the per-item path + default_collate, bit for bit, with bad files skipped the same
    way (a skipped sample's row holds the next file's image), in the main process and in DataLoader workers
    (shared-memory batches)."""
    from torch.utils.data import default_collate

    from torch_impl.data.loader import collate_train, make_loader
    if resize == "numba" and not nk.available():
        pytest.skip("numba not installed")
    root, _ = folder
    files = list_image_folder(root)
    pp = PPConfig(crop_size=32, randaug_num_layers=2 if randaug else 0, randaug_magnitude=10 if randaug else 0,
                  fast_decode=True)
    prev_c, prev_nk = tf_jpeg.set_c_resize(resize == "c"), nk.set_enabled(resize == "numba" or nk.available())
    try:
        ds = ImageFiles(files, transform=train_transform(pp, device_value_range=uint8_out))
        assert ds.transform.writes_into
        items = [(i % len(ds), 100 + i) for i in range(2 * len(ds))]
        ref = default_collate([ds[it] for it in items])
        from torch_impl.data.batching import batch_of_rows
        dicts = ds.__getitems__(items)
        assert batch_of_rows([d["image"] for d in dicts]) is not None     # written in place, not stacked
        got = collate_train(dicts)
        assert got["image"].dtype == (torch.uint8 if uint8_out else torch.float32)
        assert got.keys() == ref.keys() and int(ref["bad"].sum()) > 0
        for k in ref:
            assert torch.equal(got[k].view(torch.uint8) if k == "image" else got[k],
                               ref[k].view(torch.uint8) if k == "image" else ref[k]), k

        class Fixed(torch.utils.data.Sampler):
            def __iter__(self):
                return iter(items)

            def __len__(self):
                return len(items)
        for workers in (0, 2):
            batches = list(make_loader(ds, Fixed(), 8, num_workers=workers))
            image = torch.cat([b["image"] for b in batches])
            assert torch.equal(image.view(torch.uint8), ref["image"].view(torch.uint8)), workers
            assert torch.equal(torch.cat([b["label"] for b in batches]), ref["label"])
    finally:
        nk.set_enabled(prev_nk)
        tf_jpeg.set_c_resize(prev_c)

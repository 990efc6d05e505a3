"""torch_impl.data (datasets, sampling, placement, loader): stratified split, step sampler, bad images (CPU, seconds)."""
from __future__ import annotations

import io
import os
import logging
import random

import numpy as np
import pytest
import torch
from PIL import Image

from torch_impl import data as D


def _keys(n_classes=7, per_class=(5, 40)):
    rng = random.Random(0)
    keys, labels = [], []
    for c in range(n_classes):
        for j in range(rng.randint(*per_class)):
            keys.append(f"n{c:08d}/n{c:08d}_{rng.randint(0, 10**6)}_{j}.JPEG")
            labels.append(c)
    return keys, labels


def test_split_keeps_every_class_on_both_sides_and_the_total():
    keys, labels = _keys()
    tr, ho = D.stratified_split(keys, labels, 0.9, seed=0)
    labels = np.asarray(labels)
    assert set(labels[tr]) == set(labels) == set(labels[ho])
    assert len(ho) == len(keys) - round(len(keys) * 0.9)
    assert not set(tr) & set(ho) and len(tr) + len(ho) == len(keys)
    # the naive slice of a class-ordered listing (what a 'train[:90%]' of ImageFolder does) loses classes
    naive_hold = labels[int(round(len(keys) * 0.9)):]
    assert len(set(naive_hold)) < len(set(labels))


def test_split_is_stable_across_listing_orders_and_depends_on_the_seed():
    keys, labels = _keys()
    tr, ho = D.stratified_split(keys, labels, 0.9, seed=0)
    perm = np.random.default_rng(1).permutation(len(keys))
    tr2, ho2 = D.stratified_split([keys[i] for i in perm], [labels[i] for i in perm], 0.9, seed=0)
    assert {keys[i] for i in ho} == {keys[perm[i]] for i in ho2}
    _, ho3 = D.stratified_split(keys, labels, 0.9, seed=1)
    assert {keys[i] for i in ho} != {keys[i] for i in ho3}


def test_split_imagenet_sizes_and_full_option():
    # ImageNet-1k train: 1,281,167 images; tfds train[:99%] has 1,268,355: ours too (classes of 732..1300)
    rng = np.random.default_rng(0)
    counts = rng.integers(732, 1301, size=1000)
    counts[-1] += 1_281_167 - counts.sum()
    labels = np.repeat(np.arange(1000), counts)
    keys = [str(i) for i in range(len(labels))]
    tr, ho = D.stratified_split(keys, labels, 0.99, seed=0)
    assert len(tr) == 1_268_355
    assert len(np.unique(labels[ho])) == 1000
    tr, ho = D.stratified_split(keys[:100], labels[:100], 1.0)
    assert len(tr) == 100 and len(ho) == 0


def _stream(s, steps):
    return [next(it) for it in [iter(s)] for _ in range(steps)]


def test_step_sampler_same_global_batches_for_any_process_layout_and_resume():
    n, B = 37, 8
    one = _stream(D.StepSampler(n, B, seed=3, accum_steps=2), 3 * B)
    r0 = _stream(D.StepSampler(n, B, seed=3, rank=0, world_size=2), 3 * B // 2)
    r1 = _stream(D.StepSampler(n, B, seed=3, rank=1, world_size=2), 3 * B // 2)
    per = B // 2
    two = [x for s in range(3) for x in r0[s * per:(s + 1) * per] + r1[s * per:(s + 1) * per]]
    assert one == two
    resumed = _stream(D.StepSampler(n, B, seed=3, accum_steps=2, start_step=2), B)
    assert resumed == one[2 * B:3 * B]


def test_step_sampler_reshuffles_each_epoch_and_covers_it():
    n = 20
    s = _stream(D.StepSampler(n, 4, seed=0), 2 * n)
    e0, e1 = [i for i, _ in s[:n]], [i for i, _ in s[n:]]
    assert sorted(e0) == sorted(e1) == list(range(n))
    assert e0 != e1


def _write(path, arr, fmt, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt, **kw)


@pytest.fixture
def messy_folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "train"
    for c in ("a", "b"):
        for j in range(3):
            _write(root / c / f"{j}.JPEG", rng.integers(0, 255, (20, 24, 3), dtype=np.uint8), "JPEG")
    _write(root / "a" / "gray.JPEG", rng.integers(0, 255, (20, 24), dtype=np.uint8), "JPEG")
    cmyk = Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).convert("CMYK")
    cmyk.save(root / "b" / "cmyk.JPEG", format="JPEG")
    _write(root / "b" / "png_named.JPEG", rng.integers(0, 255, (20, 24, 3), dtype=np.uint8), "PNG")
    (root / "a" / "corrupt.JPEG").write_bytes(b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 255, 300, dtype=np.uint8)))
    (root / "b" / "empty.JPEG").write_bytes(b"")
    good = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(good, format="JPEG")
    (root / "b" / "truncated.JPEG").write_bytes(good.getvalue()[:40])
    return root


def test_bad_images_are_converted_or_skipped_and_counted(messy_folder, caplog):
    from torch_impl.config import PPConfig
    files = D.list_image_folder(messy_folder)
    pp = PPConfig(crop_size=16, eval_resize_small=18, randaug_magnitude=3)
    for transform in (D.train_transform(pp), D.eval_transform(pp)):
        ds = D.ImageFiles(files, None, transform)
        bad = 0
        with caplog.at_level(logging.WARNING, logger="torch_impl.data"):
            for i in range(len(ds)):
                item = ds[(i, i)]
                assert item["image"].shape == (3, 16, 16) and item["image"].dtype == torch.float32
                bad += item["bad"]
        names = {files.rel_paths[i].split("/")[-1] for i in range(len(files))}
        assert {"gray.JPEG", "cmyk.JPEG", "png_named.JPEG"} <= names
        # corrupt, empty and truncated are skipped (truncated: PIL refuses it); gray/CMYK/PNG are decoded
        assert bad == 3, bad
        assert "corrupt.JPEG" in caplog.text and "skipping unreadable image" in caplog.text
        caplog.clear()
    for name in ("gray.JPEG", "cmyk.JPEG", "png_named.JPEG"):
        img = D.load_rgb(messy_folder / ("a" if name == "gray.JPEG" else "b") / name)
        assert img.shape[0] == 3 and img.dtype == torch.uint8


def test_loader_batches_count_bad_files_through_workers(messy_folder):
    from torch_impl.config import PPConfig
    files = D.list_image_folder(messy_folder)
    ds = D.ImageFiles(files, None, D.eval_transform(PPConfig(crop_size=16, eval_resize_small=18)))
    outs = []
    for workers in (0, 2):
        loader = D.make_loader(ds, D.ShardSampler(len(ds)), 4, num_workers=workers)
        batches = list(loader)
        outs.append(torch.cat([b["image"] for b in batches]))
        assert sum(int(b["bad"].sum()) for b in batches) == 3
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_train_augmentation_depends_on_the_sample_seed_only():
    from torch_impl.config import PPConfig
    syn = D.SyntheticImages(10, 3, 24, transform=D.train_transform(PPConfig(crop_size=16, randaug_magnitude=5)))
    a, b, c = syn[(4, 123)], syn[(4, 123)], syn[(4, 124)]
    torch.testing.assert_close(a["image"], b["image"], rtol=0, atol=0)
    assert not torch.equal(a["image"], c["image"])


@pytest.mark.slow
def test_tfds_export_runs_in_its_own_process_and_loads_as_imagefolder(tmp_path):
    """reference/tfds_export.py on tfds' mock imagenet2012 (TensorFlow only in the subprocess)."""
    import subprocess
    import sys
    pytest.importorskip("tensorflow_datasets")   # the reference extra; only its presence is checked here
    code = ("import sys, pathlib, tensorflow_datasets as tfds\n"
            "from reference import tfds_export\n"
            "with tfds.testing.mock_data(num_examples=5):\n"
            "    tfds_export.export('imagenet2012', pathlib.Path(sys.argv[1]))\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "exp")], capture_output=True, text=True,
                       timeout=240, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "tensorflow" not in sys.modules
    from torch_impl.config import apply_overrides, get_config
    cfg = apply_overrides(get_config("vit_s16_i1k"), {"input.data.split": "train[:60%]", "input.pp.crop_size": 16,
                                                      "input.pp.eval_resize_small": 18})
    sp = D.folder_splits(cfg, tmp_path / "exp")          # 1000 classes from EXPORT_DONE.json
    n_hold = len(sp.minival) if sp.minival is not None else 0    # classes with 1 image stay in train
    assert sp.num_classes == 1000 and len(sp.train) + n_hold == 5 and len(sp.val) == 5
    for ds in (sp.train, sp.val):
        item = ds[(0, 0)]
        assert item["image"].shape == (3, 16, 16) and item["bad"] == 0

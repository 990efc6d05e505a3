"""Calibration grids and real photos."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

from parity import grids, photos


def test_mup_vit_grid_is_a_56px_checkerboard():
    g = grids.bw_grid(224, 224, 56)
    assert g.shape == (224, 224, 3) and g.dtype == np.uint8
    assert set(np.unique(g)) == {0, 255}
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    assert g[0, 0, 0] == 0 and g[0, 56, 0] == 255 and g[56, 56, 0] == 0 and g[55, 55, 0] == 0


def test_contrast_calibration_mean_is_far_from_big_vision_mean():
    img = grids.contrast_calibration(224, 224)
    grey = img.astype(np.float64) @ [0.2989, 0.587, 0.114]
    assert abs(grey.mean() - 196) > 100  # big_vision's bogus mean at 224x224 is 224*224/256 = 196


def test_all_grids_are_uint8_rgb_with_odd_and_non_square_sizes():
    gs = grids.calibration_grids()
    shapes = {g.shape[:2] for g in gs.values()}
    assert any(h != w for h, w in shapes) and any(h % 2 or w % 2 for h, w in shapes)
    assert all(g.dtype == np.uint8 and g.ndim == 3 and g.shape[2] == 3 for g in gs.values())
    assert len(np.unique(gs["grey_ramp_224"][0, :, 0])) == 224


def test_chw_round_trip():
    g = grids.noise(5, 7)
    assert tuple(grids.to_chw(g).shape) == (3, 5, 7)
    np.testing.assert_array_equal(grids.to_hwc(grids.to_chw(g)), g)


def test_photos_come_from_the_installed_wheel():
    assert photos.photo("chelsea").shape == (300, 451, 3)
    assert photos.jpeg_bytes("rocket")[:2] == b"\xff\xd8"
    jpegs = photos.imagenet_like_jpegs()
    assert all(Image.open(__import__("io").BytesIO(b)).size == (500, 375) for b in jpegs.values())


def test_cli_writes_pngs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "parity.cli", "grids", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    written = sorted(p.stem for p in tmp_path.glob("*.png"))
    assert written == sorted(grids.calibration_grids())
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "bw_224_sq56.png")), grids.bw_grid())

"""Our tensorflow_addons.image shim against hand-checkable cases (run in a TF subprocess)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from parity.store import read_npz, save_npz

CALLS = [
    {"fn": "rotate", "args": {"angles": float(np.pi / 2)}},
    {"fn": "rotate", "args": {"angles": float(-np.pi / 2)}},
    {"fn": "rotate", "args": {"angles": float(np.pi)}},
    {"fn": "translate", "args": {"translations": [3.0, 0.0]}},
    {"fn": "translate", "args": {"translations": [0.0, -2.0]}},
    {"fn": "transform", "args": {"transforms": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]}},
    {"fn": "rotate", "args": {"angles": 0.0}},
    {"fn": "transform", "args": {"transforms": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
                                 "interpolation": "nearest", "fill_value": 0.0}},
]


@pytest.fixture(scope="module")
def shim_outputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("shim")
    rng = np.random.default_rng(0)
    image = rng.integers(1, 256, size=(7, 7, 4), dtype=np.uint8)  # odd size: a unique centre pixel
    save_npz(d / "in.npz", {"image": image, "spec": np.array(json.dumps(CALLS))})
    proc = subprocess.run([sys.executable, "-m", "reference", "shim", "--in", str(d / "in.npz"),
                           "--out", str(d / "out.npz")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return image, read_npz(d / "out.npz")


def test_rotate_quarter_turn_is_counter_clockwise(shim_outputs):
    image, out = shim_outputs
    # +90 degrees turns content counter-clockwise on screen (tfa's convention): numpy's rot90 k=1.
    np.testing.assert_array_equal(out["out_0"], np.rot90(image, k=1, axes=(0, 1)))
    np.testing.assert_array_equal(out["out_1"], np.rot90(image, k=-1, axes=(0, 1)))
    np.testing.assert_array_equal(out["out_2"], np.rot90(image, k=2, axes=(0, 1)))


def test_integer_translation_shifts_and_fills_zero(shim_outputs):
    image, out = shim_outputs
    right3 = np.zeros_like(image)
    right3[:, 3:] = image[:, :-3]           # translations [dx=3, dy=0]: content moves right
    np.testing.assert_array_equal(out["out_3"], right3)
    up2 = np.zeros_like(image)
    up2[:-2] = image[2:]                     # translations [0, -2]: content moves up
    np.testing.assert_array_equal(out["out_4"], up2)


def test_identity_transform_and_zero_rotation(shim_outputs):
    image, out = shim_outputs
    for k in ("out_5", "out_6", "out_7"):
        np.testing.assert_array_equal(out[k], image)
    assert out["out_0"].dtype == np.uint8

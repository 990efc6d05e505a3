"""Unit tests of the spectrum study's pieces not covered by the randaug_spectrum family checks: the
distances, the histogram -> sorted-spectrum inversion, the sampler, input validation and the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from parity import cli, grids
from parity import spectrum as S
from parity.store import FixtureStore


def _hist_of(values) -> np.ndarray:
    return np.bincount(np.asarray(values, np.int64).ravel(), minlength=256)


@pytest.mark.parametrize("name", sorted(S.DISTANCES))
def test_identical_histograms_are_at_distance_zero(name):
    h = np.random.default_rng(0).integers(0, 50, size=(7, 256))
    assert S.DISTANCES[name](h, h) == 0.0
    # Pooling and normalisation: a scaled copy of the same distribution is also at distance 0.
    assert S.DISTANCES[name](h.sum(0), 3 * h.sum(0)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name,maximum", [("tv", 1.0), ("w1", 255.0), ("spectrum_l1", 255.0)])
def test_disjoint_extremes_are_at_maximum_distance(name, maximum):
    black, white = _hist_of(np.zeros(100))[None], _hist_of(np.full(100, 255))[None]
    assert S.DISTANCES[name](black, white) == pytest.approx(maximum)
    assert S.DISTANCES[name](white, black) == pytest.approx(maximum)


def test_tv_is_one_for_any_disjoint_supports_and_w1_measures_the_shift():
    a, b = _hist_of([3, 3, 4]), _hist_of([10, 10, 11])
    assert S.tv_distance(a, b) == pytest.approx(1.0)
    assert S.w1_distance(a, b) == pytest.approx(7.0)
    c = _hist_of([3, 3, 5])  # one third of the mass moved by one level
    assert S.tv_distance(a, c) == pytest.approx(1 / 3)
    assert S.w1_distance(a, c) == pytest.approx(1 / 3)


def test_sorted_spectra_invert_the_histogram():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, size=(13, 17)) for _ in range(3)] + [np.full((13, 17), 9)]
    hist = np.stack([_hist_of(im) for im in images])
    spectra = S.sorted_spectra(hist, points=221)
    for im, spec in zip(images, spectra):
        values = np.sort(im.ravel())
        ranks = np.floor((np.arange(221) + 0.5) / 221 * values.size).astype(int)
        np.testing.assert_array_equal(spec, values[ranks])
    assert S.mean_spectrum(hist, 221).shape == (221,)


def test_distances_reject_bad_histograms():
    with pytest.raises(S.SpectrumError, match="256"):
        S.tv_distance(np.ones(10), np.ones(10))
    with pytest.raises(S.SpectrumError, match="positive total"):
        S.w1_distance(np.zeros(256), np.ones(256))


def _arrays(n=4):
    hist = np.zeros((n, 256), np.uint16)
    hist[:, 0], hist[:, 255] = 30, 70
    return {"hist": hist, "hist_rgb": np.stack([hist.sum(0)] * 3).astype(np.int64),
            "colour_count": np.zeros(n, np.int32)}


def test_spectra_from_arrays_accepts_recorded_layout():
    s = S.Spectra.from_arrays(_arrays())
    assert (s.n, s.pixels, s.coloured_fraction()) == (4, 100, 0.0)
    assert s.pooled()[[0, 255]].tolist() == [0.3, 0.7]


@pytest.mark.parametrize("field,value,match", [
    ("hist", None, "field 'hist' is missing"),
    ("hist", np.zeros((4, 255), np.uint16), r"'hist' must have shape \(n, 256\)"),
    ("hist_rgb", np.zeros((256,), np.int64), "'hist_rgb' must have shape"),
    ("colour_count", np.zeros(5, np.int32), "'colour_count' must have shape"),
    ("hist", np.full((4, 256), 0.5), "non-negative integer counts"),
])
def test_spectra_from_arrays_names_the_bad_field(field, value, match):
    arrays = _arrays()
    if value is None:
        del arrays[field]
    else:
        arrays[field] = value
    with pytest.raises(S.SpectrumError, match=match) as e:
        S.Spectra.from_arrays(arrays, source="fixtures/x.npz")
    assert "fixtures/x.npz" in str(e.value) and "parity fixtures generate" in str(e.value)


def test_spectra_from_arrays_rejects_draws_of_different_sizes():
    arrays = _arrays()
    arrays["hist"][1, 0] += 1
    with pytest.raises(S.SpectrumError, match="different pixel counts"):
        S.Spectra.from_arrays(arrays)


def test_sample_counts_pixels_and_colour():
    grid = grids.bw_grid(32, 32, 8)
    identity = S.sample(lambda g: (lambda x: x), grid, 3, seed=0)
    np.testing.assert_array_equal(identity.hist, np.stack([_hist_of(grid[..., 0])] * 3))
    assert identity.coloured_fraction() == 0.0

    def tint(g):
        def f(x):
            x = x.clone()
            x[0, :4] = 7  # 4 rows of R changed: 4 * 32 coloured pixels per draw
            return x
        return f
    tinted = S.sample(tint, grid, 2, seed=0)
    assert tinted.colour_count.tolist() == [128, 128]
    assert tinted.hist_rgb[0, 7] == 2 * 128 and tinted.hist_rgb[1, 7] == 0


def test_sample_is_reproducible_and_leaves_global_rng_alone():
    grid = grids.bw_grid(64, 64, 16)
    state = torch.random.get_rng_state()
    a = S.sample(S.ours(10), grid, 12, seed=3)
    b = S.sample(S.ours(10), grid, 12, seed=3)
    c = S.sample(S.torchvision_randaugment(10), grid, 12, seed=3)
    d = S.sample(S.torchvision_randaugment(10), grid, 12, seed=3)
    np.testing.assert_array_equal(a.hist, b.hist)
    np.testing.assert_array_equal(c.hist, d.hist)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.get_num_threads() >= 1


def test_sample_rejects_transforms_that_change_the_image_format():
    with pytest.raises(RuntimeError, match="expected uint8"):
        S.sample(lambda g: (lambda x: x.float()), grids.bw_grid(8, 8, 2), 1, seed=0)
    with pytest.raises(ValueError, match="n must be"):
        S.sample(lambda g: (lambda x: x), grids.bw_grid(8, 8, 2), 0, seed=0)


def test_torchvision_magnitude_maps_big_vision_levels_onto_31_bins():
    assert [S.torchvision_magnitude(m) for m in (0, 5, 10, 15)] == [0, 15, 30, 30]


def test_cli_writes_spectrum_and_histogram_pngs(tmp_path):
    store = FixtureStore()
    if not store.files("randaug_spectrum"):
        pytest.skip("no randaug_spectrum fixtures recorded")
    out = tmp_path / "spec"
    rc = cli.main(["spectrum", "--n", "12", "--magnitude", "10", "--out", str(out)])
    assert rc == 0
    for name in ("spectrum_m10_spectrum.png", "spectrum_m10_histogram.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
    summary = json.loads((out / "spectrum.json").read_text())
    row = summary["M=10"]
    assert set(row) >= {"tv", "spectrum_l1", "w1", "coloured_fraction", "n"}
    assert row["n"]["ours"] == 12 and row["n"]["big_vision"] >= 4000


def test_cli_errors_are_clear(tmp_path, capsys):
    assert cli.main(["spectrum", "--n", "12", "--out", str(tmp_path / "o"), "--fixtures", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err   # a store without a manifest: the store's one-line error naming it and the fix
    assert err.startswith("parity spectrum: ") and "manifest.json: manifest not found" in err and err.count("\n") == 1
    if FixtureStore().files("randaug_spectrum"):
        assert cli.main(["spectrum", "--n", "12", "--magnitude", "7", "--out", str(tmp_path / "o")]) == 2
        assert "no big_vision spectrum recorded for magnitude [7]" in capsys.readouterr().err
    assert cli.main(["spectrum", "--n", "1", "--out", str(tmp_path / "o")]) == 2


def test_cli_reports_a_magnitude_our_transform_refuses(tmp_path, monkeypatch, capsys):
    if not FixtureStore().files("randaug_spectrum"):
        pytest.skip("no randaug_spectrum fixtures recorded")

    def refusing(magnitude, **kw):
        def make(generator):
            raise ValueError(f"magnitude {magnitude} not supported")
        return make
    monkeypatch.setattr(S, "ours", refusing)
    out = tmp_path / "spec"
    assert cli.main(["spectrum", "--n", "4", "--magnitude", "10", "--out", str(out)]) == 1
    assert "refused it (magnitude 10 not supported)" in capsys.readouterr().err
    assert (out / "spectrum_m10_histogram.png").exists()  # big_vision and torchvision are still plotted

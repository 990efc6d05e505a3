"""torch_impl.pp.tf_jpeg: TF's decode_and_crop_jpeg / decode_jpeg on libjpeg-turbo.

Bit-exactness against TF itself is checked by the `preprocess` and `fast_paths` parity families (recorded
big_vision outputs) and, with BIG_VISION_DIR set, by the `live` test below against TF in a subprocess. Here:
properties that need no TF and that a wrong decoder breaks.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from parity import photos
from torch_impl.pp import tf_jpeg

pytestmark = pytest.mark.skipif(not tf_jpeg.available(), reason=f"tf_jpeg unavailable: {tf_jpeg.status().reason}")


def _enc(img, mode=None, **kw) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(img)
    if mode:
        im = im.convert(mode)
    im.save(buf, "JPEG", quality=kw.pop("quality", 90), **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    img = photos.photo("chelsea", (117, 181))          # odd sizes: partial iMCUs at the right and bottom
    return {"420": _enc(img, subsampling=2), "422": _enc(img, subsampling=1), "444": _enc(img, subsampling=0),
            "progressive": _enc(img, subsampling=2, progressive=True), "grey": _enc(img, "L"),
            "optimized": _enc(img, subsampling=2, optimize=True),
            "restarts": _enc(img, subsampling=2, restart_marker_blocks=3), "cmyk": _enc(img, "CMYK")}


def _windows(h, w, n=60, seed=0):
    rng = np.random.default_rng(seed)
    out = [(0, 0, h, w), (0, 0, 1, 1), (h - 1, w - 1, 1, 1), (3, 16, 20, 17), (3, 17, 20, 16), (0, 15, h, w - 15)]
    for _ in range(n):
        bh, bw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        out.append((int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1)), bh, bw))
    return out


def test_status_names_the_library():
    st = tf_jpeg.status()
    assert st.available and st.reason == "" and st.library and os.path.exists(st.library)


def test_full_decode_equals_libjpeg_turbo_fast_dct(files):
    # simplejpeg(fastdct=True) is TF's default decode bit for bit (preprocess family); CMYK aside, which
    # simplejpeg cannot convert like TF.
    import simplejpeg
    for name, data in files.items():
        if name == "cmyk":
            continue
        ours = tf_jpeg.decode(data)
        assert np.array_equal(ours, simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True,
                                                           fastupsample=False)), name
        # and the accurate IDCT is PIL's
        acc = tf_jpeg.decode(data, fast_dct=False)
        assert np.array_equal(acc, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))), name


def test_whole_image_window_is_the_full_decode(files):
    for name, data in files.items():
        full = tf_jpeg.decode(data)
        assert np.array_equal(tf_jpeg.decode_and_crop(data, (0, 0, *full.shape[:2])), full), name


def test_crop_equals_slice_without_chroma_subsampling(files):
    # No chroma upsampling (4:4:4, grey): the partial decode must give exactly the slice, on every window.
    for name in ("444", "grey"):
        full = tf_jpeg.decode(files[name])
        for t, l, h, w in _windows(*full.shape[:2]):
            assert np.array_equal(tf_jpeg.decode_and_crop(files[name], (t, l, h, w)), full[t:t + h, l:l + w]), \
                (name, (t, l, h, w))


def test_subsampled_crop_is_a_partial_decode(files):
    """On 4:2:0 / 4:2:2 the window is the image for chroma upsampling: edge columns differ from the slice on
    some windows (this is what TF does and what decode-then-slice misses), and only edge columns do."""
    for name in ("420", "422", "progressive", "restarts"):
        full = tf_jpeg.decode(files[name])
        differing = 0
        for t, l, h, w in _windows(*full.shape[:2], n=80, seed=1):
            crop = tf_jpeg.decode_and_crop(files[name], (t, l, h, w))
            diff = np.any(crop != full[t:t + h, l:l + w], axis=(0, 2))
            differing += bool(diff.any())
            interior = diff.copy()
            interior[[0, -1]] = False
            assert not interior.any(), (name, (t, l, h, w), np.flatnonzero(diff))
        assert differing >= 10, (name, differing)


def test_out_buffer_is_filled_in_place(files):
    out = np.zeros((20, 33, 3), np.uint8)
    got = tf_jpeg.decode_and_crop(files["420"], (5, 7, 20, 33), out=out)
    assert got is out and np.array_equal(out, tf_jpeg.decode_and_crop(files["420"], (5, 7, 20, 33)))
    with pytest.raises(ValueError, match=r"shape \(20, 33, 3\)"):
        tf_jpeg.decode_and_crop(files["420"], (5, 7, 20, 33), out=np.zeros((20, 32, 3), np.uint8))


def test_threads_decode_independently(files):
    data = files["420"]
    boxes = _windows(117, 181, n=40, seed=3)
    expect = [tf_jpeg.decode_and_crop(data, b) for b in boxes]
    errors = []

    def work():
        for _ in range(5):
            for b, e in zip(boxes, expect):
                if not np.array_equal(tf_jpeg.decode_and_crop(data, b), e):
                    errors.append(b)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_bad_windows_and_data_raise(files):
    with pytest.raises(tf_jpeg.JpegDecodeError, match="does not fit") as e:
        tf_jpeg.decode_and_crop(files["420"], (100, 0, 18, 10))
    assert e.value.kind == "window"
    with pytest.raises(tf_jpeg.JpegDecodeError) as e:
        tf_jpeg.decode_and_crop(b"not a jpeg at all", (0, 0, 1, 1))
    assert e.value.kind == "libjpeg"
    with pytest.raises(tf_jpeg.JpegDecodeError) as e:
        tf_jpeg.decode(b"")
    assert e.value.kind == "truncated"


def test_truncation_verdict_depends_on_the_rows_the_window_needs(files):
    """TF's rule (checked against TF by the live test and the recorded fixtures): a window whose rows lie in
    the data decodes exactly as from the whole file; one that needs missing rows fails as truncated;
    a progressive file is read whole before any row, so any cut fails."""
    data = files["420"]
    cut = data[:len(data) // 2]
    top = tf_jpeg.decode_and_crop(cut, (0, 0, 16, 181))
    assert np.array_equal(top, tf_jpeg.decode_and_crop(data, (0, 0, 16, 181)))
    with pytest.raises(tf_jpeg.JpegDecodeError) as e:
        tf_jpeg.decode_and_crop(cut, (100, 0, 17, 181))
    assert e.value.kind == "truncated" and "truncated" in str(e.value)
    with pytest.raises(tf_jpeg.JpegDecodeError) as e:
        tf_jpeg.decode(cut)
    assert e.value.kind == "truncated"
    prog = files["progressive"]
    with pytest.raises(tf_jpeg.JpegDecodeError) as e:
        tf_jpeg.decode_and_crop(prog[:int(len(prog) * 0.9)], (0, 0, 8, 8))
    assert e.value.kind == "truncated"
    # a file that only lacks its EOI marker: TF's full decode fails (jpeg_finish_decompress reads for it),
    # a window that stops above the bottom row decodes (the rows below are skipped without reading).
    no_eoi = data[:-2]
    with pytest.raises(tf_jpeg.JpegDecodeError):
        tf_jpeg.decode(no_eoi)
    assert np.array_equal(tf_jpeg.decode_and_crop(no_eoi, (0, 0, 50, 181)), tf_jpeg.decode_and_crop(data, (0, 0, 50, 181)))


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_missing_library_is_reported_not_silent(tmp_path):
    code = ("import warnings; from torch_impl.pp import tf_jpeg as T; st = T.status(); print(st.available); "
            "print(st.reason)\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always'); T.warn_fallback(); T.warn_fallback()\n"
            "print(len(w), w[0].message if w else '')")
    r = _run(code, VIT_PARITY_LIBJPEG=str(tmp_path / "nowhere.so"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "False" and "nowhere.so" in lines[1]
    assert lines[2].startswith("1 ") and "decode-then-crop" in lines[2]      # once per process, loud


def test_a_library_without_the_libjpeg_api_is_refused():
    import ctypes.util
    libz = ctypes.util.find_library("z")
    if libz is None:
        pytest.skip("no libz to load")
    r = _run("from torch_impl.pp import tf_jpeg as T; print(T.status().reason)", VIT_PARITY_LIBJPEG=libz)
    assert r.returncode == 0 and "does not export jpeg_" in r.stdout, r.stdout + r.stderr


@pytest.mark.live
def test_truncation_and_pixels_match_tf_live(tmp_path, files):
    """TF in a subprocess (never next to torch): decode_and_crop_jpeg on whole and truncated files, the same
    windows; verdicts and pixels must match."""
    if not os.environ.get("BIG_VISION_DIR"):
        pytest.skip("live: set BIG_VISION_DIR")
    cases = {}
    for name in ("420", "422", "444", "progressive", "grey", "cmyk", "restarts"):
        d = files[name]
        for k, frac in enumerate((1.0, 0.3, 0.6, 0.9, 0.99)):
            cases[f"{name}_{k}"] = d[:int(len(d) * frac)] if frac < 1 else d
    boxes = _windows(117, 181, n=25, seed=7)
    np.savez(tmp_path / "in.npz", boxes=np.array(boxes, np.int32),
             **{k: np.frombuffer(v, np.uint8) for k, v in cases.items()})
    script = (
        "import numpy as np, tensorflow as tf, sys\n"
        "z = np.load(sys.argv[1]); out = {}\n"
        "for k in z.files:\n"
        "    if k == 'boxes': continue\n"
        "    for i, b in enumerate(z['boxes']):\n"
        "        try: out[f'{k}__{i}'] = tf.image.decode_and_crop_jpeg(z[k].tobytes(), b, channels=3).numpy()\n"
        "        except tf.errors.InvalidArgumentError: pass\n"
        "np.savez(sys.argv[2], **out)\n")
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "in.npz"), str(tmp_path / "tf.npz")],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode == 0, r.stderr[-2000:]
    ref = np.load(tmp_path / "tf.npz")
    errors = 0
    for k, d in cases.items():
        for i, b in enumerate(boxes):
            try:
                ours = tf_jpeg.decode_and_crop(d, b)
            except tf_jpeg.JpegDecodeError:
                ours = None
            theirs = ref[f"{k}__{i}"] if f"{k}__{i}" in ref.files else None
            assert (ours is None) == (theirs is None), (k, b, "TF failed" if theirs is None else "we failed")
            errors += ours is None
            if ours is not None:
                assert np.array_equal(ours, theirs), (k, b)
    assert errors > 50      # the cuts do exercise the verdict


# ---- decode_resize: the crop-window decode + resize (+ flip, + value_range) in one C call ------------------------
def _resize_numpy(crop, size, flip, value_range):
    # the numpy kernels (no numba, no C): the fallback every other backend must equal
    from torch_impl.pp.backends import numba as NK
    from torch_impl.pp.backends import numpy as FP
    prev_c, prev_nk = tf_jpeg.set_c_resize(False), NK.set_enabled(False)
    try:
        return FP._resize_hwc(crop, size, size, flip, value_range).numpy()
    finally:
        tf_jpeg.set_c_resize(prev_c)
        NK.set_enabled(prev_nk)


def test_decode_resize_equals_decode_then_resize_on_every_encoding(files):
    # Every encoding (CMYK converted in the scratch buffer in place), windows incl. 1x1 and whole-image ones,
    # both flips, uint8 and value_range outputs, and sizes that up- and downscale.
    for name, data in files.items():
        h, w = tf_jpeg.header(data)
        for i, box in enumerate(_windows(h, w, n=12, seed=3)):
            crop = tf_jpeg.decode_and_crop(data, box)
            flip, value_range, size = bool(i % 2), bool(i % 3 == 0), (29, 224, 64)[i % 3]
            got = tf_jpeg.decode_resize(data, box, size, flip=flip, value_range=value_range)
            ref = _resize_numpy(crop, size, flip, value_range)
            assert got.dtype == ref.dtype and np.array_equal(got.view(np.uint8), ref.view(np.uint8)), (name, box)


def test_decode_resize_has_the_decoders_verdicts(files):
    # the same errors as decode_and_crop: window outside the image, not a JPEG, truncated rows
    with pytest.raises(tf_jpeg.JpegDecodeError) as e:
        tf_jpeg.decode_resize(files["420"], (100, 0, 18, 10), 8)
    assert e.value.kind == "window"
    with pytest.raises(tf_jpeg.JpegDecodeError) as e:
        tf_jpeg.decode_resize(b"not a jpeg at all", (0, 0, 1, 1), 8)
    assert e.value.kind == "libjpeg"
    data = files["420"]
    cut = data[:len(data) // 2]
    assert np.array_equal(tf_jpeg.decode_resize(cut, (0, 0, 16, 181), 8), tf_jpeg.decode_resize(data, (0, 0, 16, 181), 8))
    with pytest.raises(tf_jpeg.JpegDecodeError) as e:
        tf_jpeg.decode_resize(cut, (100, 0, 17, 181), 8)
    assert e.value.kind == "truncated"
    prog = files["progressive"]
    with pytest.raises(tf_jpeg.JpegDecodeError) as e:
        tf_jpeg.decode_resize(prog[:int(len(prog) * 0.9)], (0, 0, 8, 8), 8)
    assert e.value.kind == "truncated"
    with pytest.raises(ValueError, match="out must be"):
        tf_jpeg.decode_resize(data, (0, 0, 8, 8), 8, out=np.empty((3, 8, 8), np.uint8), value_range=True)


def test_decode_resize_threads_write_their_own_rows(files):
    # one scratch buffer per thread: threads decoding different windows side by side get each one's result
    data = files["420"]
    boxes = _windows(117, 181, n=40, seed=5)
    ref = [tf_jpeg.decode_resize(data, b, 32, value_range=True) for b in boxes]
    out = np.zeros((4, len(boxes), 3, 32, 32), np.float32)

    def work(t):
        for k, b in enumerate(boxes):
            tf_jpeg.decode_resize(data, b, 32, value_range=True, out=out[t, k])
    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t in range(4):
        assert np.array_equal(out[t].view(np.int32), np.stack(ref).view(np.int32))

"""The training-dynamics dataset (parity/dynamics/data.py): deterministic bytes, digest checks that fail."""
from __future__ import annotations

import copy
import io
import subprocess
import sys

import pytest
from PIL import Image

from parity.dynamics import data, load_recipe


def tiny_recipe(**over):
    r = copy.deepcopy(load_recipe())
    r["data"].update({"train_per_class": 2, "val_per_class": 1, **over})
    return r


def test_image_bytes_deterministic_and_seed_dependent():
    spec = data.data_spec(tiny_recipe())
    a = data.image_bytes(spec, "train", 3, 1)
    assert a == data.image_bytes(spec, "train", 3, 1)
    assert a != data.image_bytes(spec, "train", 3, 0)
    assert a != data.image_bytes({**spec, "seed": spec["seed"] + 1}, "train", 3, 1)
    img = Image.open(io.BytesIO(a))
    assert img.format == "JPEG" and img.mode == "RGB"
    lo, hi = spec["short_side"]
    assert lo <= min(img.size) <= hi


def test_generate_verify_and_tampering(tmp_path):
    recipe = tiny_recipe()
    digests = tmp_path / "digests.json"
    root = data.generate(tmp_path / "d", recipe, check=False)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
    assert len(files) == 10 * 3
    assert {f.split("/")[0] for f in files} == {"train", "val"}
    assert {f.split("/")[1] for f in files} == set(data.CLASSES)          # ImageFolder: split/<class>/x.jpg
    digest = data.record_digest(root, recipe, digests_file=digests)
    assert data.verify(root, recipe, digests_file=digests) == digest
    data.check_encoder(recipe, digests_file=digests)
    with pytest.raises(data.DataDigestError, match="no digest recorded"):
        data.verify(root, tiny_recipe(seed=7), digests_file=digests)

    victim = root / files[5]
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 1
    victim.write_bytes(bytes(raw))
    with pytest.raises(data.DataDigestError, match="JPEG encoder here is"):
        data.verify(root, recipe, digests_file=digests)
    victim.unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        data.verify(root, recipe, digests_file=digests)


def test_shipped_digest_matches_this_encoder():
    """The recorded reference curves are for these exact bytes: regenerate the sample images here."""
    data.check_encoder(load_recipe())


def test_changed_encoder_is_detected(monkeypatch):
    """Negative control: an encoder that writes different bytes (here: 4:4:4 chroma) must be rejected."""
    def other_encoder(img, quality):
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality, subsampling=0)
        return buf.getvalue()
    monkeypatch.setattr(data, "_encode", other_encoder)
    with pytest.raises(data.DataDigestError, match="Pillow/libjpeg"):
        data.check_encoder(load_recipe())


def test_bad_recipe_data_is_a_clear_error():
    with pytest.raises(ValueError, match="data.classes"):
        data.data_spec({"data": {**load_recipe()["data"], "classes": 5}})


def test_import_light():
    code = ("import sys, parity.dynamics, parity.dynamics.data; "
            "bad = {'torch', 'tensorflow', 'jax'} & set(sys.modules); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)

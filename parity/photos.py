"""Real photographs, taken from the images scikit-image ships inside its wheel (never downloaded).

``photo(name)`` gives decoded RGB uint8 (H, W, 3); ``jpeg_bytes(name)`` gives a real JPEG file's bytes;
``imagenet_like_jpegs()`` re-encodes photos at ImageNet's typical 500x375, quality 90 (the benchmark and
decode fixtures use these).
"""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np

# name -> file in skimage/data. The .jpg ones are real camera JPEGs, kept byte-for-byte.
_FILES = {
    "astronaut": "astronaut.png",   # 512x512
    "chelsea": "chelsea.png",       # 300x451 (odd width)
    "coffee": "coffee.png",         # 400x600
    "rocket": "rocket.jpg",         # 427x640 JPEG
    "retina": "retina.jpg",         # 1411x1411 JPEG
    "motorcycle": "motorcycle_left.png",
}
JPEG_PHOTOS = ("rocket", "retina")


def _data_dir() -> Path:
    try:
        import skimage
    except ImportError as e:  # pragma: no cover - it is a declared dependency
        raise RuntimeError("scikit-image is needed for the real photos: `pip install scikit-image`") from e
    return Path(skimage.__file__).parent / "data"


def photo_path(name: str) -> Path:
    if name not in _FILES:
        raise KeyError(f"unknown photo {name!r}; known: {', '.join(sorted(_FILES))}")
    p = _data_dir() / _FILES[name]
    if not p.exists():
        raise FileNotFoundError(f"{p}: not shipped by the installed scikit-image; reinstall it")
    return p


@lru_cache(maxsize=None)
def _decoded(name: str) -> np.ndarray:
    from PIL import Image
    with Image.open(photo_path(name)) as im:
        return np.asarray(im.convert("RGB"))


def photo(name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3); with ``size=(h, w)`` resized by PIL (bicubic) to that size."""
    img = _decoded(name)
    if size is not None:
        from PIL import Image
        img = np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.BICUBIC))
    return img.copy()


def jpeg_bytes(name: str) -> bytes:
    if name not in JPEG_PHOTOS:
        raise KeyError(f"{name!r} is not shipped as a JPEG; JPEGs: {', '.join(JPEG_PHOTOS)}")
    return photo_path(name).read_bytes()


def encode_jpeg(image: np.ndarray, quality: int = 90, **kw) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, **kw)
    return buf.getvalue()


def imagenet_like_jpegs(size: tuple[int, int] = (375, 500), quality: int = 90) -> dict[str, bytes]:
    """Each photo resized to ImageNet's typical 500x375 (w x h) and encoded as a JPEG at ``quality``."""
    return {name: encode_jpeg(photo(name, size), quality) for name in _FILES}

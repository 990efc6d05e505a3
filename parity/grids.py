"""Calibration images: synthetic grids whose augmentation outputs are easy to read, plus real photos.

All images are numpy uint8 arrays of shape (H, W, 3) (TF's layout; ``to_chw`` gives torch's). They are
generated, not stored, so every size is available; the fixtures record the exact pixels they used.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def bw_grid(height: int = 224, width: int | None = None, square: int = 56) -> np.ndarray:
    """Black & white checkerboard; 224x224 with 56x56 squares is the grid of the mup-vit RandAugment study."""
    width = height if width is None else width
    y, x = np.mgrid[0:height, 0:width]
    board = (((y // square) + (x // square)) % 2).astype(np.uint8) * 255
    return np.repeat(board[:, :, None], 3, axis=2)


def grey_ramp(height: int = 224, width: int = 224) -> np.ndarray:
    """Every grey level 0..255 left to right (so histogram and LUT ops see the full range)."""
    row = np.round(np.linspace(0, 255, width)).astype(np.uint8)
    return np.repeat(np.repeat(row[None, :, None], height, axis=0), 3, axis=2)


def colour_patches(height: int = 224, width: int = 224, patch: int = 28, seed: int = 0) -> np.ndarray:
    """Grid of flat patches in saturated and mixed colours (channels differ: catches channel mix-ups)."""
    rng = np.random.default_rng(seed)
    ny, nx = -(-height // patch), -(-width // patch)
    palette = rng.integers(0, 256, size=(ny, nx, 3), dtype=np.uint8)
    palette[0, :8] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0],
                      [0, 255, 255], [255, 0, 255], [0, 0, 0], [255, 255, 255]][:min(8, nx)]
    return np.repeat(np.repeat(palette, patch, axis=0), patch, axis=1)[:height, :width]


def contrast_calibration(height: int = 224, width: int = 224) -> np.ndarray:
    """Dark image (mean grey ~ 50) with a few bright patches: far from big_vision's bogus contrast mean
    (pixel_count / 256 = 196 at 224x224), so an implementation using the true mean visibly differs."""
    img = np.full((height, width, 3), 40, np.uint8)
    y, x = np.mgrid[0:height, 0:width]
    img[..., 0] += ((x * 60) // max(width - 1, 1)).astype(np.uint8)
    img[..., 1] += ((y * 30) // max(height - 1, 1)).astype(np.uint8)
    img[height // 8: height // 4, width // 8: width // 4] = 230
    return img


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Uniform random pixels: every op's arithmetic is exercised on every value."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def calibration_grids() -> dict[str, np.ndarray]:
    """The standard set, including non-square and odd sizes."""
    return {
        "bw_224_sq56": bw_grid(224, 224, 56),
        "bw_224_sq16": bw_grid(224, 224, 16),
        "bw_224_sq7": bw_grid(224, 224, 7),
        "bw_224_sq1": bw_grid(224, 224, 1),
        "grey_ramp_224": grey_ramp(224, 224),
        "colour_patches_224": colour_patches(224, 224),
        "contrast_cal_224": contrast_calibration(224, 224),
        "bw_160x288_sq32": bw_grid(160, 288, 32),
        "noise_97x131": noise(97, 131, seed=1),
        "colour_patches_75x203": colour_patches(75, 203, patch=25, seed=2),
    }


def to_chw(image: np.ndarray):
    """(H, W, 3) uint8 numpy -> (3, H, W) uint8 torch tensor."""
    import torch
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def to_hwc(tensor) -> np.ndarray:
    """(3, H, W) torch tensor -> (H, W, 3) numpy."""
    return tensor.detach().cpu().permute(1, 2, 0).contiguous().numpy()


def write_pngs(images: dict[str, np.ndarray], out: Path) -> list[Path]:
    from PIL import Image
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, img in images.items():
        p = out / f"{name}.png"
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths

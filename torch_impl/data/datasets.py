"""Training and evaluation data: ImageFolder trees, tfds exports, synthetic images.

* Layout: ``root/train/<class>/<file>`` and ``root/val/<class>/<file>`` (torchvision's ImageFolder layout;
  ``python -m reference.tfds_export`` writes tfds ``imagenet2012`` in this layout, in its own process, so
  the torch process never imports TensorFlow).
* Split: train[:P%] / minival by :func:`torch_impl.data.sampling.stratified_split` (every class, seeded hash).
* Augmentation randomness: every item reseeds its pipeline's torch.Generator from the sample seed the
  sampler yields (``torch_impl.data.sampling``).
* Bad files: grayscale, CMYK, palette and PNG-in-.JPEG files are converted to RGB; a file that cannot be
  decoded at all is skipped (the next file of the stream is used instead) with a logged warning, and the
  batch carries a counter so the loop can report how many were skipped.
"""
from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from torch_impl.data.batching import fill_batch
from torch_impl.data.placement import Pipeline, eval_transform, train_transform_for
from torch_impl.data.sampling import stratified_split
from torch_impl.data.tfds import ensure_export
from torch_impl.pp.jpeg import ImageDecodeError, decode_jpeg

log = logging.getLogger("torch_impl.data")

# Why a training image was skipped (counted per reason in the run's summary):
#   truncated     the data ends before the rows big_vision's decode_and_crop_jpeg needs for this crop
#                 (TF's verdict, per window: torch_impl.pp.tf_jpeg; a file cut below the window decodes)
#   corrupt       the decoder rejects the data (libjpeg's error, as TF's)
#   not_an_image  no known image format
#   unreadable    the file cannot be read (permissions, I/O error)
BAD_REASONS = ("truncated", "corrupt", "not_an_image", "unreadable")


def bad_reason(exc: BaseException) -> str:
    """The :data:`BAD_REASONS` entry for an exception raised while loading one training image."""
    reason = getattr(exc, "reason", None)
    if reason in BAD_REASONS:
        return reason
    return "unreadable" if isinstance(exc, OSError) else "corrupt"


# What reading one image raises when the FILE is bad, not the code: our decoders' ImageDecodeError (a
# ValueError), PIL's UnidentifiedImageError and truncated-file errors and I/O errors (OSError), PIL plugins'
# SyntaxError and DecompressionBombError. Only these are caught (skipped, counted); anything else propagates.
UNREADABLE_IMAGE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


# ---------------------------------------------------------------------------- listing + split
@dataclass
class FileList:
    root: Path
    rel_paths: list[str]          # relative to root, '/'-separated
    labels: list[int]
    classes: list[str]

    def __len__(self):
        return len(self.rel_paths)


def list_image_folder(root: str | os.PathLike, classes: Sequence[str] | None = None) -> FileList:
    """List ``root/<class>/<file>``; classes are the sorted sub-folder names (torchvision's convention,
    which for ImageNet equals tfds' label order: sorted WordNet ids)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; expected the ImageFolder layout root/<class>/<image>")
    if classes is None:
        classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"{root}: no class sub-folders; expected root/<class>/<image>")
    rel, labels = [], []
    for ci, c in enumerate(classes):
        cdir = root / c
        if not cdir.is_dir():
            continue
        for dirpath, _, files in os.walk(cdir):
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    rel.append(Path(dirpath, f).relative_to(root).as_posix())
                    labels.append(ci)
    if not rel:
        raise FileNotFoundError(f"{root}: no images with extensions {', '.join(IMAGE_EXTENSIONS)}")
    order = sorted(range(len(rel)), key=lambda i: rel[i])   # canonical order, independent of os.walk
    return FileList(root, [rel[i] for i in order], [labels[i] for i in order], list(classes))


# ---------------------------------------------------------------------------- decoding
def load_rgb(path: str | os.PathLike, *, precise: bool = False) -> torch.Tensor:
    """Decode a file to uint8 RGB (3, H, W). JPEGs go through torch_impl.pp.jpeg.decode_jpeg (the
    big_vision decode); anything it refuses (CMYK, grayscale, PNG named .JPEG, ...) goes through PIL and
    ``convert("RGB")``. Raises ``OSError``/``ValueError`` naming the file when nothing can decode it."""
    data = Path(path).read_bytes()
    if data[:3] == b"\xff\xd8\xff":
        try:
            img = decode_jpeg(data, precise=precise, path=path)
            if img.ndim == 3 and img.shape[0] == 3 and img.dtype == torch.uint8:
                return img
        except (ValueError, ImportError):   # refused (CMYK, ...) or no simplejpeg: PIL below, which names the file
            pass
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        err = OSError(f"{path}: cannot decode image ({type(e).__name__}: {e})")
        err.reason = "not_an_image" if type(e).__name__ == "UnidentifiedImageError" else "corrupt"
        raise err from e
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------- datasets
class ImageFiles(Dataset):
    """Items of a FileList (optionally a subset of indices). ``__getitem__`` takes ``(index, sample_seed)``
    as yielded by the samplers below and returns ``{"image", "label", "bad"}``; ``bad`` counts the
    undecodable files skipped to produce this item.

    ``on_bad="next"`` (training): an undecodable file is replaced by the next readable one (the stream goes
    on; counted in ``bad``). ``on_bad="skip"`` (evaluation, which must neither duplicate nor drop silently):
    the item is a zero ``placeholder`` image with ``valid=False`` and ``bad=1``; the evaluation leaves it
    out and counts it as skipped."""

    def __init__(self, files: FileList, indices: Sequence[int] | None = None,
                 transform: Pipeline | None = None, *,
                 decode_precise: bool = False, max_skips: int = 50, on_bad: str = "next",
                 placeholder: tuple[int, ...] | None = None):
        if on_bad not in ("next", "skip") or (on_bad == "skip" and placeholder is None):
            raise ValueError("ImageFiles: on_bad is 'next', or 'skip' with a placeholder shape")
        self.files = files
        self.indices = np.arange(len(files)) if indices is None else np.asarray(indices)
        self.transform = transform
        self.decode_precise = decode_precise
        self.max_skips = max_skips
        self.on_bad, self.placeholder = on_bad, placeholder

    def __len__(self):
        return len(self.indices)

    def path(self, i: int) -> Path:
        return self.files.root / self.files.rel_paths[int(self.indices[i])]

    def label(self, i: int) -> int:
        return self.files.labels[int(self.indices[i])]

    def _item(self, i: int, seed: int, out: torch.Tensor | None = None) -> torch.Tensor:
        path = self.path(i)
        data = path.read_bytes()
        if self.transform is None:
            return load_rgb(path, precise=self.decode_precise)
        if data[:3] == b"\xff\xd8\xff":
            try:
                # out: this sample's row of the batch (__getitems__); the fast path writes into it
                return self.transform(data, seed, out=out) if out is not None else self.transform(data, seed)
            except ImageDecodeError:
                # big_vision's own verdict on this JPEG and this crop window (decode_and_crop_jpeg fails, e.g.
                # the window needs rows a truncated file lacks): skip it, never decode it some other way
                raise
            except (ValueError, OSError):
                pass    # a JPEG the JPEG paths do not decode (e.g. CMYK/YCCK): through PIL below
        return self.transform(load_rgb(path, precise=self.decode_precise), seed)

    def __getitems__(self, items: list) -> list[dict]:
        """A whole batch, as torch's DataLoader asks for it (then ``loader.collate_train``): the same items as
        ``[self[i] for i in items]``, but the fast path writes each image straight into its row of one batch
        tensor (``data.batching.fill_batch``), so no per-sample tensor and no ``torch.stack`` copy."""
        if self.on_bad != "next" or not getattr(self.transform, "writes_into", False):
            return [self[i] for i in items]
        dicts = []

        def produce(k, out):
            dicts.append(self._get(items[k], out))
            return dicts[-1]["image"]
        images = fill_batch(len(items), produce)
        rows = list(images) if isinstance(images, list) else [images[k] for k in range(len(items))]
        for d, img in zip(dicts, rows):
            d["image"] = img
        return dicts

    def __getitem__(self, item):
        return self._get(item)

    def _get(self, item, out: torch.Tensor | None = None) -> dict:
        i, seed = item if isinstance(item, tuple) else (item, int(item))
        if self.on_bad == "skip":
            try:
                return {"image": self._item(i, seed), "label": self.label(i), "bad": 0, "valid": True}
            except UNREADABLE_IMAGE as e:   # counted by the evaluation, never replaced by another file
                log.warning("unreadable image %s (%s: %s); not evaluated (counted as skipped)", self.path(i),
                            type(e).__name__, e)
                return {"image": torch.zeros(self.placeholder), "label": self.label(i), "bad": 1, "valid": False}
        bad = 0
        reasons = [0] * len(BAD_REASONS)
        for attempt in range(self.max_skips + 1):
            k = (i + attempt) % len(self)
            try:
                img = self._item(k, seed, out)
                break
            except UNREADABLE_IMAGE as e:   # never let one bad file end the run
                bad += 1
                reason = bad_reason(e)
                reasons[BAD_REASONS.index(reason)] += 1
                log.warning("skipping unreadable image %s (%s; %s: %s); using the next one instead", self.path(k),
                            reason, type(e).__name__, e)
        else:
            raise RuntimeError(f"{self.max_skips + 1} unreadable images in a row starting at {self.path(i)}: "
                               "is the data corrupt?")
        return _with_split_flag({"image": img, "label": self.label(k), "bad": bad,
                                 "bad_reasons": torch.tensor(reasons, dtype=torch.int64)}, self.transform, seed)


class SyntheticImages(Dataset):
    """Deterministic learnable images: class ``c`` is a fixed random low-frequency colour pattern, every
    item adds its own noise and brightness. Item ``i`` is a function of ``(seed, i)`` only."""

    def __init__(self, n: int, num_classes: int, size: int, *, seed: int = 0, offset: int = 0,
                 transform: Pipeline | None = None):
        self.n, self.num_classes, self.size, self.seed, self.offset = n, num_classes, size, seed, offset
        self.transform = transform
        g = np.random.default_rng([seed, 12345])
        coarse = g.uniform(0, 255, size=(num_classes, 3, 4, 4)).astype(np.float32)
        t = torch.nn.functional.interpolate(torch.from_numpy(coarse), size=(size, size), mode="bilinear",
                                            align_corners=False)
        self.templates = t.numpy()

    def __len__(self):
        return self.n

    def label(self, i: int) -> int:
        return (i + self.offset) % self.num_classes

    def raw(self, i: int) -> torch.Tensor:
        c = self.label(i)
        g = np.random.default_rng([self.seed, 777, i + self.offset])
        img = self.templates[c] * g.uniform(0.7, 1.1) + g.normal(0, 25, size=self.templates[c].shape)
        return torch.from_numpy(np.clip(np.rint(img), 0, 255).astype(np.uint8))

    def __getitem__(self, item):
        i, seed = item if isinstance(item, tuple) else (item, int(item))
        img = self.raw(i)
        item = {"image": img if self.transform is None else self.transform(img, seed), "label": self.label(i), "bad": 0}
        return _with_split_flag(item, self.transform, seed)


def _with_split_flag(item: dict, transform, seed: int) -> dict:
    # runtime.device_augment_fraction: mark the samples whose RandAugment the training loop still has to run.
    if getattr(transform, "splits_augment", False):
        item["augment_on_device"] = transform.on_device(seed)
    return item


# ---------------------------------------------------------------------------- sources
@dataclass
class Splits:
    """The datasets of one run: ``train`` (the training part), ``minival`` (held-out part of train, or
    None at 100%), ``val`` (or None). ``train_size`` feeds big_vision's epochs -> steps rounding."""
    train: Dataset
    minival: Dataset | None
    val: Dataset | None
    num_classes: int
    description: str

    @property
    def train_size(self) -> int:
        return len(self.train)


def synthetic_splits(cfg, *, n_train: int = 20_000, n_val: int = 500, seed: int = 0) -> Splits:
    pp = cfg.input.pp
    size = max(pp.eval_resize_small, pp.crop_size) + 8
    frac = cfg.train_fraction()
    n_hold = n_train - int(round(n_train * frac))
    # Labels cycle through the classes, so any contiguous block is stratified.
    train = SyntheticImages(n_train - n_hold, cfg.num_classes, size, seed=seed,
                            transform=train_transform_for(cfg))
    minival = SyntheticImages(n_hold, cfg.num_classes, size, seed=seed, offset=n_train - n_hold,
                              transform=eval_transform(pp)) if n_hold else None
    # val items use indices past the training range (never seen in training)
    val = SyntheticImages(n_val, cfg.num_classes, size, seed=seed, offset=10**7, transform=eval_transform(pp))
    return Splits(train, minival, val, cfg.num_classes,
                  f"synthetic: {len(train)} train / {n_hold} minival / {n_val} val images, "
                  f"{cfg.num_classes} classes, {size}x{size}")


def class_folders(root: Path) -> list[str]:
    """The sorted sub-folder names of ``root`` (hidden ones excepted): ImageFolder's classes."""
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def has_images(folder: Path) -> bool:
    """Whether ``folder`` (recursively) holds a file with an image extension; stops at the first one."""
    for _, _, names in os.walk(folder):
        if any(n.lower().endswith(IMAGE_EXTENSIONS) for n in names):
            return True
    return False


def folder_splits(cfg, root: str | os.PathLike) -> Splits:
    root = Path(root)
    tr = root / "train"
    if not tr.is_dir():
        raise FileNotFoundError(f"{root}: expected {tr} (ImageFolder layout: train/<class>/*.JPEG, "
                                "val/<class>/*.JPEG); for tfds use --data tfds:imagenet2012")
    classes = None
    done = root / "EXPORT_DONE.json"       # written by reference/tfds_export.py: the full, ordered label list
    if done.exists():
        classes = json.loads(done.read_text()).get("classes")
    # An empty class folder would silently count as a class with no training data: an error. A tfds export
    # declares its label list (EXPORT_DONE.json), so a class without images there (a partial export) is
    # only a warning.
    empty = [tr / c for c in (classes or class_folders(tr)) if not has_images(tr / c)]
    if empty:
        what = (f"{', '.join(map(str, empty[:5]))}{' ...' if len(empty) > 5 else ''}: {len(empty)} class "
                f"folder(s) with no images ({', '.join(IMAGE_EXTENSIONS)})")
        if classes is None:
            raise ValueError(f"{what}; every folder under train/ counts as a class: add its images or remove "
                             "the folder")
        log.warning("%s; %s declares these classes, so they count, with no training images", what, done)
    files = list_image_folder(tr, classes=classes)
    if len(files.classes) != cfg.num_classes:
        raise ValueError(f"{tr}: {len(files.classes)} class folders but num_classes={cfg.num_classes}; "
                         f"set --set num_classes={len(files.classes)} or fix the folder")
    frac = cfg.train_fraction()
    train_idx, hold_idx = stratified_split(files.rel_paths, files.labels, frac, seed=cfg.input.split_seed)
    pp = cfg.input.pp
    prec = pp.decode_precise
    train = ImageFiles(files, train_idx, train_transform_for(cfg), decode_precise=prec)
    skip = {"on_bad": "skip", "placeholder": (3, pp.crop_size, pp.crop_size), "decode_precise": prec}
    minival = ImageFiles(files, hold_idx, eval_transform(pp), **skip) if len(hold_idx) else None
    val = None
    vroot = root / "val"
    if vroot.is_dir():
        # val/ is labelled by train/'s class list: a class folder only in val/ could not be labelled
        extra = sorted(set(class_folders(vroot)) - set(files.classes))
        if extra:
            raise ValueError(f"{vroot}: class folder(s) {', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''} "
                             "are not in train/, so their images cannot be labelled; fix the folder names or "
                             "move those folders out of val/")
        missing = [vroot / c for c in files.classes if not has_images(vroot / c)]
        if missing:
            log.warning("%s%s: %d class(es) have no images in val/ (missing or empty folder); val accuracy covers "
                        "the other classes only", ", ".join(map(str, missing[:5])), " ..." if len(missing) > 5
                        else "", len(missing))
        vfiles = list_image_folder(vroot, classes=files.classes)
        val = ImageFiles(vfiles, None, eval_transform(pp), **skip)
    else:
        log.warning("%s: no val/ folder, so only minival (held out of train/) is evaluated; add "
                    "val/<class>/<image> to evaluate on val", root)
    return Splits(train, minival, val, len(files.classes),
                  f"{root}: {len(train)} train / {len(hold_idx)} minival (stratified, split_seed "
                  f"{cfg.input.split_seed}) / {len(val) if val else 0} val images, {len(files.classes)} classes")


def splits_from_arg(cfg, data: str, *, tfds_data_dir: str | None = None, export_dir: str | None = None) -> Splits:
    """``synthetic``, a folder with train/ (and val/), or ``tfds:NAME`` (exported to ImageFolder files by a
    separate TensorFlow process, once; see reference/tfds_export.py)."""
    if data == "synthetic":
        return synthetic_splits(cfg, seed=cfg.seed)
    if data.startswith("tfds:"):
        root = ensure_export(data[len("tfds:"):], export_dir=export_dir, data_dir=tfds_data_dir)
        return folder_splits(cfg, root)
    return folder_splits(cfg, data)


__all__ = ["FileList", "list_image_folder", "load_rgb", "ImageFiles", "SyntheticImages", "Splits",
           "synthetic_splits", "folder_splits", "splits_from_arg"]

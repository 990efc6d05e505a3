"""Training and evaluation data: ImageFolder trees, tfds exports, synthetic images.

* Layout: ``root/train/<class>/<file>`` and ``root/val/<class>/<file>`` (torchvision's ImageFolder layout;
  ``python -m reference.tfds_export`` writes tfds ``imagenet2012`` in this layout, in its own process, so
  the torch process never imports TensorFlow).
* Split: big_vision trains on ``train[:99%]`` and evaluates ``train[99%:]`` as minival. A listing sorted by
  class makes a naive 99% slice drop whole classes, so :func:`stratified_split` holds out the same fraction
  of EVERY class, choosing the files by a seeded hash of their relative path: the split does not depend on
  listing order, file system or machine, and is stable across runs.
* Order: big_vision trains by steps on an endlessly repeated, shuffled dataset. :class:`StepSampler` is an
  infinite stream: position ``p`` of the stream is element ``p % n`` of the permutation for epoch
  ``p // n``, seeded by ``(seed, epoch)``. Step ``s`` consumes positions ``[s*B, (s+1)*B)``, so resuming at
  step ``s`` is one integer, and the stream is the same for any number of processes / accumulation steps.
* Augmentation randomness: every sample reseeds the pipeline's torch.Generator from ``(seed, position)``,
  so the images do not depend on the number of DataLoader workers or on which worker decodes them.
* Bad files: grayscale, CMYK, palette and PNG-in-.JPEG files are converted to RGB; a file that cannot be
  decoded at all is skipped (the next file of the stream is used instead) with a logged warning, and the
  batch carries a counter so the loop can report how many were skipped.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

log = logging.getLogger("torch_impl.data")

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


def _hash_unit(key: str, seed: int) -> float:
    h = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def stratified_split(keys: Sequence[str], labels: Sequence[int], train_fraction: float, *, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, holdout) holding out ``1 - train_fraction`` of every class.

    The holdout size is ``N - round(N * train_fraction)`` in total (tfds' ``train[:99%]`` of ImageNet's
    1,281,167 images has 1,268,355, and so does ours), shared among classes in proportion to their size
    (largest remainders), with at least one image of every class on each side when a class has two or more
    (for tiny classes this takes precedence; the total is then restored from the other classes if possible).
    Inside a class the held-out files are those with the smallest ``sha256(seed:relative_path)``: stable
    across runs and machines, independent of the listing order. ``train_fraction=1`` holds out nothing.
    """
    labels = np.asarray(labels)
    n = len(keys)
    if len(labels) != n:
        raise ValueError(f"stratified_split: {n} keys but {len(labels)} labels")
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"stratified_split: train_fraction must be in (0, 1], got {train_fraction}")
    if train_fraction == 1.0:
        return np.arange(n), np.arange(0)
    n_hold = n - int(round(n * train_fraction))
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n_hold / n
    take = np.floor(quota).astype(int)
    rest = n_hold - take.sum()
    order = sorted(range(len(classes)), key=lambda i: (-(quota[i] - take[i]), classes[i]))
    for i in order[:rest]:
        take[i] += 1
    # every class with 2+ images keeps at least one on each side; then restore the total where possible
    lo, hi = np.where(counts >= 2, 1, 0), np.where(counts >= 2, counts - 1, 0)
    take = np.clip(take, lo, hi)
    while take.sum() > n_hold and (take > lo).any():
        i = int(np.argmax(np.where(take > lo, take - quota, -np.inf)))
        take[i] -= 1
    while take.sum() < n_hold and (take < hi).any():
        i = int(np.argmax(np.where(take < hi, quota - take, -np.inf)))
        take[i] += 1
    hold = []
    for c, k in zip(classes, take):
        idx = np.flatnonzero(labels == c)
        h = np.array([_hash_unit(keys[i], seed) for i in idx])
        hold.extend(idx[np.argsort(h, kind="stable")[:k]].tolist())
    mask = np.zeros(n, bool)
    mask[hold] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


# ---------------------------------------------------------------------------- decoding
def load_rgb(path: str | os.PathLike, *, precise: bool = False) -> torch.Tensor:
    """Decode a file to uint8 RGB (3, H, W). JPEGs go through torch_impl.preprocess.decode_jpeg (the
    big_vision decode); anything it refuses (CMYK, grayscale, PNG named .JPEG, ...) goes through PIL and
    ``convert("RGB")``. Raises ``OSError``/``ValueError`` naming the file when nothing can decode it."""
    data = Path(path).read_bytes()
    if data[:3] == b"\xff\xd8\xff":
        try:
            from torch_impl.preprocess import decode_jpeg
            img = decode_jpeg(data, precise=precise, path=path)
            if img.ndim == 3 and img.shape[0] == 3 and img.dtype == torch.uint8:
                return img
        except Exception:   # noqa: BLE001 - fall back to PIL below, which raises a clear error if needed
            pass
    import io

    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            rgb = np.asarray(im.convert("RGB"))
    except Exception as e:  # noqa: BLE001
        raise OSError(f"{path}: cannot decode image ({type(e).__name__}: {e})") from e
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------- datasets
class ImageFiles(Dataset):
    """Items of a FileList (optionally a subset of indices). ``__getitem__`` takes ``(index, sample_seed)``
    as yielded by the samplers below and returns ``{"image", "label", "bad"}``; ``bad`` counts the
    undecodable files skipped to produce this item."""

    def __init__(self, files: FileList, indices: Sequence[int] | None = None,
                 transform: Pipeline | None = None, *,
                 decode_precise: bool = False, max_skips: int = 50):
        self.files = files
        self.indices = np.arange(len(files)) if indices is None else np.asarray(indices)
        self.transform = transform
        self.decode_precise = decode_precise
        self.max_skips = max_skips

    def __len__(self):
        return len(self.indices)

    def path(self, i: int) -> Path:
        return self.files.root / self.files.rel_paths[int(self.indices[i])]

    def label(self, i: int) -> int:
        return self.files.labels[int(self.indices[i])]

    def _item(self, i: int, seed: int) -> torch.Tensor:
        path = self.path(i)
        data = path.read_bytes()
        if self.transform is None:
            return load_rgb(path, precise=self.decode_precise)
        if data[:3] == b"\xff\xd8\xff":
            try:
                return self.transform(data, seed)
            except Exception:  # noqa: BLE001 - CMYK, grayscale, truncated...: decode through PIL below
                pass
        return self.transform(load_rgb(path, precise=self.decode_precise), seed)

    def __getitem__(self, item):
        i, seed = item if isinstance(item, tuple) else (item, int(item))
        bad = 0
        for attempt in range(self.max_skips + 1):
            k = (i + attempt) % len(self)
            try:
                img = self._item(k, seed)
                break
            except Exception as e:  # noqa: BLE001 - never let one file end the run
                bad += 1
                log.warning("skipping unreadable image %s (%s: %s); using the next one instead", self.path(k),
                            type(e).__name__, e)
        else:
            raise RuntimeError(f"{self.max_skips + 1} unreadable images in a row starting at {self.path(i)}: "
                               "is the data corrupt?")
        return _with_split_flag({"image": img, "label": self.label(k), "bad": bad}, self.transform, seed)


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


# ---------------------------------------------------------------------------- samplers
def _mix(*xs: int) -> int:
    """A 63-bit seed from integers (stable across machines and Python versions, unlike hash())."""
    h = hashlib.blake2b(b",".join(str(int(x)).encode() for x in xs), digest_size=8).digest()
    return int.from_bytes(h, "big") >> 1


class StepSampler(Sampler):
    """Infinite stream of ``(index, sample_seed)`` for one process, starting at ``start_step``.

    Each global batch of ``global_batch`` stream positions is cut into ``world_size * accum_steps``
    micro-batches; process ``rank`` gets micro-batches ``rank*accum_steps ... rank*accum_steps+accum-1``
    of every step, in order. Epoch ``e`` is ``randperm(n)`` seeded by ``(seed, e)`` (reshuffled per epoch).
    """

    def __init__(self, n: int, global_batch: int, *, seed: int, rank: int = 0, world_size: int = 1,
                 accum_steps: int = 1, start_step: int = 0):
        if global_batch % (world_size * accum_steps):
            raise ValueError(f"batch {global_batch} is not divisible by world_size {world_size} x "
                             f"accumulation steps {accum_steps}")
        if n <= 0:
            raise ValueError("StepSampler: empty dataset")
        self.n, self.B, self.seed = n, global_batch, seed
        self.rank, self.world, self.accum, self.start_step = rank, world_size, accum_steps, start_step
        self.micro = global_batch // (world_size * accum_steps)
        self._epoch, self._perm = None, None

    def permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(_mix(self.seed, epoch))
            self._perm, self._epoch = torch.randperm(self.n, generator=g), epoch
        return self._perm

    def position(self, step: int, micro: int, j: int) -> int:
        return step * self.B + micro * self.micro + j

    def __iter__(self):
        step = self.start_step
        while True:
            for k in range(self.accum):
                m = self.rank * self.accum + k
                for j in range(self.micro):
                    p = self.position(step, m, j)
                    idx = int(self.permutation(p // self.n)[p % self.n])
                    yield idx, _mix(self.seed, 1, p)
            step += 1

    def __len__(self):  # pragma: no cover - infinite; DataLoader only needs it for len()
        raise TypeError("StepSampler is infinite")


class ShardSampler(Sampler):
    """Finite, ordered evaluation indices for one process: ``range(n)[rank::world_size]``."""

    def __init__(self, n: int, *, rank: int = 0, world_size: int = 1, seed: int = 0):
        self.ids = list(range(rank, n, world_size))
        self.seed = seed

    def __iter__(self):
        return iter((i, _mix(self.seed, 2, i)) for i in self.ids)

    def __len__(self):
        return len(self.ids)


PREFETCH_FACTOR = 4     # batches each DataLoader worker keeps ready


def make_loader(dataset: Dataset, sampler: Sampler, batch_size: int, *, num_workers: int = 0,
                pin_memory: bool = False, collate_fn: Callable | None = None) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory, drop_last=False, persistent_workers=False,
                      prefetch_factor=PREFETCH_FACTOR if num_workers else None, collate_fn=collate_fn)


def collate_train(items: list[dict]) -> dict:
    """default_collate, except for undecoded JPEGs (``runtime.device_decode``). Then ``image`` holds only
    the images decoded in the workers, at rows ``image_index`` of the batch, and ``deferred`` the others:
    ``index`` (k,) rows, ``blob`` (all k files in one uint8 tensor: one shared-memory segment instead of k),
    ``lengths`` (k,), ``box`` (k, 4), ``flip`` (k,), ``size``. :func:`assemble_batch` puts them together."""
    from torch.utils.data import default_collate
    later = [i for i, it in enumerate(items) if isinstance(it["image"], dict)]
    if not later:
        return default_collate(items)
    now = [i for i, it in enumerate(items) if not isinstance(it["image"], dict)]
    d = [items[i]["image"] for i in later]
    size = d[0]["size"]
    image = (torch.stack([items[i]["image"] for i in now]) if now
             else torch.zeros((0, 3, size, size), dtype=torch.uint8))
    blob = torch.from_numpy(np.frombuffer(b"".join(x["jpeg"] for x in d), dtype=np.uint8).copy())
    return {"image": image, "image_index": torch.tensor(now, dtype=torch.int64),
            "label": torch.tensor([it["label"] for it in items]), "bad": torch.tensor([it["bad"] for it in items]),
            "deferred": {"index": torch.tensor(later), "blob": blob,
                         "lengths": torch.tensor([len(x["jpeg"]) for x in d]),
                         "box": torch.tensor([x["box"] for x in d], dtype=torch.int64),
                         "flip": torch.tensor([x["flip"] for x in d]), "size": size}}


def deferred_jpegs(deferred: dict) -> list[torch.Tensor]:
    """The k files of a :func:`collate_train` batch as 1-D uint8 tensors (views of ``blob``)."""
    return list(deferred["blob"].split(deferred["lengths"].tolist()))


def assemble_batch(batch: dict, device) -> torch.Tensor:
    """The uint8 (N, 3, S, S) image batch on ``device``: rows decoded in the workers, plus (for
    ``runtime.device_decode`` batches) the deferred JPEGs decoded, cropped, resized and flipped on the
    device by :func:`torch_impl.batched_augment.decode_crop_resize`."""
    if "deferred" not in batch:
        return batch["image"].to(device, non_blocking=True)
    from torch_impl.batched_augment import decode_crop_resize
    dfr = batch["deferred"]
    n, size = len(batch["label"]), dfr["size"]
    x = torch.empty((n, 3, size, size), dtype=torch.uint8, device=device)
    if len(batch["image_index"]):
        x[batch["image_index"].to(device)] = batch["image"].to(device, non_blocking=True)
    x[dfr["index"].to(device)] = decode_crop_resize(deferred_jpegs(dfr), dfr["box"], dfr["flip"], size, device)
    return x


# ---------------------------------------------------------------------------- transforms
class Pipeline:
    """A preprocessing pipeline driven by ONE torch.Generator, reseeded for every sample:
    ``pipeline(x, seed)``. ``x`` is the encoded file (bytes) or a decoded uint8 (3, H, W) tensor.

    ``fast`` (optional) handles JPEG bytes (torch_impl.fast_pipeline.FastTrainPipeline: libjpeg-turbo fast
    DCT, crop/resize/flip in one gather); anything it refuses goes to ``slow``, the v2 Compose from
    torch_impl.preprocess, which also takes decoded tensors (synthetic images, PIL-decoded CMYK/PNG files).
    """

    def __init__(self, slow: Callable, fast: Callable | None, generator: torch.Generator, *, defer: bool = False,
                 device_share: float = 0.0, plain: Pipeline | None = None):
        self.slow, self.fast, self.generator, self.defer = slow, fast, generator, defer
        # runtime.device_augment_fraction: samples picked by on_device(seed) go through ``plain`` (the same
        # pipeline without RandAugment: the same crop and flip draws), and the loop augments them.
        self.device_share, self.plain = float(device_share), plain

    @property
    def splits_augment(self) -> bool:
        return self.plain is not None and 0.0 < self.device_share

    def on_device(self, seed: int) -> bool:
        """Whether this sample's RandAugment runs on the device (a fixed function of its seed)."""
        return self.splits_augment and _mix(seed, 7) * 2.0 ** -63 < self.device_share

    def __call__(self, x, seed: int) -> torch.Tensor | dict:
        if self.on_device(seed):
            return self.plain(x, seed)
        if self.defer and isinstance(x, (bytes, bytearray)):
            from torch_impl.fast_pipeline import device_decodable
            if device_decodable(bytes(x)):
                # runtime.device_decode: the same draws as the fast path, the decode left to the device
                self.generator.manual_seed(seed)
                box, flip = self.fast.plan(bytes(x))
                # plain bytes and ints: pickled inline to the main process (no shared-memory tensor per file)
                return {"jpeg": bytes(x), "box": tuple(int(v) for v in box), "flip": bool(flip),
                        "size": self.fast.size}
        if self.fast is not None and isinstance(x, (bytes, bytearray)):
            self.generator.manual_seed(seed)
            try:
                return self.fast(bytes(x))
            except Exception:  # noqa: BLE001 - e.g. progressive/CMYK JPEG: the general path below
                pass
        self.generator.manual_seed(seed)
        return self.slow(x)


def value_range_on_device(runtime) -> bool:
    """Whether the training loop (not the workers) runs value_range: ``runtime.device_value_range``, or by
    default when the run trains on CUDA; always with device_augment / device_decode."""
    if runtime.device_augment or runtime.device_decode:
        return True
    if runtime.device_value_range is not None:
        return bool(runtime.device_value_range)
    from torch_impl.config import uses_cuda
    return uses_cuda(runtime.device)


def train_transform(pp, *, device_augment: bool = False, device_decode: bool = False,
                    device_value_range: bool = False, device_augment_fraction: float = 0.0) -> Pipeline:
    """big_vision ``decode_jpeg_and_inception_crop(S)|flip_lr|randaug(N,M)|value_range(-1,1)``, composed from
    torch_impl.preprocess.train_pipeline (and the fast JPEG path). ``pp`` is a config.PPConfig.

    ``device_augment``: stop after flip_lr and return uint8 (3, S, S); the training loop then runs
    randaug (:func:`torch_impl.batched_augment.randaugment_on_device`) + value_range on the device.
    ``device_decode`` (implies device_augment): JPEGs the device can decode come back undecoded, as
    ``{"jpeg", "box", "flip", "size"}`` (see :func:`collate_train`).
    ``device_value_range``: stop before value_range only (RandAugment stays here) and return uint8; the
    loop runs value_range on the device (runtime.device_value_range).
    ``device_augment_fraction``: that share of the samples (by seed, :meth:`Pipeline.on_device`) skips
    RandAugment here too; the loop runs it on the device (implies device_value_range)."""
    device_augment = device_augment or device_decode
    split = 0.0 < device_augment_fraction and not device_augment
    uint8_out = device_augment or device_value_range or split
    g = torch.Generator()
    slow, fast = _train_stages(pp, g, randaug=not device_augment, uint8_out=uint8_out)
    if device_decode and fast is None:
        raise ValueError("runtime.device_decode needs the fast JPEG path (input.pp.fast_decode=true and "
                         "`pip install simplejpeg`)")
    if fast is not None:
        from torch_impl import numba_kernels
        numba_kernels.warm_up()   # before the DataLoader forks its workers
    if not split:
        return Pipeline(slow, fast, g, defer=device_decode)
    return Pipeline(slow, fast, g, device_share=device_augment_fraction,
                    plain=Pipeline(*_train_stages(pp, g, randaug=False, uint8_out=True), g))


def train_transform_for(cfg) -> Pipeline:
    """:func:`train_transform` for a run: ``cfg.input.pp`` placed as ``cfg.runtime`` says (workers / device)."""
    rt = cfg.runtime
    return train_transform(cfg.input.pp, device_augment=rt.device_augment, device_decode=rt.device_decode,
                           device_value_range=value_range_on_device(rt),
                           device_augment_fraction=rt.device_augment_fraction)


def _train_stages(pp, g: torch.Generator, *, randaug: bool, uint8_out: bool):
    """(slow, fast) halves of the train pipeline on generator ``g``: the v2 Compose and the fast JPEG path."""
    from torch_impl.augment import RandAugment17
    from torch_impl.preprocess import train_pipeline

    use_ra = pp.randaug_magnitude > 0 and pp.randaug_num_layers > 0 and randaug
    ra = RandAugment17(pp.randaug_num_layers, pp.randaug_magnitude, generator=g) if use_ra else None
    slow = train_pipeline(pp.crop_size, randaug=ra, area_range=(pp.inception_area_min, 1.0),
                          precise=pp.decode_precise, generator=g)
    drop = ({"FlipLR"} if not pp.flip_lr else set()) | ({"ValueRange"} if uint8_out else set())
    if drop:
        slow = type(slow)([t for t in slow.transforms if type(t).__name__ not in drop])
    fast = None
    if pp.fast_decode:
        try:
            from torch_impl.fast_pipeline import FastTrainPipeline
            import simplejpeg  # noqa: F401  - the fast path's decoder
            fast = FastTrainPipeline(pp.crop_size, randaug=(pp.randaug_num_layers, pp.randaug_magnitude) if use_ra
                                     else None, flip=pp.flip_lr, area_range=(pp.inception_area_min, 1.0),
                                     fast_dct=not pp.decode_precise, generator=g,
                                     output="uint8" if uint8_out else "float")
        except ImportError:
            fast = None
    return slow, fast


def eval_transform(pp) -> Pipeline:
    """big_vision ``decode|resize_small(R)|central_crop(S)|value_range(-1,1)`` (torch_impl.preprocess.eval_pipeline)."""
    from torch_impl.preprocess import eval_pipeline
    return Pipeline(eval_pipeline(pp.crop_size, pp.eval_resize_small, precise=pp.decode_precise), None,
                    torch.Generator())


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


def folder_splits(cfg, root: str | os.PathLike) -> Splits:
    root = Path(root)
    tr = root / "train"
    if not tr.is_dir():
        raise FileNotFoundError(f"{root}: expected {tr} (ImageFolder layout: train/<class>/*.JPEG, "
                                "val/<class>/*.JPEG); for tfds use --data tfds:imagenet2012")
    classes = None
    done = root / "EXPORT_DONE.json"       # written by reference/tfds_export.py: the full, ordered label list
    if done.exists():
        import json
        classes = json.loads(done.read_text()).get("classes")
    files = list_image_folder(tr, classes=classes)
    if len(files.classes) != cfg.num_classes:
        raise ValueError(f"{tr}: {len(files.classes)} class folders but num_classes={cfg.num_classes}; "
                         f"set --set num_classes={len(files.classes)} or fix the folder")
    frac = cfg.train_fraction()
    train_idx, hold_idx = stratified_split(files.rel_paths, files.labels, frac, seed=cfg.input.split_seed)
    pp = cfg.input.pp
    prec = pp.decode_precise
    train = ImageFiles(files, train_idx, train_transform_for(cfg), decode_precise=prec)
    minival = ImageFiles(files, hold_idx, eval_transform(pp), decode_precise=prec) if len(hold_idx) else None
    val = None
    if (root / "val").is_dir():
        vfiles = list_image_folder(root / "val", classes=files.classes)
        val = ImageFiles(vfiles, None, eval_transform(pp), decode_precise=prec)
    return Splits(train, minival, val, len(files.classes),
                  f"{root}: {len(train)} train / {len(hold_idx)} minival (stratified, split_seed "
                  f"{cfg.input.split_seed}) / {len(val) if val else 0} val images, {len(files.classes)} classes")


def splits_from_arg(cfg, data: str, *, tfds_data_dir: str | None = None, export_dir: str | None = None) -> Splits:
    """``synthetic``, a folder with train/ (and val/), or ``tfds:NAME`` (exported to ImageFolder files by a
    separate TensorFlow process, once; see reference/tfds_export.py)."""
    if data == "synthetic":
        return synthetic_splits(cfg, seed=cfg.seed)
    if data.startswith("tfds:"):
        from torch_impl.tfds_files import ensure_export
        root = ensure_export(data[len("tfds:"):], export_dir=export_dir, data_dir=tfds_data_dir)
        return folder_splits(cfg, root)
    return folder_splits(cfg, data)


def micro_batches(total: int, world_size: int, accum_steps: int) -> int:
    if total % (world_size * accum_steps):
        raise ValueError(f"global batch {total} is not divisible by world_size {world_size} x accumulation "
                         f"{accum_steps}")
    return total // (world_size * accum_steps)


__all__ = ["FileList", "list_image_folder", "stratified_split", "load_rgb", "ImageFiles", "SyntheticImages",
           "StepSampler", "ShardSampler", "make_loader", "collate_train", "deferred_jpegs", "assemble_batch", "Pipeline", "train_transform", "train_transform_for", "eval_transform", "Splits",
           "synthetic_splits", "folder_splits", "splits_from_arg"]

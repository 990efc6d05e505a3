"""DataLoader construction and batch assembly (the ``runtime.device_decode`` batches carry undecoded JPEGs that
the main process decodes on the device)."""
from __future__ import annotations

from collections.abc import Callable
from multiprocessing.reduction import ForkingPickler

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from torch_impl.data.batching import PREFETCH_FACTOR, batch_of_rows, slot_of
from torch_impl.pp.backends.batched import decode_crop_resize

__all__ = ["PREFETCH_FACTOR", "make_loader", "ignore_stop_signals", "collate_train", "deferred_jpegs",
           "assemble_batch"]


# The training transforms hold a torch.Generator (every pp stage draws from one, reseeded per sample). A
# DataLoader started with the spawn or forkserver method (Python 3.14's default on Linux, macOS's default)
# pickles the dataset for each worker with torch's ForkingPickler, which sends the generator's state tensor
# through shared memory, and the worker then fails to rebuild it ("unable to resize file ... Invalid argument",
# torch 2.14; the worker exits before its first batch). So generators travel as (device, state bytes) instead:
# the same state, the same object identity within one pickle (the pickler's memo), nothing in shared memory.
def _rebuild_generator(device: str, state: bytes) -> torch.Generator:
    g = torch.Generator(device=device)
    g.set_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))
    return g


def _reduce_generator(g: torch.Generator):
    return _rebuild_generator, (str(g.device), g.get_state().numpy().tobytes())


ForkingPickler.register(torch.Generator, _reduce_generator)


def make_loader(dataset: Dataset, sampler: Sampler, batch_size: int, *, num_workers: int = 0,
                pin_memory: bool = False, collate_fn: Callable | None = None,
                multiprocessing_context: str | None = None) -> DataLoader:
    """The training/evaluation DataLoader. ``multiprocessing_context``: how workers start ("fork", "spawn",
    "forkserver"; default: the platform's)."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=pin_memory, drop_last=False, persistent_workers=False,
                      prefetch_factor=PREFETCH_FACTOR if num_workers else None,
                      collate_fn=collate_fn if collate_fn is not None else collate_train,
                      worker_init_fn=ignore_stop_signals if num_workers else None,
                      multiprocessing_context=multiprocessing_context if num_workers else None)


def ignore_stop_signals(worker_id: int | None = None) -> None:
    """DataLoader workers ignore SIGINT/SIGTERM: Ctrl-C reaches the whole process group (and a scheduler may
    signal every process of a job), and a worker that died would end the run before the main process writes
    its checkpoint (torch_impl.train.signals). The main process shuts the workers down when it is done."""
    import signal
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)


def collate_train(items: list[dict]) -> dict:
    """default_collate, except for images already written into one batch tensor (data.batching; used as it is,
    with ``slot``, its pool segment's token, when a worker wrote it)
    and for undecoded JPEGs (``runtime.device_decode``). Then ``image`` holds only
    the images decoded in the workers, at rows ``image_index`` of the batch, and ``deferred`` the others:
    ``index`` (k,) rows, ``blob`` (all k files in one uint8 tensor: one shared-memory segment instead of k),
    ``lengths`` (k,), ``box`` (k, 4), ``flip`` (k,), ``size``. :func:`assemble_batch` puts them together."""
    later = [i for i, it in enumerate(items) if isinstance(it["image"], dict)]
    if not later:
        batch = batch_of_rows([it["image"] for it in items])
        if batch is None:
            return default_collate(items)
        # the images were written into one batch tensor (data.batching: ImageFiles.__getitems__): use it as
        # is, collate the rest as default_collate does
        out = default_collate([{k: v for k, v in it.items() if k != "image"} for it in items])
        # in a worker, the batch lies in one of its pool's reused segments: its token travels with it, and the
        # main process gives it back (data.batching.release) when done reading it
        slot = slot_of(batch)
        return {"image": batch, **out, **({"slot": slot} if slot is not None else {})}
    now = [i for i, it in enumerate(items) if not isinstance(it["image"], dict)]
    d = [items[i]["image"] for i in later]
    size = d[0]["size"]
    image = (torch.stack([items[i]["image"] for i in now]) if now
             else torch.zeros((0, 3, size, size), dtype=torch.uint8))
    blob = torch.from_numpy(np.frombuffer(b"".join(x["jpeg"] for x in d), dtype=np.uint8).copy())
    extra = ({"bad_reasons": torch.stack([it["bad_reasons"] for it in items])}
             if all("bad_reasons" in it for it in items) else {})
    return {"image": image, "image_index": torch.tensor(now, dtype=torch.int64), **extra,
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
    device by :func:`torch_impl.pp.backends.batched.decode_crop_resize`."""
    if "deferred" not in batch:
        return batch["image"].to(device, non_blocking=True)
    dfr = batch["deferred"]
    n, size = len(batch["label"]), dfr["size"]
    x = torch.empty((n, 3, size, size), dtype=torch.uint8, device=device)
    if len(batch["image_index"]):
        x[batch["image_index"].to(device)] = batch["image"].to(device, non_blocking=True)
    x[dfr["index"].to(device)] = decode_crop_resize(deferred_jpegs(dfr), dfr["box"], dfr["flip"], size, device)
    return x


__all__ = ["PREFETCH_FACTOR", "make_loader", "collate_train", "deferred_jpegs", "assemble_batch"]

"""Reused shared-memory batches (data.batching.BatchPool): a DataLoader worker writes a batch only into a
segment the main process has given back, so reuse saves the fresh segment per batch (its page faults and
zeroed pages) and never overwrites a batch still in use.

The checks: the pool's own rules (reuse after release only, a cap, fresh tensors past it); in real DataLoader
workers over real JPEGs, batches equal the main process's bit for bit whether the consumer gives them back
(reuse: few segments) or holds every one (no reuse: each held batch keeps its pixels to the end); and a pool
that ignores the in-use flag (negative control) is caught by that held-batches check.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from parity import photos
from torch_impl.config import PPConfig
from torch_impl.data import ImageFiles, list_image_folder, train_transform
from torch_impl.data import batching
from torch_impl.data.batching import BatchPool, fill_batch, release
from torch_impl.data.loader import PREFETCH_FACTOR, collate_train, make_loader
from torch_impl.pp import tf_jpeg

N_BATCHES = 24
BATCH = 4


def test_pool_reuses_a_segment_only_after_release():
    pool = BatchPool(3, shared=True)
    like = torch.zeros(3, 8, 8)
    a = pool.new_batch(4, like)
    assert a.shape == (4, 3, 8, 8) and a.is_contiguous() and a.untyped_storage().is_shared()
    assert a.data_ptr() % 64 == 0                     # the C resize's AVX2 stores
    b = pool.new_batch(4, like)
    assert pool.allocated == 2 and a.data_ptr() != b.data_ptr()     # a not given back: a new segment
    pool.token(a).release()
    c = pool.new_batch(4, like)
    assert pool.allocated == 2 and c.data_ptr() == a.data_ptr()     # given back: reused
    d = pool.new_batch(4, like)                       # the third and last segment
    e = pool.new_batch(4, like)                       # cap reached: a fresh tensor outside the pool
    assert pool.allocated == 3 and pool.token(e) is None and pool.token(d) is not None
    assert len({x.data_ptr() for x in (b, c, d, e)}) == 4
    u = pool.new_batch(2, torch.zeros(3, 8, 8, dtype=torch.uint8))  # another size: never a float segment
    assert u.dtype == torch.uint8 and pool.token(u) is None


def test_fill_batch_gives_the_segment_back_when_it_gives_up():
    pool = BatchPool(1, shared=False)
    like = torch.zeros(2, 2)

    def raising(k, out):
        if k == 1:
            raise OSError("unreadable")
        return like
    with pytest.raises(OSError):
        fill_batch(3, raising, alloc=pool.new_batch, abandon=pool.give_back)
    x = pool.new_batch(3, like)
    assert pool.allocated == 1 and pool.token(x) is not None       # the segment came back


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    (root / "a").mkdir()
    img = photos.photo("chelsea", (96, 128))
    for i in range(6):
        buf = io.BytesIO()
        Image.fromarray(np.roll(img, 11 * i, axis=1)).save(buf, "JPEG", quality=90)
        (root / "a" / f"{i}.JPEG").write_bytes(buf.getvalue())
    return root


def _dataset(root):
    pp = PPConfig(crop_size=32, randaug_num_layers=0, randaug_magnitude=0, fast_decode=True)
    ds = ImageFiles(list_image_folder(root), transform=train_transform(pp))
    assert ds.transform.writes_into
    return ds


class _Fixed(torch.utils.data.Sampler):
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


def _items(ds):
    return [(i % len(ds), 1000 + i) for i in range(N_BATCHES * BATCH)]


def _reference(ds):
    return [b["image"].clone() for b in make_loader(ds, _Fixed(_items(ds)), BATCH, num_workers=0)]


def _segment_of(batch, strategy: str):
    """Which worker segment a batch came in: its shared memory's inode (file_descriptor strategy) or its
    shared-memory file's name (file_system), from the main process's mapping."""
    import os
    storage = batch["image"].untyped_storage()
    if strategy == "file_system":
        return storage._share_filename_cpu_()[1]
    fd, _ = storage._share_fd_cpu_()
    return os.fstat(fd).st_ino


@pytest.fixture(params=["file_descriptor", "file_system"])
def sharing_strategy(request):
    """torch's two ways of sharing CPU tensors between processes (users switch to file_system when they run
    out of file descriptors); the pool must work with both."""
    import torch.multiprocessing as mp
    if request.param not in mp.get_all_sharing_strategies():
        pytest.skip(f"sharing strategy {request.param} not available here")
    prev = mp.get_sharing_strategy()
    mp.set_sharing_strategy(request.param)
    yield request.param
    mp.set_sharing_strategy(prev)


@pytest.mark.skipif(not tf_jpeg.available(), reason="needs the exact crop decoder")
def test_worker_batches_reuse_given_back_segments_and_never_held_ones(jpeg_folder, sharing_strategy):
    ds = _dataset(jpeg_folder)
    ref = _reference(ds)
    # given back after use, as the training loop does: equal batches, a handful of segments
    seen = []
    for k, batch in enumerate(make_loader(ds, _Fixed(_items(ds)), BATCH, num_workers=1)):
        assert "slot" in batch
        assert torch.equal(batch["image"], ref[k]), k
        seen.append(_segment_of(batch, sharing_strategy))
        release(batch)
    assert len(seen) == N_BATCHES
    assert len(set(seen)) <= PREFETCH_FACTOR + 3 < N_BATCHES
    # held (never given back): no batch is ever written again
    held = list(make_loader(ds, _Fixed(_items(ds)), BATCH, num_workers=1))
    assert sum("slot" in b for b in held) == batching.WORKER_POOL_SLOTS    # then fresh batches, as before
    for k, batch in enumerate(held):
        assert torch.equal(batch["image"], ref[k]), k


@pytest.mark.skipif(not tf_jpeg.available(), reason="needs the exact crop decoder")
def test_a_pool_that_ignores_the_in_use_flag_is_caught(jpeg_folder, monkeypatch):
    """Negative control: reusing segments regardless of the flag overwrites held batches, and the held-batches
    check above sees it."""
    ds = _dataset(jpeg_folder)
    ref = _reference(ds)
    real = BatchPool._segment

    def reckless(self, nbytes):
        if self._slots:
            return self._slots[0]
        return real(self, nbytes)
    monkeypatch.setattr(BatchPool, "_segment", reckless)
    # the training loader's settings, with the fork start method named (whatever the default), so the worker
    # inherits the patch
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, sampler=_Fixed(_items(ds)), num_workers=1,
                                         prefetch_factor=PREFETCH_FACTOR, collate_fn=collate_train,
                                         multiprocessing_context="fork")
    held = list(loader)
    assert len(held) == N_BATCHES and all("slot" in b for b in held)
    assert not all(torch.equal(b["image"], r) for b, r in zip(held, ref))


def test_the_token_survives_pin_memory_unchanged():
    """torch's pin thread copies the batch's tensors and leaves other objects as they are: the token still
    names the worker's segment after pinning (checked without CUDA: pin_memory only touches tensors)."""
    from torch.utils.data._utils.pin_memory import pin_memory
    pool = BatchPool(1, shared=True)
    batch = pool.new_batch(2, torch.zeros(3, 4, 4))
    token = pool.token(batch)
    assert pin_memory({"slot": token})["slot"] is token
    release({"slot": token})
    assert pool.token(pool.new_batch(2, torch.zeros(3, 4, 4))) is not None and pool.allocated == 1


@pytest.mark.skipif(not tf_jpeg.available(), reason="needs the exact crop decoder")
def test_the_pool_can_be_switched_off(jpeg_folder, monkeypatch):
    """VIT_PARITY_BATCH_POOL=0 (the opt-out, and bench e2e's baseline): workers send every batch in a fresh
    shared segment, as default_collate does; the same batches."""
    ds = _dataset(jpeg_folder)
    ref = _reference(ds)
    monkeypatch.setenv(batching.ENV_BATCH_POOL, "0")
    batches = list(make_loader(ds, _Fixed(_items(ds)), BATCH, num_workers=1))
    assert len(batches) == N_BATCHES and not any("slot" in b for b in batches)
    assert all(b["image"].untyped_storage().is_shared() for b in batches)
    for k, batch in enumerate(batches):
        assert torch.equal(batch["image"], ref[k]), k


def test_generators_cross_process_boundaries_by_state():
    """The transforms' torch.Generator travels to spawn/forkserver workers as (device, state bytes)
    (data.loader registers it with the ForkingPickler; torch's own reduction fails to rebuild in the worker):
    the same state, and one generator shared by several stages stays one object."""
    from multiprocessing.reduction import ForkingPickler
    import pickle
    g = torch.Generator().manual_seed(1234)
    torch.rand(7, generator=g)
    a, b = pickle.loads(ForkingPickler.dumps([g, g]))
    assert a is b and torch.equal(a.get_state(), g.get_state())
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=g))


@pytest.mark.skipif(not tf_jpeg.available(), reason="needs the exact crop decoder")
@pytest.mark.parametrize("start", ["spawn", "forkserver"])
def test_workers_started_without_fork_give_the_same_batches(jpeg_folder, start):
    """Workers started by spawn or forkserver (Python 3.14's default on Linux) rebuild the dataset from a
    pickle: the same batches as in the main process, in pooled segments given back as the loop does."""
    import multiprocessing
    if start not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {start} not available here")
    ds = _dataset(jpeg_folder)
    ref = _reference(ds)
    n = 0
    for k, batch in enumerate(make_loader(ds, _Fixed(_items(ds)), BATCH, num_workers=1,
                                          multiprocessing_context=start)):
        assert "slot" in batch and torch.equal(batch["image"], ref[k]), k
        release(batch)
        n += 1
    assert n == N_BATCHES


@pytest.mark.skipif(not tf_jpeg.available(), reason="needs the exact crop decoder")
def test_without_the_generator_reduction_spawned_workers_fail(jpeg_folder, monkeypatch):
    """Negative control for the two tests above: with torch's own reduction of torch.Generator the spawned
    worker cannot rebuild the dataset and dies before its first batch (torch 2.14; a torch that rebuilds it
    itself makes the reduction unneeded: then this reports a skip, not a pass)."""
    from multiprocessing.reduction import ForkingPickler
    monkeypatch.delitem(ForkingPickler._extra_reducers, torch.Generator)
    ds = _dataset(jpeg_folder)
    try:
        list(make_loader(ds, _Fixed(_items(ds)), BATCH, num_workers=1, multiprocessing_context="spawn"))
    except RuntimeError as e:
        assert "exited unexpectedly" in str(e)
    else:
        pytest.skip(f"torch {torch.__version__} sends generators to spawned workers itself")

"""Shared pytest configuration: markers that skip themselves, and the fixture store."""
from __future__ import annotations

import os

import pytest


def _cuda_available() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except Exception:  # pragma: no cover
        return False


def pytest_collection_modifyitems(config, items):
    have_bv = bool(os.environ.get("BIG_VISION_DIR"))
    have_cuda = _cuda_available()
    skip_live = pytest.mark.skip(reason="live: set BIG_VISION_DIR to a big_vision checkout to run it")
    skip_gpu = pytest.mark.skip(reason="gpu: no CUDA device on this machine")
    run_full = os.environ.get("PARITY_DYNAMICS_FULL") == "1"
    skip_full = pytest.mark.skip(reason="dynamics_full: hours on a CPU; set PARITY_DYNAMICS_FULL=1 (or run "
                                        "`parity dynamics check`)")
    for item in items:
        if "dynamics_full" in item.keywords and not run_full:
            item.add_marker(skip_full)
        if "live" in item.keywords and not have_bv:
            item.add_marker(skip_live)
        if "gpu" in item.keywords and not have_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def store():
    from parity.store import FixtureStore
    return FixtureStore()


@pytest.fixture(scope="session")
def big_vision_env():
    """Environment for a live reference subprocess (the test is skipped without BIG_VISION_DIR)."""
    env = dict(os.environ)
    if not env.get("BIG_VISION_DIR"):
        pytest.skip("live: set BIG_VISION_DIR")
    return env

"""Live parity: regenerate each family with big_vision (BIG_VISION_DIR) and check against it."""
from __future__ import annotations

import pytest

from parity import families
from parity.generate import generate_family
from parity.runner import adopt_declarations, collect, run_checks
from parity.store import FixtureStore


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize("family", families.names())
def test_live_family(family, big_vision_env, tmp_path):
    store = FixtureStore(tmp_path)
    generate_family(family, store, environ=big_vision_env)
    adopt_declarations(store, FixtureStore(), [family])  # must build everything the recorded store declares
    assert store.verify() == []
    results = run_checks(collect(store, [family]), progress=False)
    assert results, f"family {family} produced no checks"
    bad = [r.describe() for r in results if not r.ok]
    assert not bad, "\n".join(bad)

"""Every parity check of every family, from the recorded fixtures, as one pytest test each.

Positive checks must pass; negative controls (known-wrong implementations) must be rejected, which
proves each check can fail.
"""
from __future__ import annotations

import pytest

from parity.runner import collect
from parity.store import FixtureStore

_CHECKS = collect(FixtureStore())


def _params(negative: bool):
    return [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else [])
            for c in _CHECKS if c.negative == negative]


@pytest.mark.parametrize("check", _params(False))
def test_parity(check):
    result = check.run()
    assert result.ok, result.describe()


@pytest.mark.parametrize("check", _params(True))
def test_negative_control_is_rejected(check):
    result = check.run()
    assert result.ok, result.describe()

"""Every parity check of every family, from the recorded fixtures, as one pytest test each.

Positive checks must pass; negative controls (known-wrong implementations) must be rejected, which
proves each check can fail. Declared checks that could not be built (a damaged or missing fixture, a
skipped case) are collected as failing rows by parity.runner.collect, so they fail here too. An empty
parity set is a failure, never an empty (skipped) parametrization.
"""
from __future__ import annotations

import pytest

from parity import families
from parity.runner import collect
from parity.store import FixtureError, FixtureStore

try:
    _CHECKS = collect(FixtureStore())
    _ERROR = None
except FixtureError as e:  # no readable manifest: reported by test_the_parity_set_is_not_empty
    _CHECKS, _ERROR = [], str(e)


def _params(kind: str):
    chosen = [c for c in _CHECKS if ("control" if c.negative else "internal" if c.internal else "parity") == kind]
    # An empty list would make pytest skip the test; a None parameter fails it instead.
    params = [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in chosen]
    return params or ([pytest.param(None, id="EMPTY")] if kind != "internal" else [])


def _run(check):
    assert check is not None, f"no checks were collected from {FixtureStore().root}: {_ERROR or 'empty store'}"
    result = check.run()
    assert result.ok, result.describe()


def test_the_parity_set_is_not_empty():
    assert _ERROR is None, _ERROR
    fams = {c.family for c in _CHECKS if not c.negative}
    assert fams == set(families.names()), f"families without a positive check: {set(families.names()) - fams}"


@pytest.mark.parametrize("check", _params("parity"))
def test_parity(check):
    _run(check)


@pytest.mark.parametrize("check", _params("control"))
def test_negative_control_is_rejected(check):
    _run(check)


@pytest.mark.parametrize("check", _params("internal"))
def test_internal_consistency(check):
    _run(check)

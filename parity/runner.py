"""Collect checks from the families and run them."""
from __future__ import annotations

import inspect
from collections.abc import Iterable

from parity import families
from parity.checks import Check, CheckResult
from parity.store import FixtureError, FixtureStore


def _broken(family: str, error: Exception) -> Check:
    msg = str(error)

    def compute():
        return float("nan"), msg
    return Check(family, "fixtures", "fixture store readable", 0.0, compute)


def device_families() -> list[str]:
    """Families whose ``checks(store, device=...)`` can run our side on another device (CUDA)."""
    return [n for n in families.names() if "device" in inspect.signature(families.get(n).checks).parameters]


def collect(store: FixtureStore, names: Iterable[str] | None = None, *, device: str = "cpu") -> list[Check]:
    """Every check of the named families (default: all). A family whose fixtures cannot be read yields
    one failing check carrying the store's error message instead of crashing the run. ``device`` != "cpu"
    runs the families that support it (:func:`device_families`) there; the others run as usual."""
    out = []
    on_device = set(device_families()) if device != "cpu" else set()
    for name in (names or families.names()):
        mod = families.get(name)
        try:
            out.extend(mod.checks(store, device=device) if name in on_device else mod.checks(store))
        except FixtureError as e:
            out.append(_broken(name, e))
    return out


def run_checks(checks: list[Check], *, progress: bool = True) -> list[CheckResult]:
    from tqdm import tqdm
    results = []
    for c in tqdm(checks, desc="parity", unit="check", disable=not progress, leave=False):
        try:
            results.append(c.run())
        except FixtureError as e:
            results.append(CheckResult(c.family, c.case, c.metric, float("nan"), c.bar, False, c.negative,
                                       c.higher_is_better, str(e)))
    return results

"""A check = inputs, torch result, reference result, a metric, a bar, a verdict.

Families build :class:`Check` objects lazily (the ``compute`` callable does the work), so listing every
check is cheap and pytest can parametrize over them. A *negative control* is a check run with a known-wrong
implementation: it is expected to FAIL, and the harness reports it as ``REJECTED`` (good) or
``ACCEPTED`` (the check cannot tell right from wrong: a harness bug).

An *internal-consistency* check (``internal=True``) compares two of our own code paths (e.g. the batched
kernel against the single-image one that is itself checked against big_vision): it must pass, but it is
reported and counted apart, never as parity with big_vision.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class CheckResult:
    family: str
    case: str
    metric: str
    value: float
    bar: float
    passed: bool
    negative: bool = False
    higher_is_better: bool = False
    detail: str = ""
    internal: bool = False

    @property
    def kind(self) -> str:
        """"parity" (ours vs big_vision), "control" (negative control) or "internal" (ours vs ours)."""
        return "control" if self.negative else ("internal" if self.internal else "parity")

    @property
    def ok(self) -> bool:
        """The harness verdict: a positive check passes, a negative control is rejected. A check that
        could not be computed (NaN: missing fixture, shape mismatch) is never ok."""
        if math.isnan(self.value):
            return False
        return self.passed != self.negative

    @property
    def verdict(self) -> str:
        if math.isnan(self.value):
            return "ERROR"
        if self.negative:
            return "REJECTED" if not self.passed else "ACCEPTED!"
        return "PASS" if self.passed else "FAIL"

    def describe(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        kind = {"control": "negative control ", "internal": "internal consistency ", "parity": ""}[self.kind]
        text = f"{kind}{self.family}/{self.case}: {self.metric} = {self.value:.6g} (bar {op} {self.bar:g}) -> {self.verdict}"
        return text + (f"\n  {self.detail}" if self.detail else "")

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["verdict"], d["ok"], d["kind"] = self.verdict, self.ok, self.kind
        d["value"] = None if not math.isfinite(self.value) else self.value
        return d


@dataclass(frozen=True)
class Check:
    family: str
    case: str
    metric: str
    bar: float
    compute: Callable[[], float | tuple[float, str]] = field(repr=False, compare=False)
    higher_is_better: bool = False
    negative: bool = False
    slow: bool = False
    internal: bool = False

    @property
    def id(self) -> str:
        return f"{self.family}/{self.case}"

    def run(self) -> CheckResult:
        try:
            out = self.compute()
        except Exception as e:  # noqa: BLE001 - a check that cannot run is a failing row, not a crash
            from parity.store import FixtureError
            msg = str(e) if isinstance(e, FixtureError) else f"raised {type(e).__name__}: {e}"
            return CheckResult(self.family, self.case, self.metric, math.nan, self.bar, False, self.negative,
                               self.higher_is_better, msg, self.internal)
        value, detail = out if isinstance(out, tuple) else (out, "")
        value = float(value)
        if math.isnan(value):
            passed = False
        else:
            passed = value >= self.bar if self.higher_is_better else value <= self.bar
        return CheckResult(self.family, self.case, self.metric, value, self.bar, passed, self.negative,
                           self.higher_is_better, detail, self.internal)


# ---- metrics shared by the families -------------------------------------------------------------
def device_tag(device: str) -> str:
    """Suffix of the case names of checks run on another device than the CPU (``parity check --device``):
    "" on the CPU, "@cuda" on CUDA, so a report never mixes up where a row was computed."""
    return "" if device == "cpu" else f"@{device}"


def max_abs_diff(a, b) -> tuple[float, str]:
    """Largest absolute difference (as int for integer images), with where it happens."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return math.inf, f"shape {a.shape} != reference {b.shape}"
    if a.size == 0:
        return 0.0, ""
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    i = np.unravel_index(int(np.argmax(d)), d.shape)
    n_off = int((d > 0).sum())
    return float(d[i]), f"max at index {tuple(int(x) for x in i)}: ours {a[i]} vs reference {b[i]}; {n_off} of {d.size} values differ"


def max_rel_err(a, b, *, floor: float = 0.0) -> tuple[float, str]:
    """Scale-free error: max |a - b| divided by max |b| (or ``floor`` if larger)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return math.inf, f"shape {a.shape} != reference {b.shape}"
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, floor)
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    return (err / scale if scale > 0 else err), f"max abs err {err:.3g}, reference scale {scale:.3g}"

"""Collect checks from the families and run them, against what each family declares it must produce.

Nothing passes vacuously: the manifest declares, per family, the files and check ids the family produces
from its recorded fixtures (``parity.store``). :func:`collect` builds each family's checks from the
healthy files, then adds one failing row for every declared check that was not built (a damaged or missing
file, a removed manifest entry, a skipped case, an optional dependency missing), so a run reports
"724/888", never "724/725". A missing manifest, an undeclared family or a family declaring nothing is a
failure too.
"""
from __future__ import annotations

import inspect
import math
import sys
import time
from collections.abc import Iterable

from parity import families
from parity.checks import Check, CheckResult, device_tag
from parity.store import FixtureError, FixtureStore


def _not_run(family: str, case: str, reason: str, *, negative: bool = False, internal: bool = False) -> Check:
    """A declared check that could not be built: runs as an ERROR row carrying the reason."""
    def compute():
        return math.nan, reason
    return Check(family, case, "could not run", 0.0, compute, negative=negative, internal=internal)


def device_families() -> list[str]:
    """Families whose ``checks(store, device=...)`` can run our side on another device (CUDA)."""
    return [n for n in families.names() if "device" in inspect.signature(families.get(n).checks).parameters]


def census(checks: Iterable[Check], device: str = "cpu") -> dict[str, list[str]]:
    """The declaration of a family's checks: case names (device tag removed), split by kind."""
    tag = device_tag(device)
    out = {"checks": [], "controls": [], "internal": []}
    for c in checks:
        case = c.case.replace(tag, "") if tag else c.case
        out["controls" if c.negative else ("internal" if c.internal else "checks")].append(case)
    return {k: sorted(v) for k, v in out.items()}


def declare(store: FixtureStore, family: str) -> dict[str, list[str]]:
    """Build ``family``'s checks from ``store`` and record them as its declaration in the manifest
    (``parity fixtures generate`` and ``parity fixtures census`` call this)."""
    damaged = {r: m for r, m in store.damaged().items()}
    if damaged:
        raise FixtureError("cannot declare checks from a damaged store:\n" + "\n".join(damaged.values()))
    decl = census(families.get(family).checks(store))
    if not any(decl.values()):
        raise FixtureError(f"family {family} builds no checks from {store.root}; nothing to declare")
    store.write_declared(family, **decl)
    return decl


def adopt_declarations(live: FixtureStore, recorded: FixtureStore, names: Iterable[str]) -> None:
    """Declare in a freshly generated store (``--live``, test_live) what the recorded store declares, so a
    family cannot shrink by being regenerated; a family the recorded store does not declare is declared
    from the fresh files."""
    for n in names:
        try:
            decl = recorded.declared(n)
        except FixtureError:
            decl = None
        if decl is None:
            declare(live, n)
        else:
            live.write_declared(n, checks=decl["checks"], controls=decl["controls"], internal=decl["internal"])


def _reason(family: str, damaged: dict[str, str], missing_entries: list[str], error: str | None) -> str:
    parts = []
    if error:
        parts.append(f"building the family's checks failed: {error}")
    if missing_entries:
        parts.append(f"declared fixture(s) without a manifest entry: {', '.join(missing_entries)}; "
                     f"regenerate with `BIG_VISION_DIR=... parity fixtures generate --family {family}` "
                     f"(or `git checkout -- fixtures/`)")
    if damaged:
        parts += list(damaged.values())
    if not parts:
        parts.append(f"declared in the manifest but not built by the family's code (a skipped case, or a "
                     f"missing optional dependency); if the code changed on purpose, record the new list with "
                     f"`parity fixtures census --family {family}`")
    return " | ".join(parts)


def collect(store: FixtureStore, names: Iterable[str] | None = None, *, device: str = "cpu") -> list[Check]:
    """Every check of the named families (default: all), plus a failing row for every declared check the
    family could not build. ``device`` != "cpu" runs the families that support it (:func:`device_families`)
    there; the others run as usual. Raises FixtureError when the store has no readable manifest."""
    entries = store.entries()  # raises on a missing or corrupt manifest: nothing to check is an error
    damaged = store.damaged()
    view = store.without(damaged)
    tag = device_tag(device)
    on_device = set(device_families()) if device != "cpu" else set()
    out: list[Check] = []
    for name in (names or families.names()):
        mod = families.get(name)
        decl = store.declared(name)
        error = None
        try:
            built = mod.checks(view, device=device) if name in on_device else mod.checks(view)
        except Exception as e:  # noqa: BLE001 - one family that cannot build is rows, not a crash
            built, error = [], (str(e) if isinstance(e, FixtureError) else f"{type(e).__name__}: {e}")
        out.extend(built)
        if decl is None:
            out.append(_not_run(name, "declared_checks", (
                f"family {name} has no declared checks in {store.manifest_path} ("
                f"{len([e for e in entries.values() if e.get('family') == name])} fixture files); generate it with "
                f"`BIG_VISION_DIR=... parity fixtures generate --family {name}`, or, for recorded files, review "
                f"its checks and record them with `parity fixtures census --family {name}`"
                + (f" | {error}" if error else ""))))
            continue
        missing_entries = [r for r in decl["files"] if r not in entries]
        have = {(c.negative, c.internal, c.case.replace(tag, "") if tag else c.case) for c in built}
        fam_damaged = {r: m for r, m in damaged.items() if r.startswith(f"{name}/")}
        # checks of this family built from other families' files (fast_paths reads randaug_ops)
        other_damaged = {r: m for r, m in damaged.items() if r not in fam_damaged}
        expected = ([(False, False, c) for c in decl["checks"]] + [(True, False, c) for c in decl["controls"]]
                    + [(False, True, c) for c in decl["internal"]])
        if not expected:
            out.append(_not_run(name, "declared_checks", f"family {name} declares no checks in "
                                f"{store.manifest_path}; an empty family checks nothing"))
            continue
        missing = [e for e in expected if e not in have]
        if missing:
            reason = _reason(name, fam_damaged or other_damaged, missing_entries, error)
            for negative, internal, case in missing:
                out.append(_not_run(name, case + tag, reason, negative=negative, internal=internal))
    return out


class _Progress:
    """Plain progress lines on stderr (for CI logs and pipes, where a tqdm bar would be noise): one line
    every ``interval`` seconds."""

    def __init__(self, total: int, interval: float, stream=None):
        self.total, self.interval, self.stream = total, interval, stream or sys.stderr
        self.start = self.last = time.monotonic()

    def update(self, done: int, problems: int, family: str) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            m, s = divmod(int(now - self.start), 60)
            print(f"parity: {done}/{self.total} checks run ({m}m{s:02d}s, now {family}), {problems} problem(s) "
                  f"so far", file=self.stream, flush=True)


def run_checks(checks: list[Check], *, progress: bool | str = True, interval: float = 20.0) -> list[CheckResult]:
    """Run every check. ``progress``: True (a tqdm bar), "lines" (plain lines every ``interval`` s, for
    output that is not a terminal) or False."""
    from tqdm import tqdm
    results = []
    lines = _Progress(len(checks), interval) if progress == "lines" else None
    bad = 0
    for c in tqdm(checks, desc="parity", unit="check", disable=progress is not True, leave=False):
        r = c.run()
        results.append(r)
        bad += not r.ok
        if lines:
            lines.update(len(results), bad, c.family)
    return results

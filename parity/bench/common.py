"""Shared benchmark plumbing: pinning to one core, timing loops, summaries and tables."""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def pin_to_core(core: int | None) -> int | None:
    """Run this process (and torch's intra-op pool) on one CPU core. Returns the core, None if unpinnable."""
    import torch
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
    if core is None or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if core not in allowed:
        raise SystemExit(f"bench: --core {core} is not available to this process (allowed: {allowed})")
    os.sched_setaffinity(0, {core})
    return core


def default_core() -> int | None:
    if not hasattr(os, "sched_getaffinity"):
        return None
    return max(os.sched_getaffinity(0))


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rate(fn: Callable[[int], None], n: int) -> float:
    """Items per second for ``fn(i)`` over i = 0..n-1."""
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t0)


def timed(fn: Callable[[int], None], n: int) -> tuple[float, float]:
    """``fn(i)`` over i = 0..n-1: (items per wall-clock second, CPU milliseconds per item). The CPU time is
    the process's (``time.process_time``: every thread, all pinned to the one core), which other jobs on a
    shared machine disturb far less than the wall clock."""
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(n):
        fn(i)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n / wall, cpu * 1e3 / n


@dataclass
class Series:
    name: str
    rates: list[float] = field(default_factory=list)
    note: str = ""
    cpu_ms: list[float] = field(default_factory=list)   # CPU ms per item, per repeat (where measured)

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else float("nan")

    def spread(self) -> str:
        if not self.rates:
            return "-"
        return f"{min(self.rates):.1f}-{max(self.rates):.1f}"


def interleaved(contenders: dict[str, Callable[[int], None]], n: int, repeats: int, warmup: int) -> dict[str, Series]:
    """Warm each contender up, then run them in turn ``repeats`` times (so load changes hit all alike)."""
    out = {k: Series(k) for k in contenders}
    for fn in contenders.values():
        for i in range(warmup):
            fn(i)
    for _ in range(repeats):
        for k, fn in contenders.items():
            r, cpu_ms = timed(fn, n)
            out[k].rates.append(r)
            out[k].cpu_ms.append(cpu_ms)
    return out


def table(series: dict[str, Series], *, unit: str = "img/s", baselines: tuple[str, ...] = ()) -> str:
    names = list(series)
    head = ["contender", f"{unit} (median)", "min-max"] + [f"x vs {b}" for b in baselines if b in series]
    rows = [head]
    for k in names:
        s = series[k]
        row = [k + (f" ({s.note})" if s.note else ""), f"{s.median:.1f}", s.spread()]
        for b in baselines:
            if b in series:
                base = series[b].median
                row.append(f"{s.median / base:.2f}" if base and base == base else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cpu_table(series: dict[str, Series], *, baselines: tuple[str, ...] = ()) -> str:
    """CPU milliseconds per item (median over repeats, min-max) and the speed ratio against each baseline
    (baseline's CPU time / this one's: > 1 is faster), for the series that recorded CPU time."""
    names = [k for k in series if series[k].cpu_ms]
    bases = [b for b in baselines if b in names]
    head = ["contender", "CPU ms/item (median)", "min-max"] + [f"speed x vs {b}" for b in bases]
    rows = [head]
    for k in names:
        c = series[k].cpu_ms
        med = statistics.median(c)
        row = [k, f"{med:.3f}", f"{min(c):.3f}-{max(c):.3f}"]
        row += [f"{statistics.median(series[b].cpu_ms) / med:.2f}" for b in bases]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def header(title: str, core: int | None, **info) -> str:
    import torch
    where = f"pinned to core {core} (1 thread)" if core is not None else f"{os.cpu_count()} CPU cores, not pinned"
    parts = [f"{title}", f"machine: {cpu_model()}, {where}, "
             f"torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]
    if hasattr(os, "getloadavg"):   # the machine may be shared: say how busy it was
        parts.append("load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    parts += [f"{k}: {v}" for k, v in info.items()]
    return "\n".join(parts)


def write_json(path: str | None, payload: dict) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(payload, f, indent=1)

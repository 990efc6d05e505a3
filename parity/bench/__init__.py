"""Throughput benchmarks (``parity bench ...`` / ``python bench/<name>.py``).

Each benchmark measures its baselines in the same run, pinned to the same CPU core, on the same inputs,
interleaving the contenders over several repeats, and prints img/s (median, min-max over repeats) and the
ratios of the medians. See docs/performance.md for the recorded figures.
"""

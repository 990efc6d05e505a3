"""Run `parity bench randaug` (see parity/bench/randaug_ops.py and docs/performance.md): python bench/randaug_ops.py --help"""
import sys

from parity.bench_cli import run_script

if __name__ == "__main__":
    sys.exit(run_script("randaug"))

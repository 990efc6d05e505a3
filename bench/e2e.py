"""Run `parity bench e2e` (see parity/bench/e2e.py and docs/performance.md): python bench/e2e.py --help"""
import sys

from parity.bench_cli import run_script

if __name__ == "__main__":
    sys.exit(run_script("e2e"))

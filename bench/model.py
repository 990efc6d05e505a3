"""Run `parity bench model` (see parity/bench/model.py and docs/performance.md): python bench/model.py --help"""
import sys

from parity.bench_cli import run_script

if __name__ == "__main__":
    sys.exit(run_script("model"))

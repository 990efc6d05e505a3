"""Run `parity bench batched` (see parity/bench/batched.py and docs/performance.md): python bench/batched.py --help"""
import sys

from parity.bench_cli import run_script

if __name__ == "__main__":
    sys.exit(run_script("batched"))

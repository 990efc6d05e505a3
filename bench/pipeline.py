"""Run `parity bench pipeline` (see parity/bench/pipeline.py and docs/performance.md): python bench/pipeline.py --help"""
import sys

from parity.bench_cli import run_script

if __name__ == "__main__":
    sys.exit(run_script("pipeline"))

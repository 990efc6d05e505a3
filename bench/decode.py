"""Run `parity bench decode` (see parity/bench/decode.py and docs/performance.md): python bench/decode.py --help"""
import sys

from parity.bench_cli import run_script

if __name__ == "__main__":
    sys.exit(run_script("decode"))

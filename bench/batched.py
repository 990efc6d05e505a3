"""Run `parity bench batched` (see parity/bench/batched.py and docs/performance.md): python bench/batched.py --help"""
import argparse
import sys

from parity.bench import batched

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=batched.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    batched.add_arguments(parser)
    sys.exit(batched.main(parser.parse_args()))
